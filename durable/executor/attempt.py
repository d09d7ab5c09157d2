"""One attempt of a step: begin it, settle it, retry it or give up.

The runner, fan-out blocks (``parallel``/``foreach``) and compensations all go
through here, so an attempt starts, ends and is judged in one place (the place
to hook logging or tracing of attempts). The checkpoint that records a settled
attempt is the caller's: a plain step releases the run for its retry, a child of
a fan-out block keeps the claim for its siblings.

Nothing here may fail on what a step returned or raised: a result that cannot
be stored and an exception whose message cannot be read become a recorded step
failure, never an executor crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .. import codec
from ..control import FAILED_ERROR_TYPE
from ..errors import LostClaimError, SerializationError, StorageError, WriteRejectedError
from ..ids import new_id
from ..retry import NO_RETRY, Retry
from ..runtime import StepRuntime
from ..storage import Checkpoint, Row
from ..workflow import Step, Workflow
from .errors import error_plain, error_value
from .state import RunState
from .steps import Outcome, StepInvoker
from .threads import DaemonPool

if TYPE_CHECKING:
    from ..engine import Engine

StepEvent = tuple[str, Row, dict[str, Any]]


class Driver(Protocol):
    """What the parts of the executor need from the runner that drives a claim."""

    engine: Engine
    invoker: StepInvoker
    children_pool: DaemonPool

    @property
    def now(self) -> int: ...

    def save(self, run: RunState, checkpoint: Checkpoint) -> None:
        """Commit a checkpoint of ``run``; the run changes only once it committed."""
        ...

    def step_timeout(self, run: RunState, step: Step) -> float | None: ...

    def pub_step(self, kind: str, row: Row, **extra: Any) -> None: ...

    def pub_workflow(self, kind: str, run: RunState, **extra: Any) -> None: ...

    def fail(
        self,
        run: RunState,
        wf: Workflow | None,
        error: dict[str, Any],
        steps: list[Row] | None = None,
        step_events: list[StepEvent] | None = None,
    ) -> None: ...

    def finish(
        self,
        run: RunState,
        status: str,
        *,
        steps: list[Row] | None = None,
        result: str | None = None,
        step_events: list[StepEvent] | None = None,
        context: tuple[Any, str] | None = None,
    ) -> None: ...


@dataclass(eq=False)
class Attempt:
    """A begun attempt: the runtime its body runs in and its step row (to be settled)."""

    step: Step
    rt: StepRuntime
    row: Row

    @property
    def number(self) -> int:
        return int(self.row["attempt"])

    def end(self, now: int, status: str, **fields: Any) -> Row:
        """Settle the step row (status, completion time, captured logs)."""
        row = self.row
        row.update(status=status, completed_at=now, duration_ms=now - row["started_at"], **fields)
        if self.rt.logs:
            try:
                row["logs"] = codec.encode(self.rt.logs, "captured logs")
            except Exception:  # logs never cost the attempt its result
                row["logs"] = None
        self.rt.engine.observer.attempt_ended(self.rt.workflow_name, row)
        return row


def begin(driver: Driver, run: RunState, step: Step, step_type: str = "step") -> Attempt:
    """Start an attempt of ``step``: its runtime, its row, and ``step_started``."""
    number = run.failures(step.name) + 1
    rt = StepRuntime(driver.engine, run.id, run.workflow_name, run.token, step.name, number)
    row = step_row(run, step.name, step_type, driver.now, number)
    driver.pub_step("step_started", row)
    driver.engine.observer.attempt_started(run.workflow_name, row)
    return Attempt(step, rt, row)


def block_attempt(driver: Driver, run: RunState, name: str, step_type: str) -> Attempt:
    """The record of a branch decision or of a fan-out block as a whole (no body of its
    own, one attempt; no event: the caller says when it started)."""
    rt = StepRuntime(driver.engine, run.id, run.workflow_name, run.token, name, 1)
    step = Step(fn=_identity, name=name)
    return Attempt(step, rt, step_row(run, name, step_type, driver.now))


def _identity(ctx: Any) -> Any:
    return ctx


def step_row(run: RunState, name: str, step_type: str, now: int, attempt: int = 1) -> Row:
    return {
        "id": new_id(),
        "execution_id": run.id,
        "step_name": name,
        "step_type": step_type,
        "status": "running",
        "attempt": attempt,
        "started_at": now,
    }


def invoke(driver: Driver, run: RunState, attempt: Attempt, arg: Any) -> Outcome:
    """Run the attempt's body: whatever the body does becomes an Outcome, except the
    engine's own failures inside it (a wait that could not reach the database, a claim
    lost meanwhile): those are not the step's, they interrupt the attempt and the claim
    is settled from the database."""
    timeout = attempt.step.timeout
    if attempt.row["step_type"] == "step":
        timeout = driver.step_timeout(run, attempt.step)
    outcome = driver.invoker.invoke(attempt.step, arg, attempt.rt, timeout)
    error = outcome.error
    if isinstance(error, LostClaimError) or (
        isinstance(error, StorageError) and not isinstance(error, WriteRejectedError)
    ):
        raise error
    return outcome


def stored(
    value: Any, where: str, max_bytes: int = codec.DEFAULT_MAX_VALUE_BYTES
) -> tuple[str, Any]:
    """A result as stored and as a replay will see it; SerializationError for anything
    that cannot be stored (too deep, a lone surrogate, an object whose conversion fails)."""
    try:
        text, decoded = codec.roundtrip(value, where, max_bytes=max_bytes)
        text.encode("utf-8")  # a lone surrogate passes json but not the database
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError(f"{where} is nested too deeply to be stored") from None
    except Exception as exc:
        raise SerializationError(f"{where} cannot be stored: {_safe_text(exc)}") from None
    return text, decoded


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failed attempt leads to: a retry at ``retry_at``, or giving up."""

    error: dict[str, Any]
    retry_at: int | None


def judge(
    outcome: Outcome,
    policy: Retry | None,
    attempt: int,
    now: int,
    rand: Callable[[], float],
    *,
    fail_now: bool = True,
) -> Verdict:
    """Retry or give up, for an attempt that did not complete (pure). ``fail_now``: a
    ``fail()`` from the body gives up at once (compensations retry it as an error)."""
    if outcome.kind == "fail" and fail_now:
        return Verdict(error_plain(FAILED_ERROR_TYPE, str(outcome.value)), None)
    if outcome.error is None:  # a compensation that tried to wait, snooze or cancel
        message = f"a compensation cannot {outcome.kind} ({outcome.value})"
        error = error_plain("CompensationError", message)
    else:
        error = error_value(outcome.error)
    policy = policy or NO_RETRY
    if isinstance(outcome.error, SerializationError) or attempt >= policy.max_attempts:
        return Verdict(error, None)
    return Verdict(error, now + int(policy.delay_seconds(attempt, rand()) * 1000))


def record_retry(run: RunState, step_name: str, attempt: int, retry_at: int) -> None:
    run.attempts[step_name] = {"failures": attempt, "retry_at": retry_at}


def public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The error as events carry it: type and message (the traceback stays in storage)."""
    if error is None:
        return None
    return {"type": error.get("type"), "message": error.get("message")}


def encode_error(error: dict[str, Any]) -> str:
    """An error value as stored (error values hold only text: this cannot fail)."""
    try:
        return codec.encode(error)
    except Exception:
        return codec.encode({k: _safe_text(v) for k, v in error.items()})


def _safe_text(value: Any) -> str:
    try:
        text = str(value)
    except Exception:
        text = f"<{type(value).__name__} whose str() failed>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")
