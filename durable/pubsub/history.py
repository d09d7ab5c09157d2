"""A run's lifecycle events rebuilt from storage, for a consumer that joins late.

The bus delivers events as they happen, at most once; what happened before a
consumer subscribed lives in storage. ``run_history`` turns the stored run,
its step attempts and its inputs back into the events they announced, with
the same payload builders (``durable.pubsub.payloads``): ``workflow_started``,
each attempt's ``step_started`` and how it ended, ``input_requested`` /
``input_provided``, and the terminal event. Events that leave no trace in
storage (``workflow_resumed``, ``workflow_waiting``) are not rebuilt. A
rebuilt workflow event carries the run's fields as stored now, with the
status and times of the moment it stands for.

``event_key`` names an event so that a consumer printing both the history and
the live events shows each once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codec
from ..models import TERMINAL_STATUSES
from .base import Event
from .payloads import input_payload, step_payload, workflow_payload

if TYPE_CHECKING:
    from ..query import Query

Row = dict[str, Any]

_STEP_ENDS = {
    "completed": "step_completed",
    "cancelled": "step_completed",
    "failed": "step_failed",
    "waiting": "step_waiting",
    "snoozed": "step_waiting",
}
TERMINAL_KINDS = frozenset({"workflow_completed", "workflow_failed", "workflow_cancelled"})


def event_key(event: Event) -> tuple[str, str]:
    """(kind, id): one attempt, input or run announced by one kind."""
    return event.kind, str(event.payload.get("id"))


def run_history(query: Query, topic: str, execution_id: str) -> tuple[list[Event], bool]:
    """The events of one run so far, oldest first, and whether the run has ended."""
    row = query.execution_row(execution_id)
    timed: list[tuple[int, int, Event]] = []

    def add(at: int | None, kind: str, payload: dict[str, Any]) -> None:
        timed.append((at or 0, len(timed), Event(kind, payload, topic)))

    created = row.get("created_at")
    started = {**row, "status": "pending", "started_at": None, "completed_at": None}
    add(created, "workflow_started", workflow_payload({**started, "updated_at": created}))
    for step in query.storage.list_steps(execution_id):
        running = {**step, "status": "running", "completed_at": None, "duration_ms": None}
        add(step["started_at"], "step_started", step_payload(running))
        end = _STEP_ENDS.get(step["status"])
        if end is not None:
            add(step.get("completed_at"), end, step_payload(step, **_step_extras(step)))
    for wait in query.waits(execution_id):
        if wait.get("kind") != "input":
            continue
        raw = {**wait, "spec": _text(wait.get("spec")), "metadata": _text(wait.get("metadata"))}
        add(wait.get("created_at"), "input_requested", input_payload(raw, row["workflow_name"]))
        if wait.get("status") == "resolved":
            provided = input_payload(raw, row["workflow_name"])
            add(wait.get("resolved_at"), "input_provided", provided)
    ended = row["status"] in TERMINAL_STATUSES
    if ended:
        add(row.get("completed_at"), _terminal_kind(row["status"]), _terminal_payload(row))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in timed], ended


def _terminal_kind(status: str) -> str:
    if status == "completed":
        return "workflow_completed"
    return "workflow_cancelled" if status == "cancelled" else "workflow_failed"


def _terminal_payload(row: Row) -> dict[str, Any]:
    error = _public_error(row.get("error"))
    return workflow_payload(row) if error is None else workflow_payload(row, error=error)


def _step_extras(step: Row) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    error = _public_error(step.get("error"))
    if step["status"] == "failed" and error is not None:
        extras["error"] = error
        if step.get("next_retry_at") is not None:
            from ..models import ms_to_iso

            extras["next_retry_at"] = ms_to_iso(step["next_retry_at"])
    return extras


def _public_error(text: Any) -> dict[str, Any] | None:
    if not text:
        return None
    value = codec.decode(text) if isinstance(text, str) else text
    if not isinstance(value, dict):
        return None
    return {"type": value.get("type"), "message": value.get("message")}


def _text(value: Any) -> str | None:
    """A decoded JSON field back to the stored text the payload builders read."""
    return None if value is None else codec.encode(value)
