"""The ``Schedule`` declaration: a cron expression or an interval, in a time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DefinitionError

CatchUp = Literal["latest", "all", "none"]
Overlap = Literal["allow", "skip"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Run a workflow on a cron expression (``cron=``) or every N seconds (``every=``).

    ``timezone`` is an IANA name (default UTC). ``catch_up`` says what to do with
    ticks missed while no worker ran; ``overlap="skip"`` starts no new run while the
    previous run of this schedule is unfinished.
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
        if not isinstance(self.name, str) or not self.name.strip():
            raise DefinitionError(f"a schedule needs a non-empty name, got {self.name!r}")
        if (self.cron is None) == (self.every is None):
            raise DefinitionError(f"schedule {self.name!r}: give exactly one of cron= or every=")
        if self.every is not None and (
            isinstance(self.every, bool)
            or not isinstance(self.every, int | float)
            or self.every <= 0
        ):
            raise DefinitionError(
                f"schedule {self.name!r}: every= must be a positive number of seconds"
            )
        if self.catch_up not in ("latest", "all", "none"):
            raise DefinitionError(
                f"schedule {self.name!r}: catch_up must be 'latest', 'all' or 'none'"
            )
        if self.overlap not in ("allow", "skip"):
            raise DefinitionError(f"schedule {self.name!r}: overlap must be 'allow' or 'skip'")
