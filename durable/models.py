"""Records returned by the API: frozen dataclasses and status enums.

Enum values are the strings stored in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.COMPENSATED,
        ExecutionStatus.COMPENSATION_FAILED,
    }
)


class StepStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    SNOOZED = "snoozed"
    CANCELLED = "cancelled"


class StepType(StrEnum):
    STEP = "step"
    BRANCH = "branch"
    PARALLEL = "parallel"
    FOREACH = "foreach"
    COMPENSATION = "compensation"


def ms_to_datetime(ms: int | None) -> datetime | None:
    """Stored epoch milliseconds to an aware UTC datetime."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_to_iso(ms: int | None) -> str | None:
    dt = ms_to_datetime(ms)
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of a workflow."""

    id: str
    workflow_name: str
    status: ExecutionStatus
    queue: str
    priority: int
    input: Any
    context: Any
    result: Any
    error: dict[str, Any] | None
    current_step: str | None
    parent_id: str | None
    schedule_name: str | None
    schedule_tick_at: datetime | None
    attempt: int
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    locked_by: str | None = None
    heartbeat_at: datetime | None = None
    deadline_at: datetime | None = None
    workflow_version: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status.is_terminal

    @property
    def claim_count(self) -> int:
        """How many times a worker took this run (``attempt``): not a step attempt."""
        return self.attempt


@dataclass(frozen=True, slots=True)
class StepExecution:
    """One attempt (or one suspended run) of a step body."""

    id: str
    execution_id: str
    step_name: str
    step_type: StepType
    status: StepStatus
    attempt: int
    result: Any
    error: dict[str, Any] | None
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None
    next_retry_at: datetime | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingInput:
    """A human input a workflow is waiting for (or was, once answered)."""

    id: str
    execution_id: str
    workflow_name: str
    input_name: str
    step_name: str
    input_type: str
    status: str
    prompt: str | None
    metadata: dict[str, Any]
    spec: dict[str, Any]
    timeout_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An external event a workflow is waiting for."""

    id: str
    execution_id: str
    workflow_name: str
    event_name: str
    step_name: str
    status: str
    timeout_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    """A page of results and the cursor for the next page (None at the end)."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule (cron or interval) and where it stands.

    ``next_run_at`` is None while disabled. ``declared`` is True for schedules
    declared on a workflow in code (stored at app start), False for those made
    at run time. ``skipped_count`` counts ticks skipped by ``overlap="skip"``.
    """

    name: str
    workflow_name: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    input: Any
    queue: str | None
    priority: int
    enabled: bool
    catch_up: str
    overlap: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_tick_at: datetime | None
    last_execution_id: str | None
    declared: bool
    skipped_count: int
    created_at: datetime
    updated_at: datetime
