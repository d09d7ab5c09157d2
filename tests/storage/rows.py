"""Rows the extension contract tests store (plain dicts, as the protocols take them)."""

from __future__ import annotations

from typing import Any

from durable.ids import new_id, new_token
from durable.storage import Checkpoint, KnownWorkflows, Row, Storage

NOW = 1_800_000_000_000
#: what the claims of these tests may take (the rows' workflow)
KNOWN = KnownWorkflows.of({"wf": [None]})


def execution(**extra: Any) -> Row:
    """A complete new execution row (every column ``Engine.execution_row`` fills)."""
    row: Row = {
        "id": new_id(),
        "workflow_name": "wf",
        "workflow_version": None,
        "status": "pending",
        "queue": "default",
        "priority": 0,
        "input": "1",
        "context": "1",
        "current_step": "a",
        "parent_id": None,
        "parent_step": None,
        "schedule_name": None,
        "schedule_tick_at": None,
        "wake_at": NOW,
    }
    row.update(extra)
    return row


def schedule(name: str, **extra: Any) -> Row:
    row: Row = {
        "name": name,
        "workflow_name": "wf",
        "cron": None,
        "every_ms": 60_000,
        "timezone": "UTC",
        "input": "null",
        "queue": None,
        "priority": 0,
        "enabled": 1,
        "catch_up": "latest",
        "overlap": "allow",
        "declared": 0,
        "next_run_at": NOW,
    }
    row.update(extra)
    return row


def wait(execution_id: str, **extra: Any) -> Row:
    row: Row = {
        "id": new_id(),
        "execution_id": execution_id,
        "step_name": "a",
        "seq": 0,
        "kind": "event",
        "name": "go",
    }
    row.update(extra)
    return row


def claim(store: Storage, queue: str = "default", at: int = NOW) -> Row:
    """Claim the one runnable run of ``queue``."""
    [claimed] = store.claim(queue, 2, "w", new_token(), at, KNOWN)
    return claimed


def save(store: Storage, claimed: Row, at: int, **changes: Any) -> bool:
    """Checkpoint a claimed run; ``changes`` override its columns (``steps``,
    ``notify_parent`` go to the Checkpoint). Releases the claim by default."""
    steps = changes.pop("steps", [])
    notify_parent = changes.pop("notify_parent", None)
    fields = {
        "id": claimed["id"],
        "token": claimed["lock_token"],
        "status": claimed["status"],
        "context": claimed["context"],
        "current_step": claimed["current_step"],
        "attempts": claimed["attempts"],
        "result": None,
        "error": None,
        "queue": claimed["queue"],
        "wake_at": None,
        "suspend": 0,
        "seen_wakeups": claimed["wakeups"],
        "new_token": None,
        "locked_by": None,
        "deadline_at": None,
        "completed_at": None,
    }
    fields.update(changes)
    return store.save(Checkpoint(fields, at, steps=steps, notify_parent=notify_parent))


def step(execution_id: str, at: int, **extra: Any) -> Row:
    row: Row = {
        "id": new_id(),
        "execution_id": execution_id,
        "step_name": "a",
        "step_type": "step",
        "status": "completed",
        "attempt": 1,
        "result": "1",
        "error": None,
        "logs": None,
        "started_at": at,
        "completed_at": at,
        "duration_ms": 0,
        "next_retry_at": None,
    }
    row.update(extra)
    return row


def finish(store: Storage, row: Row, status: str, at: int, **changes: Any) -> None:
    """Claim a stored run and end it with ``status`` at ``at`` (one checkpoint).
    The run must be the only runnable one of its queue."""
    claimed = claim(store, row["queue"], at)
    assert claimed["id"] == row["id"]
    assert save(store, claimed, at, status=status, current_step=None, completed_at=at, **changes)
