"""The ``Schedule`` declaration: a cron expression or an interval, in a time zone.

Every check a schedule needs lives here, so a declaration on a workflow fails
at import time and ``app.schedules.create`` fails before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .. import codec
from ..checks import integer, seconds
from ..errors import DefinitionError
from ..errors import ScheduleExistsError as ScheduleExistsError  # re-exported
from ..errors import ScheduleNotFoundError as ScheduleNotFoundError
from .cron import latest_ticks, normalize, zone
from .cron import next_after as cron_next_after

CatchUp = Literal["latest", "all", "none"]
Overlap = Literal["allow", "skip"]

MIN_EVERY_SECONDS = 1.0
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Schedule:
    """Run a workflow on a cron expression (``cron=``) or every N seconds (``every=``).

    ``timezone`` is an IANA name (default UTC) in which the cron expression is
    read; intervals are counted from the Unix epoch and ignore it.
    ``catch_up`` says what to do with ticks missed while no worker ran
    (``"latest"``: one run for the most recent, ``"all"``: up to 100 most
    recent, ``"none"``: skip them); ``overlap="skip"`` starts no new run while
    the previous run of this schedule is unfinished. ``enabled`` is the state a
    new schedule starts in; enable/disable at run time survive restarts.

    >>> Schedule("weekday-9am", cron="0 9 * * MON-FRI", timezone="America/New_York").cron
    '0 9 * * MON-FRI'
    """

    name: str
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    input: Any = None
    queue: str | None = None
    priority: int = 0
    enabled: bool = True
    catch_up: CatchUp = "latest"
    overlap: Overlap = "allow"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name)
        where = f"schedule {self.name!r}"
        check_timing(where, self.cron, self.every, self.timezone)
        check_options(where, self.queue, self.priority, self.catch_up, self.overlap)
        if not isinstance(self.enabled, bool):
            raise DefinitionError(f"{where}: enabled must be True or False")
        codec.encode(self.input, f"the input of {where}")

    @property
    def every_ms(self) -> int | None:
        """The interval in whole milliseconds (None for cron schedules)."""
        return None if self.every is None else round(self.every * 1000)


def check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise DefinitionError(f"a schedule needs a non-empty name, got {name!r}")
    if (
        len(name) > MAX_NAME_LENGTH
        or any(ch in name for ch in "\x00\n\r\t")
        or codec.text_problem(name) is not None
    ):
        raise DefinitionError(
            f"schedule name {name[:40]!r}... must be at most {MAX_NAME_LENGTH} characters "
            "without control characters"
        )


def check_timing(where: str, cron: object, every: object, timezone: object) -> None:
    """Exactly one of ``cron``/``every``; a valid expression, interval and zone."""
    if (cron is None) == (every is None):
        raise DefinitionError(f"{where}: give exactly one of cron= or every=")
    if cron is not None:
        if not isinstance(cron, str):
            raise DefinitionError(f"{where}: cron= must be a string such as '0 9 * * MON-FRI'")
        normalize(cron)
    if every is not None:
        _check_every(where, every)
    if not isinstance(timezone, str):
        raise DefinitionError(f"{where}: timezone must be an IANA name such as 'UTC'")
    zone(timezone)


def _check_every(where: str, every: object) -> None:
    value = seconds(every, f"{where}: every=", positive=True, error=DefinitionError)
    if value < MIN_EVERY_SECONDS:
        raise DefinitionError(
            f"{where}: every= must be at least {MIN_EVERY_SECONDS:g} second "
            f"(the scheduler's resolution), got {every!r}"
        )
    if value > 10 * 365 * 86400:
        raise DefinitionError(f"{where}: every= is longer than ten years, got {every!r}")


def check_options(
    where: str, queue: object, priority: object, catch_up: object, overlap: object
) -> None:
    if queue is not None and (
        not isinstance(queue, str) or not queue or codec.text_problem(queue) is not None
    ):
        raise DefinitionError(f"{where}: queue must be a non-empty string or None")
    value = integer(priority, f"{where}: priority", error=DefinitionError)
    if not codec.INT64_MIN <= value <= codec.INT64_MAX:
        raise DefinitionError(f"{where}: priority must fit in 64 bits, got {priority!r}")
    if catch_up not in ("latest", "all", "none"):
        raise DefinitionError(
            f"{where}: catch_up must be 'latest', 'all' or 'none', got {catch_up!r}"
        )
    if overlap not in ("allow", "skip"):
        raise DefinitionError(f"{where}: overlap must be 'allow' or 'skip', got {overlap!r}")


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule fires: a cron expression in a zone, or every N ms counted
    from the Unix epoch (so every process computes the same ticks). Pure."""

    cron: str | None
    every_ms: int | None
    timezone: str

    def next_after(self, after_ms: int) -> int:
        """The first tick strictly after ``after_ms``."""
        if self.every_ms is not None:
            return (after_ms // self.every_ms + 1) * self.every_ms
        assert self.cron is not None
        return cron_next_after(self.cron, self.timezone, after_ms)

    def fire_times(self, after_ms: int, n: int) -> list[int]:
        """The next ``n`` ticks strictly after ``after_ms``."""
        out: list[int] = []
        for _ in range(n):
            after_ms = self.next_after(after_ms)
            out.append(after_ms)
        return out

    def due(self, first_ms: int, now_ms: int, keep: int) -> tuple[list[int], int]:
        """The last ``keep`` ticks in ``[first_ms, now_ms]`` (oldest first) and the
        first tick after ``now_ms``."""
        if self.every_ms is None:
            assert self.cron is not None
            return latest_ticks(self.cron, self.timezone, first_ms, now_ms, keep)
        step = self.every_ms
        last = now_ms // step * step
        upcoming = last + step
        if last < first_ms:
            return [], upcoming
        oldest = max(-(-first_ms // step) * step, last - (keep - 1) * step)
        return list(range(oldest, last + 1, step)), upcoming
