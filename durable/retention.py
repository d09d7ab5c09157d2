"""Retention: delete finished runs once they are old enough, in small batches.

A :class:`Retention` policy in the app's configuration says how long finished
runs of each status are kept::

    Durable(url, retention=Retention(completed="30d", failed="90d"))

The worker's maintenance loop applies it (at most every ``interval_seconds``,
at most ``max_batches_per_pass`` batches per pass, one short transaction per
batch); ``durable cleanup`` does the same by hand. A run goes with its step
executions and captured logs, its waits, inputs and events, and its child runs;
a tree with a run still active is kept whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .checks import count
from .errors import ConfigurationError, DurableError
from .models import TERMINAL_STATUSES, ExecutionStatus
from .storage import RetentionStorage

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["CleanupResult", "Retention", "cleanup", "parse_age"]

log = logging.getLogger("durable.retention")

FINISHED = tuple(s.value for s in ExecutionStatus if s in TERMINAL_STATUSES)
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")


def parse_age(value: str | float | int, what: str = "age") -> float:
    """Seconds from a number of seconds or a string like ``30d``, ``12h``, ``1d12h``,
    ``90m``, ``45s`` or ``2w``."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a duration like 30d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _AGE.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ConfigurationError(
                f"{what} {value!r} is not a duration; use a number and a unit, "
                "like 30d, 12h, 90m, 45s or 2w"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ConfigurationError(f"{what} must be a duration like 30d, got {value!r}")
    if seconds <= 0:
        raise ConfigurationError(f"{what} must be longer than zero, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished runs are kept, per final status (None: kept forever).

    Ages are seconds or strings like ``"30d"``. ``batch_size`` runs are deleted
    per transaction; a maintenance pass runs at most every ``interval_seconds``
    and deletes at most ``max_batches_per_pass`` batches.
    """

    completed: float | str | None = None
    failed: float | str | None = None
    cancelled: float | str | None = None
    compensated: float | str | None = None
    compensation_failed: float | str | None = None
    batch_size: int = 500
    interval_seconds: float = 600.0
    max_batches_per_pass: int = 20
    ages: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ages = {}
        for status in FINISHED:
            value = getattr(self, status)
            if value is not None:
                ages[status] = parse_age(value, f"retention for {status} runs")
        object.__setattr__(self, "ages", ages)
        for label, number in (
            ("batch_size", self.batch_size),
            ("max_batches_per_pass", self.max_batches_per_pass),
        ):
            count(number, f"retention {label}", error=ConfigurationError)
        parse_age(self.interval_seconds, "retention interval_seconds")

    @classmethod
    def from_option(cls, option: Retention | Mapping[str, Any] | None) -> Retention | None:
        """A Retention, a mapping of its fields (``{"completed": "30d"}``) or None."""
        if option is None or isinstance(option, Retention):
            return option
        if isinstance(option, Mapping):
            unknown = set(option) - {f for f in cls.__dataclass_fields__ if f != "ages"}
            if unknown:
                raise ConfigurationError(
                    f"unknown retention option(s) {', '.join(sorted(unknown))}; "
                    f"use {', '.join(FINISHED)}, batch_size, interval_seconds"
                )
            return cls(**option)
        raise ConfigurationError(f"retention takes a Retention or a dict, got {option!r}")


@dataclass(slots=True)
class CleanupResult:
    """What a cleanup deleted (or, in a dry run, would delete)."""

    executions: int = 0
    steps: int = 0
    skipped_active: int = 0
    roots: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "executions": self.executions,
            "steps": self.steps,
            "roots": self.roots,
            "skipped_active": self.skipped_active,
            "by_status": dict(self.by_status),
            "complete": self.complete,
        }


Progress = Callable[[int], None]


def count_candidates(engine: Engine, cutoffs: Mapping[str, int]) -> int:
    """How many top-level runs the cutoffs select (children are counted when deleted)."""
    return sum(engine.storage.count_retention_roots(s, at) for s, at in cutoffs.items())


def cleanup(
    engine: Engine,
    cutoffs: Mapping[str, int],
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    max_batches: int | None = None,
    progress: Progress | None = None,
) -> CleanupResult:
    """Delete finished runs of each status that finished before its cutoff (epoch
    ms), oldest first, ``batch_size`` top-level runs per transaction.

    ``progress`` is called with the number of top-level runs handled in each batch.
    """
    for status in cutoffs:
        if status not in FINISHED:
            raise DurableError(
                f"only finished runs can be cleaned up; {status!r} is not one of "
                f"{', '.join(FINISHED)}"
            )
    count(batch_size, "batch size")
    storage = engine.storage
    result = CleanupResult(dry_run=dry_run)
    batches = 0
    for status, before in cutoffs.items():
        after: tuple[int, str] | None = None
        while True:
            if max_batches is not None and batches >= max_batches:
                result.complete = False
                return result
            roots = storage.retention_roots(status, before, after, batch_size)
            if not roots:
                break
            batches += 1
            after = (int(roots[-1]["completed_at"]), str(roots[-1]["id"]))
            ids = [str(r["id"]) for r in roots]
            runs, steps, skipped = (
                _measure(storage, ids) if dry_run else storage.delete_execution_trees(ids)
            )
            result.executions += runs
            result.steps += steps
            result.skipped_active += skipped
            result.roots += len(ids) - skipped
            result.by_status[status] = result.by_status.get(status, 0) + len(ids) - skipped
            if progress is not None:
                progress(len(ids))
            if len(roots) < batch_size:
                break
    return result


def _measure(storage: RetentionStorage, ids: list[str]) -> tuple[int, int, int]:
    runs = steps = skipped = 0
    for root_id in ids:
        n, s, finished = storage.measure_execution_tree(root_id)
        if not finished:
            skipped += 1
            continue
        runs += n
        steps += s
    return runs, steps, skipped


class RetentionPass:
    """The maintenance hook applying a policy: at most once per ``interval_seconds``."""

    def __init__(self, engine: Engine, policy: Retention) -> None:
        self.engine = engine
        self.policy = policy
        self._last_ms: int | None = None

    def __call__(self) -> None:
        self.run()

    def run(self) -> CleanupResult | None:
        """One pass, if one is due; the result, or None when none was due."""
        now = self.engine.clock.now_ms()
        if not self.policy.ages:
            return None
        if self._last_ms is not None and now - self._last_ms < self.policy.interval_seconds * 1000:
            return None
        self._last_ms = now
        cutoffs = {s: now - int(age * 1000) for s, age in self.policy.ages.items()}
        result = cleanup(
            self.engine,
            cutoffs,
            batch_size=self.policy.batch_size,
            max_batches=self.policy.max_batches_per_pass,
        )
        if not result.complete:
            self._last_ms = None  # more to delete: carry on at the next maintenance tick
        if result.executions:
            log.info(
                "retention deleted %d runs (%d step executions)",
                result.executions,
                result.steps,
                extra={"action": "retention", "deleted": result.executions},
            )
        return result
