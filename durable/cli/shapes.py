"""The stable ``--json`` shapes of the command line (documented in docs/cli.md).

Times are ISO 8601 UTC strings ending in ``Z``; absent values are ``null``.
"""

from __future__ import annotations

from typing import Any

from ..models import Execution, PendingEvent, PendingInput, StepExecution
from .output import iso


def execution_json(e: Execution, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "workflow_name": e.workflow_name,
        "status": e.status.value,
        "queue": e.queue,
        "priority": e.priority,
        "current_step": e.current_step,
        "claim_count": e.attempt,
        "parent_id": e.parent_id,
        "schedule_name": e.schedule_name,
        "error": e.error,
        "scheduled_at": iso(e.scheduled_at),
        "started_at": iso(e.started_at),
        "completed_at": iso(e.completed_at),
        "created_at": iso(e.created_at),
        "updated_at": iso(e.updated_at),
    }
    if full:
        out.update(
            input=e.input,
            context=e.context,
            result=e.result,
            locked_by=e.locked_by,
            heartbeat_at=iso(e.heartbeat_at),
            deadline_at=iso(e.deadline_at),
        )
    return out


def step_json(s: StepExecution) -> dict[str, Any]:
    return {
        "id": s.id,
        "step_name": s.step_name,
        "step_type": s.step_type.value,
        "status": s.status.value,
        "attempt": s.attempt,
        "started_at": iso(s.started_at),
        "completed_at": iso(s.completed_at),
        "duration_ms": s.duration_ms,
        "next_retry_at": iso(s.next_retry_at),
        "error": s.error,
        "result": s.result,
        "logs": s.logs,
    }


def pending_input_json(p: PendingInput) -> dict[str, Any]:
    return {
        "id": p.id,
        "execution_id": p.execution_id,
        "workflow_name": p.workflow_name,
        "input_name": p.input_name,
        "step_name": p.step_name,
        "input_type": p.input_type,
        "prompt": p.prompt,
        "metadata": p.metadata,
        "spec": p.spec,
        "timeout_at": iso(p.timeout_at),
        "created_at": iso(p.created_at),
    }


def pending_event_json(p: PendingEvent) -> dict[str, Any]:
    return {
        "id": p.id,
        "execution_id": p.execution_id,
        "workflow_name": p.workflow_name,
        "event_name": p.event_name,
        "step_name": p.step_name,
        "timeout_at": iso(p.timeout_at),
        "created_at": iso(p.created_at),
    }


def schedule_json(info: Any) -> dict[str, Any]:
    """A ScheduleInfo from ``app.schedules`` (read by attribute, so it stays loose)."""

    def get(name: str) -> Any:
        value = getattr(info, name, None)
        return iso(value) if hasattr(value, "tzinfo") and hasattr(value, "isoformat") else value

    return {
        "name": get("name"),
        "workflow_name": get("workflow_name"),
        "cron": get("cron"),
        "every_seconds": _whole(get("every_seconds")),
        "timezone": get("timezone"),
        "input": get("input"),
        "queue": get("queue"),
        "priority": get("priority"),
        "enabled": get("enabled"),
        "catch_up": get("catch_up"),
        "overlap": get("overlap"),
        "next_run_at": get("next_run_at"),
        "last_run_at": get("last_run_at"),
        "last_execution_id": get("last_execution_id"),
    }


def _whole(value: Any) -> Any:
    """``300.0`` -> ``300``: whole seconds print as integers."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
