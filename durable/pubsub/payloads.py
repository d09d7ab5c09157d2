"""The 14 event kinds and every payload builder, in one place.

Each kind belongs to a family that fixes its topics (``PubSub.broadcast_<family>``)
and its base payload; some kinds add fields on some events (``extras``). The
README's payload table is checked against ``KINDS`` by a test, and the emitted
payloads against ``KINDS`` by another. Field names follow the Elixir Durable's
payloads, so its consumers feel at home. Times are ISO 8601 UTC strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import codec
from ..models import ms_to_iso

Row = dict[str, Any]

EVENT_KINDS = (
    "workflow_started",
    "workflow_resumed",
    "workflow_waiting",
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
    "step_started",
    "step_completed",
    "step_failed",
    "step_waiting",
    "input_requested",
    "input_provided",
    "schedule_toggled",
    "schedule_triggered",
)

WORKFLOW_FIELDS = (
    "id",
    "workflow_name",
    "workflow_version",
    "status",
    "queue",
    "current_step",
    "parent_id",
    "started_at",
    "completed_at",
    "inserted_at",
    "updated_at",
)
STEP_FIELDS = (
    "id",
    "workflow_id",
    "step_name",
    "step_type",
    "status",
    "attempt",
    "duration_ms",
    "started_at",
    "completed_at",
)
INPUT_FIELDS = (
    "id",
    "workflow_id",
    "workflow_name",
    "input_name",
    "step_name",
    "input_type",
    "status",
    "prompt",
    "metadata",
    "choices",
    "fields",
    "timeout_at",
    "inserted_at",
)
SCHEDULE_TOGGLED_FIELDS = ("name", "workflow", "enabled", "at")
SCHEDULE_TRIGGERED_FIELDS = ("name", "workflow", "execution_id", "tick_at", "manual")

#: the topics of each family: "run" is the execution's own topic
FAMILY_TOPICS = {
    "workflow": ("workflows", "run"),
    "step": ("run",),
    "input": ("inputs", "run"),
    "schedule": ("schedules",),
}


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One event kind: its family (hence its topics), the fields every payload of it
    carries, and the fields some payloads of it add."""

    family: str
    fields: tuple[str, ...]
    extras: tuple[str, ...] = ()

    @property
    def topics(self) -> tuple[str, ...]:
        return FAMILY_TOPICS[self.family]


_STEP_ENDED_EXTRAS = ("compensates",)
KINDS: dict[str, KindSpec] = {
    "workflow_started": KindSpec("workflow", WORKFLOW_FIELDS),
    "workflow_resumed": KindSpec("workflow", WORKFLOW_FIELDS),
    "workflow_waiting": KindSpec("workflow", WORKFLOW_FIELDS, ("waiting_for", "wake_at")),
    "workflow_completed": KindSpec("workflow", WORKFLOW_FIELDS),
    "workflow_failed": KindSpec("workflow", WORKFLOW_FIELDS, ("error",)),
    "workflow_cancelled": KindSpec("workflow", WORKFLOW_FIELDS, ("error",)),
    "step_started": KindSpec("step", STEP_FIELDS),
    "step_completed": KindSpec(
        "step",
        STEP_FIELDS,
        (
            "branch",
            "next_step",
            "jumped_to",
            "parallel",
            "parallel_steps",
            "foreach",
            "items",
            *_STEP_ENDED_EXTRAS,
        ),
    ),
    "step_failed": KindSpec("step", STEP_FIELDS, ("error", "next_retry_at", *_STEP_ENDED_EXTRAS)),
    "step_waiting": KindSpec("step", STEP_FIELDS, ("waiting_for",)),
    "input_requested": KindSpec("input", INPUT_FIELDS),
    "input_provided": KindSpec("input", INPUT_FIELDS),
    "schedule_toggled": KindSpec("schedule", SCHEDULE_TOGGLED_FIELDS),
    "schedule_triggered": KindSpec("schedule", SCHEDULE_TRIGGERED_FIELDS),
}
assert tuple(KINDS) == EVENT_KINDS


def workflow_payload(row: Row, **extra: Any) -> dict[str, Any]:
    """The payload of the workflow kinds, from a stored execution row."""
    out = {
        "id": row["id"],
        "workflow_name": row["workflow_name"],
        "workflow_version": row.get("workflow_version"),
        "status": row["status"],
        "queue": row["queue"],
        "current_step": row["current_step"],
        "parent_id": row["parent_id"],
        "started_at": ms_to_iso(row.get("started_at")),
        "completed_at": ms_to_iso(row.get("completed_at")),
        "inserted_at": ms_to_iso(row.get("created_at")),
        "updated_at": ms_to_iso(row.get("updated_at")),
    }
    out.update(extra)
    return out


def step_payload(row: Row, **extra: Any) -> dict[str, Any]:
    """The payload of the step kinds, from a step execution row (an attempt)."""
    payload = {
        "id": row["id"],
        "workflow_id": row["execution_id"],
        "step_name": row["step_name"],
        "step_type": row["step_type"],
        "status": row["status"],
        "attempt": row["attempt"],
        "duration_ms": row.get("duration_ms"),
        "started_at": ms_to_iso(row["started_at"]),
        "completed_at": ms_to_iso(row.get("completed_at")),
    }
    payload.update(extra)
    return payload


def input_payload(row: Row, workflow_name: str) -> dict[str, Any]:
    """The payload of the input kinds, from a pending-input wait row (never the answer)."""
    spec = codec.decode(row.get("spec")) or {}
    return {
        "id": row["id"],
        "workflow_id": row["execution_id"],
        "workflow_name": workflow_name,
        "input_name": row["name"],
        "step_name": row["step_name"],
        "input_type": row.get("input_type"),
        "status": "pending" if row["status"] == "pending" else "provided",
        "prompt": row.get("prompt"),
        "metadata": codec.decode(row.get("metadata")) or {},
        "choices": spec.get("choices"),
        "fields": spec.get("fields"),
        "timeout_at": ms_to_iso(row.get("timeout_at")),
        "inserted_at": ms_to_iso(row.get("created_at")),
    }


def schedule_toggled_payload(
    name: str, workflow_name: str, enabled: bool, at_ms: int
) -> dict[str, Any]:
    """The ``schedule_toggled`` payload."""
    return {"name": name, "workflow": workflow_name, "enabled": enabled, "at": ms_to_iso(at_ms)}


def schedule_triggered_payload(
    schedule: Row, execution_id: str, tick_at: int, manual: bool
) -> dict[str, Any]:
    """The ``schedule_triggered`` payload, from a stored schedule row."""
    return {
        "name": schedule["name"],
        "workflow": schedule["workflow_name"],
        "execution_id": execution_id,
        "tick_at": ms_to_iso(tick_at),
        "manual": manual,
    }
