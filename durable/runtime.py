"""The context a step body runs in; wait primitives reach the engine through it.

Each wait call inside a step gets a sequence number (0, 1, 2... in call
order). A re-run of the step after a wait finds its recorded waits by that
number, so each call returns what it returned the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import DurableError, Suspend
from .ids import new_id
from .storage import Row

if TYPE_CHECKING:
    from .engine import Engine

_CURRENT: ContextVar[StepRuntime | None] = ContextVar("durable_step_runtime", default=None)


@dataclass(eq=False)
class StepRuntime:
    engine: Engine
    execution_id: str
    workflow_name: str
    token: str
    step_name: str
    attempt: int
    seq: int = 0
    waiting_for: list[dict[str, Any]] = field(default_factory=list)
    wake_at: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    on_cancel: Callable[[], Any] | None = None
    cancel_requested: bool = False
    _waits: dict[int, list[Row]] | None = None

    def now_ms(self) -> int:
        return self.engine.clock.now_ms()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    def existing(self, seq: int) -> list[Row] | None:
        """The recorded wait group for call ``seq`` of this step, if any."""
        if self._waits is None:
            self._waits = {}
            for row in self.engine.storage.waits_for_step(self.execution_id, self.step_name):
                self._waits.setdefault(row["seq"], []).append(row)
        return self._waits.get(seq)

    def register(self, seq: int, rows: list[dict[str, Any]], children: list[Row] = ()) -> list[Row]:  # type: ignore[assignment]
        """Store a new wait group (and child executions) atomically; return it."""
        now = self.now_ms()
        full = [
            {
                "id": new_id(),
                "execution_id": self.execution_id,
                "step_name": self.step_name,
                "seq": seq,
                **r,
            }
            for r in rows
        ]
        group = self.engine.storage.register_waits(
            self.execution_id, self.token, full, now, list(children)
        )
        assert self._waits is not None
        self._waits[seq] = group
        self.engine.after_register(self, group, list(children))
        return group

    def request_cancel(self) -> None:
        """Ask the running attempt to stop (async steps are cancelled; threads run on)."""
        self.cancel_requested = True
        if self.on_cancel is not None:
            self.on_cancel()

    def reload(self, seq: int) -> list[Row]:
        self._waits = None
        return self.existing(seq) or []

    def suspend(self, what: dict[str, Any], wake_at: int | None) -> NoReturn:
        """Record what this step waits for and leave the step (the run holds nothing)."""
        self.waiting_for.append(what)
        if wake_at is not None:
            self.wake_at = wake_at if self.wake_at is None else min(self.wake_at, wake_at)
        raise Suspend(what)


def current_runtime(what: str) -> StepRuntime:
    rt = _CURRENT.get()
    if rt is None:
        raise DurableError(f"{what}() can only be called inside a step of a running workflow")
    return rt


def current_execution_id() -> str:
    """The id of the execution whose step is running in this context."""
    return current_runtime("current_execution_id").execution_id


def activate(rt: StepRuntime | None) -> Any:
    return _CURRENT.set(rt)


def deactivate(token: Any) -> None:
    _CURRENT.reset(token)
