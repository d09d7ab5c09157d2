"""The in-memory snapshot of a claimed execution, and its checkpoints."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from .. import codec
from ..pubsub.payloads import workflow_payload
from ..storage import Checkpoint, ClaimNext, Row


class _Keep:
    """Marker: leave ``current_step`` as it is."""


KEEP = _Keep()


@dataclass(eq=False)
class RunState:
    """What the runner knows of the execution it holds; saved by ``checkpoint``."""

    row: Row
    token: str
    context: Any
    context_json: str | None
    attempts: dict[str, dict[str, Any]]
    error: dict[str, Any] | None
    #: what to claim next with the commit that ends this claim
    claim_next: ClaimNext | None = None
    #: the checkpoint that ended the claim and carried ``claim_next`` (``claimed`` is filled)
    releasing: Checkpoint | None = None
    #: the checkpoint being committed; still set if its commit raised (outcome unknown)
    inflight: Checkpoint | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: contexts of checkpoints built but not yet committed (by ``id`` of the checkpoint)
    _contexts: dict[int, tuple[Any, str] | None] = field(default_factory=dict)

    @classmethod
    def from_claim(cls, row: Row) -> RunState:
        attempts = json.loads(row["attempts"] or "{}")
        return cls(
            row=dict(row),
            token=row["lock_token"],
            context=codec.decode(row["context"]),
            context_json=row["context"],
            attempts=attempts,
            error=json.loads(row["error"]) if row["error"] else None,
        )

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def workflow_name(self) -> str:
        return str(self.row["workflow_name"])

    @property
    def status(self) -> str:
        return str(self.row["status"])

    @property
    def current_step(self) -> str | None:
        step: str | None = self.row["current_step"]
        return step

    def set_context(self, value: Any, text: str) -> None:
        self.context = value
        self.context_json = text

    def failures(self, step_name: str) -> int:
        return int(self.attempts.get(step_name, {}).get("failures", 0))

    def checkpoint(
        self,
        now: int,
        *,
        status: str | None = None,
        release: bool = False,
        wake_at: int | None = None,
        suspend: bool = False,
        result: str | None = None,
        terminal: bool = False,
        steps: list[Row] | None = None,
        current_step: str | _Keep | None = KEEP,
        queue: str | None = None,
        context: tuple[Any, str] | None = None,
    ) -> Checkpoint:
        """Build the checkpoint that moves the row to the given state.

        Nothing here changes the run: :meth:`applied` does, once the checkpoint is
        committed (a failed commit leaves the run as it was, and the database decides).
        """
        ex = {
            "id": self.id,
            "token": self.token,
            "status": self.status if status is None else status,
            "context": self.context_json if context is None else context[1],
            "current_step": self.current_step if isinstance(current_step, _Keep) else current_step,
            "attempts": json.dumps(self.attempts),
            "result": result,
            "error": json.dumps(self.error) if self.error else None,
            "queue": queue or self.row["queue"],
            "wake_at": None if terminal else wake_at,
            "suspend": 1 if suspend else 0,
            "seen_wakeups": self.row["wakeups"],
            "new_token": None if (release or terminal) else self.token,
            "locked_by": None if (release or terminal) else self.row["locked_by"],
            "deadline_at": self.row["deadline_at"],
            "completed_at": now if terminal else None,
            # same status, claim kept, no wake time: a narrower UPDATE will do
            "progress_only": status is None
            and queue is None
            and not (release or terminal or suspend),
        }
        # a run may end while waiting (a workflow timeout, a parallel block failing fast):
        # its pending waits end with it (an index probe when there are none)
        cp = Checkpoint(execution=ex, now=now, steps=steps or [], cleanup_waits=terminal)
        if (release or terminal) and self.claim_next is not None:
            cp.claim_next = self.claim_next
        self._contexts[id(cp)] = context
        return cp

    def applied(self, cp: Checkpoint) -> None:
        """The checkpoint was committed: the run now is what it wrote."""
        ex = cp.execution
        for key in ("status", "current_step", "queue", "completed_at"):
            self.row[key] = ex[key]
        self.row["updated_at"] = cp.now
        context = self._contexts.pop(id(cp), None)
        if context is not None:
            self.set_context(*context)
        if cp.claim_next is not None:
            self.claim_next = None  # once per claim
            self.releasing = cp

    def projected(self, cp: Checkpoint) -> Row:
        """The row as it will be once ``cp`` is committed (for events sent in the commit)."""
        ex = cp.execution
        keys = ("status", "current_step", "queue", "completed_at")
        return {**self.row, **{k: ex[k] for k in keys}, "updated_at": cp.now}

    def discarded(self, cp: Checkpoint) -> None:
        """The checkpoint was not committed (or its outcome is unknown)."""
        self._contexts.pop(id(cp), None)

    def payload(self, **extra: Any) -> dict[str, Any]:
        """The workflow event payload (reference field names kept)."""
        return workflow_payload(self.row, **extra)
