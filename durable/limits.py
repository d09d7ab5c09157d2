"""Fleet-wide flow control on queues: global concurrency, per-key concurrency, rate.

A queue's limits are declared in the app's configuration
(``Durable(..., limits={"gateway": QueueLimits(rate=5)})``) and enforced inside
the claim (see ``storage/limiter.py``), so they hold across every worker process
on every machine that shares the database.

- A *slot* is a claim: a run of the queue that a worker holds right now
  (``lock_token`` set). Slots are not kept anywhere else, so every path that ends
  a claim (checkpoint release, terminal status, crash release, stale recovery,
  cancel) gives the slot back; a waiting, sleeping or retry-delayed run holds none.
- The per-key limit uses a key computed from the run's input when it is started
  (``key=``) and stored with the run.
- The rate limit is a token bucket kept in the database: ``rate`` tokens per
  ``period_seconds``, at most ``burst`` saved up; every claim of a run on the queue
  takes one (and one from its key's bucket with ``key_rate``). In any window of T seconds at most ``burst + rate * T / period_seconds``
  claims happen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, LimitKeyError

KeyFunction = Callable[[Any], str]


def _positive_int(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be an int >= 1, got {value!r}")


def _positive_number(value: Any, what: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{what} must be a number > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Limits of one queue that hold across the whole fleet.

    ``concurrency``: at most this many runs of the queue held by workers at once.
    ``per_key`` with ``key``: at most this many at once per key, the key computed
    by ``key(input)`` (a non-empty ``str``) when a run is started.
    ``rate`` per ``period_seconds``: claims allowed, as a token bucket holding at
    most ``burst`` tokens (default 1: claims are spread evenly over the period).
    ``key_rate`` per ``period_seconds`` with ``key``: the same, for each key.
    Each worker's own ``queues={name: n}`` concurrency still applies on top.
    """

    concurrency: int | None = None
    per_key: int | None = None
    key: KeyFunction | None = None
    rate: float | None = None
    key_rate: float | None = None
    period_seconds: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.concurrency is not None:
            _positive_int(self.concurrency, "QueueLimits(concurrency=)")
        if self.per_key is not None:
            _positive_int(self.per_key, "QueueLimits(per_key=)")
        if self.key_rate is not None:
            _positive_number(self.key_rate, "QueueLimits(key_rate=)")
        for option in ("per_key", "key_rate"):
            if getattr(self, option) is not None and self.key is None:
                raise ConfigurationError(
                    f"QueueLimits({option}=) needs key=, a function from a run's input to a str"
                )
        if self.key is not None and not callable(self.key):
            raise ConfigurationError(f"QueueLimits(key=) must be callable, got {self.key!r}")
        if self.key is not None and not self.keyed:
            raise ConfigurationError(
                "QueueLimits(key=) is only used with per_key= or key_rate=; set one"
            )
        if self.rate is not None:
            _positive_number(self.rate, "QueueLimits(rate=)")
        _positive_number(self.period_seconds, "QueueLimits(period_seconds=)")
        _positive_int(self.burst, "QueueLimits(burst=)")
        if self.concurrency is None and not self.keyed and self.rate is None:
            raise ConfigurationError(
                "QueueLimits() sets no limit: give concurrency=, rate=, or per_key= / "
                "key_rate= with key="
            )

    @property
    def keyed(self) -> bool:
        """Whether a run of this queue needs a key (a per-key limit is set)."""
        return self.per_key is not None or self.key_rate is not None

    @property
    def tokens_per_ms(self) -> float:
        assert self.rate is not None
        return self.rate / (self.period_seconds * 1000.0)

    @property
    def key_tokens_per_ms(self) -> float:
        assert self.key_rate is not None
        return self.key_rate / (self.period_seconds * 1000.0)

    def describe(self) -> dict[str, Any]:
        """The limits as plain JSON (recorded per worker, shown by status, compared
        across the fleet to find processes configured differently)."""
        out: dict[str, Any] = {}
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.per_key is not None:
            out["per_key"] = self.per_key
        if self.key_rate is not None:
            out["key_rate"] = float(self.key_rate)
        if self.keyed:
            out["key"] = _function_name(self.key)
        if self.rate is not None or self.key_rate is not None:
            out["period_seconds"] = float(self.period_seconds)
            out["burst"] = self.burst
        if self.rate is not None:
            out["rate"] = float(self.rate)
        return out

    def compute_key(self, queue: str, workflow: str, value: Any) -> str:
        """The run's key on this queue; LimitKeyError (the start fails) otherwise."""
        assert self.key is not None
        try:
            key = self.key(value)
        except Exception as exc:
            raise LimitKeyError(
                f"the key function of queue {queue!r} failed on the input of workflow "
                f"{workflow!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(key, str) or not key:
            raise LimitKeyError(
                f"the key function of queue {queue!r} must return a non-empty str; for the "
                f"input of workflow {workflow!r} it returned {key!r}"
            )
        return key

    def refill(self, tokens: float, refilled_at: int, now: int, *, key: bool = False) -> float:
        """Tokens in the queue's bucket (``key=True``: a key's bucket) at ``now``;
        a clock behind ``refilled_at`` adds none."""
        per_ms = self.key_tokens_per_ms if key else self.tokens_per_ms
        return min(float(self.burst), tokens + max(0, now - refilled_at) * per_ms)

    def next_token_seconds(self, tokens: float, *, key: bool = False) -> float:
        """Seconds until the bucket holds one whole token again."""
        if tokens >= 1:
            return 0.0
        per_ms = self.key_tokens_per_ms if key else self.tokens_per_ms
        return (1 - tokens) / per_ms / 1000.0


def from_description(described: Mapping[str, Any]) -> QueueLimits:
    """Limits as a worker recorded them (for reports; the key function stays with
    the code that declared it)."""
    keyed = described.get("per_key") is not None or described.get("key_rate") is not None
    return QueueLimits(
        concurrency=described.get("concurrency"),
        per_key=described.get("per_key"),
        key=_recorded_key if keyed else None,
        rate=described.get("rate"),
        key_rate=described.get("key_rate"),
        period_seconds=described.get("period_seconds", 1.0),
        burst=described.get("burst", 1),
    )


def _recorded_key(value: Any) -> str:
    raise LimitKeyError("this process only knows the limits workers recorded, not their key=")


def _function_name(fn: Callable[..., Any] | None) -> str:
    if fn is None:
        return ""
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


def check_limits(limits: Mapping[str, QueueLimits] | None) -> dict[str, QueueLimits]:
    """Validate ``Durable(limits=...)``."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise ConfigurationError(
            f"limits= takes a mapping of queue name to QueueLimits, got {limits!r}"
        )
    out: dict[str, QueueLimits] = {}
    for name, value in limits.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"limits=: queue names must be non-empty str, got {name!r}")
        if not isinstance(value, QueueLimits):
            raise ConfigurationError(f"limits[{name!r}] must be a QueueLimits(...), got {value!r}")
        out[name] = value
    return out


def run_keys(
    limits: Mapping[str, QueueLimits], queues: set[str], workflow: str, value: Any
) -> str | None:
    """The stored ``limit_keys`` of a new run: {queue: key} for every queue the run
    may use whose limits are keyed, as JSON (None when there is none)."""
    keys = {
        q: limits[q].compute_key(q, workflow, value)
        for q in sorted(queues)
        if q in limits and limits[q].keyed
    }
    return json.dumps(keys, sort_keys=True) if keys else None


def describe_served(limits: Mapping[str, QueueLimits], queues: Iterable[str]) -> str:
    """The JSON recorded in a worker's row: the limits it enforces on each queue it
    serves (``{}``: none), so that two processes configured differently are found."""
    return json.dumps(
        {q: limits[q].describe() if q in limits else {} for q in sorted(queues)}, sort_keys=True
    )


def fleet_mismatches(workers: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Queues that live workers enforce with different limits: {queue: [{limits,
    workers}, ...]} (one entry per distinct configuration)."""
    seen: dict[str, dict[str, list[str]]] = {}
    for worker in workers:
        recorded = worker.get("limits")
        if not recorded:  # a worker from before limits existed records nothing
            continue
        described = json.loads(recorded) if isinstance(recorded, str) else recorded
        for queue, config in described.items():
            text = json.dumps(config, sort_keys=True)
            seen.setdefault(queue, {}).setdefault(text, []).append(str(worker["id"]))
    return {
        queue: [{"limits": json.loads(t), "workers": ids} for t, ids in sorted(configs.items())]
        for queue, configs in sorted(seen.items())
        if len(configs) > 1
    }
