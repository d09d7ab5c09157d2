"""Run one claimed execution as far as it can go, checkpointing every step.

The runner walks the compiled program from the stored step name. Each step's
result is committed before the next step starts; a wait, a retry delay or a
hand-off to another queue releases the claim; every write is fenced by the
claim's lock token. Events are published only after their commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import codec
from ..engine import Engine, step_queue
from ..errors import LostClaimError, SerializationError, WorkflowTimeoutError
from ..models import ms_to_iso
from ..pubsub.payloads import step_payload, workflow_payload
from ..storage import Checkpoint, ClaimNext, Row
from ..workflow import Branch, Goto, Instr, Parallel, Step, Workflow
from .attempt import (
    Attempt,
    StepEvent,
    begin,
    block_attempt,
    encode_error,
    invoke,
    judge,
    public_error,
    record_retry,
    stored,
)
from .compensation import compensate, compensation_of
from .crash import budget_error, refund_death, settle_claim
from .errors import error_plain, error_value, none_input_hint
from .parallel import run_foreach, run_parallel
from .state import RunState
from .steps import Outcome, StepInvoker
from .threads import DaemonPool

log = logging.getLogger("durable.executor")


class Runner:
    def __init__(
        self,
        engine: Engine,
        invoker: StepInvoker,
        children_pool: DaemonPool,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.engine = engine
        self.invoker = invoker
        self.children_pool = children_pool
        self.should_stop = should_stop

    @property
    def now(self) -> int:
        return self.engine.clock.now_ms()

    # ---- entry ----------------------------------------------------------------

    def run(self, row: Row, claim_next: ClaimNext | None = None) -> Row | None:
        """Run a claimed execution until it ends, waits or is handed over.

        With ``claim_next`` (queue, worker id, new token, known workflows), the commit that ends this
        claim also claims the next runnable run of that queue, which is returned.
        """
        run = RunState.from_claim(row)
        run.claim_next = claim_next
        observer = self.engine.observer
        observer.run_claimed(run.row)
        self.pub_workflow("workflow_resumed", run)
        try:
            self._drive(run)
        except LostClaimError as exc:
            log.warning("execution %s: claim lost, stopping (%s)", run.id, exc)
            refund_death(self.engine, run)
        except Exception as exc:
            log.exception("execution %s: the executor failed; settling the claim", run.id)
            settle_claim(self.engine, run, exc, self.should_stop)
        finally:
            observer.run_released(run.row)
        claimed = run.releasing.claimed if run.releasing is not None else []
        return claimed[0] if claimed else None

    def _drive(self, run: RunState) -> None:
        version = run.row.get("workflow_version")
        wf = self.engine.definition(run.workflow_name, version)
        if wf is None:
            label = "" if version is None else f" version {version!r}"
            message = (
                f"workflow {run.workflow_name!r}{label} is not registered in this worker; deploy "
                "code that defines it, then retry the run"
            )
            self.fail(run, None, error_plain("WorkflowNotFoundError", message))
            return
        if run.row["current_step"] is None and run.status != "compensating":
            run.row["current_step"] = wf.program.first  # started by name from a client app
        exhausted = budget_error(run.row, self.engine.config.crash_budget)
        if exhausted is not None:
            log.error("execution %s: %s; failing it", run.id, exhausted["message"])
            if run.status == "compensating":
                run.error = {**(run.error or {}), "compensation_error": exhausted}
                self.finish(run, "compensation_failed")
            else:
                self.fail(run, wf, exhausted)
            return
        if run.status == "compensating":
            compensate(self, run, wf)
            return
        if wf.timeout is not None and run.row["deadline_at"] is None:
            run.row["deadline_at"] = (run.row["started_at"] or self.now) + int(wf.timeout * 1000)
        while self._advance(run, wf):
            pass

    def _advance(self, run: RunState, wf: Workflow) -> bool:
        """Run the current instruction; True to carry on with the next one."""
        deadline = run.row["deadline_at"]
        if deadline is not None and self.now >= deadline:
            error = error_value(
                WorkflowTimeoutError(f"workflow {wf.name!r} timed out after {wf.timeout:g}s")
            )
            self.fail(run, wf, error)
            return False
        name = run.current_step
        instr = wf.program.instrs.get(name) if name else None
        if instr is None:
            message = (
                f"step {name!r} no longer exists in workflow {wf.name!r} (was the code changed?)"
            )
            self.fail(run, wf, error_plain("UnknownStepError", message))
            return False
        assert name is not None
        queue = step_queue(wf, name)
        if queue != run.row["queue"] or self.should_stop():
            cp = run.checkpoint(
                self.now, status="pending", queue=queue, release=True, wake_at=self.now
            )
            self.save(run, cp)
            self.engine.notifier.notify(queue)
            return False
        node = instr.node
        if isinstance(node, Step):
            return self._step(run, wf, instr, node)
        if isinstance(node, Branch):
            return self._branch(run, wf, instr, node)
        if isinstance(node, Parallel):
            return run_parallel(self, run, wf, instr, node)
        return run_foreach(self, run, wf, instr, node)

    # ---- one step ---------------------------------------------------------------

    def step_timeout(self, run: RunState, step: Step) -> float | None:
        timeout = step.timeout
        deadline = run.row["deadline_at"]
        if deadline is not None:
            left = max(0.001, (deadline - self.now) / 1000)
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _step(self, run: RunState, wf: Workflow, instr: Instr, step: Step) -> bool:
        attempt = begin(self, run, step)
        outcome = invoke(self, run, attempt, run.context)
        if outcome.kind == "ok":
            return self._step_ok(run, wf, instr, attempt, outcome.value)
        if outcome.kind in ("suspend", "snooze"):
            status = "waiting" if outcome.kind == "suspend" else "snoozed"
            self.suspend(run, [attempt.end(self.now, status)], attempt, outcome)
            return False
        if outcome.kind == "cancel":
            error = encode_error(error_plain("Cancelled", str(outcome.value)))
            attempt.end(self.now, "cancelled", error=error)
            self.save(run, run.checkpoint(self.now, steps=[attempt.row]))
            self.pub_step("step_completed", attempt.row)
            self.engine.cancel(run.id, str(outcome.value))
            return False
        self.step_error(run, wf, attempt, outcome)
        return False

    def _step_ok(
        self, run: RunState, wf: Workflow, instr: Instr, attempt: Attempt, value: Any
    ) -> bool:
        step = attempt.step
        target = None
        if isinstance(value, Goto):
            why = wf.program.validate_jump(step.name, value.step)
            if why is None and step.jumps_to is not None and value.step not in step.jumps_to:
                why = f"step {step.name!r} jumped to {value.step!r}, which is not in its jumps_to"
            if why is not None:
                self._give_up(run, wf, attempt, error_plain("InvalidJumpError", why))
                return False
            target, value = value.step, value.context
        try:
            text, decoded = stored(
                value, f"the result of step {step.name!r}", self.engine.codec.max_value_bytes
            )
        except SerializationError as exc:
            self._give_up(run, wf, attempt, error_value(exc))
            return False
        row = attempt.end(self.now, "completed", result=text)
        run.attempts.pop(step.name, None)
        nxt = target or instr.next
        extra = {"jumped_to": target} if target else {}
        if nxt is None:
            self.finish(
                run,
                "completed",
                steps=[row],
                result=text,
                step_events=[("step_completed", row, extra)],
                context=(decoded, text),
            )
            return False
        cp = run.checkpoint(self.now, steps=[row], current_step=nxt, context=(decoded, text))
        self.save(run, cp)
        self.pub_step("step_completed", row, **extra)
        return True

    def _give_up(
        self, run: RunState, wf: Workflow, attempt: Attempt, error: dict[str, Any]
    ) -> None:
        row = attempt.end(self.now, "failed", error=encode_error(error))
        self.fail(
            run,
            wf,
            error,
            steps=[row],
            step_events=[("step_failed", row, {"error": public_error(error)})],
        )

    def step_error(self, run: RunState, wf: Workflow, attempt: Attempt, outcome: Outcome) -> None:
        """A failed attempt: schedule the retry off the worker, or fail the run."""
        verdict = judge(outcome, attempt.step.retry, attempt.number, self.now, self.engine.rand)
        step = attempt.step
        if (
            run.context is None
            and step.takes_arg
            and step.name != wf.program.first
            and isinstance(outcome.error, TypeError | AttributeError)
        ):
            verdict.error["message"] += none_input_hint(wf, step.name)
        next_at = verdict.retry_at
        if next_at is None:
            self._give_up(run, wf, attempt, verdict.error)
            return
        record_retry(run, attempt.step.name, attempt.number, next_at)
        error = verdict.error
        row = attempt.end(self.now, "failed", error=encode_error(error), next_retry_at=next_at)
        wake = _earliest(next_at, run.row["deadline_at"])
        cp = run.checkpoint(self.now, status="pending", release=True, wake_at=wake, steps=[row])
        cp.reset_waits_of = attempt.step.name
        self.save(run, cp)
        self.pub_step(
            "step_failed", row, error=public_error(error), next_retry_at=ms_to_iso(next_at)
        )

    def suspend(self, run: RunState, rows: list[Row], attempt: Attempt, outcome: Outcome) -> None:
        """Leave the run waiting; it holds nothing until its wake time or a wake-up."""
        if outcome.kind == "snooze":
            wake: int | None = self.now + int(outcome.value * 1000)
            waiting_for = [{"type": "snooze", "until": ms_to_iso(wake)}]
        else:
            wake, waiting_for = attempt.rt.wake_at, attempt.rt.waiting_for
        wake = _earliest(wake, run.row["deadline_at"])
        self.save(
            run,
            run.checkpoint(
                self.now, status="waiting", release=True, wake_at=wake, suspend=True, steps=rows
            ),
        )
        for row in rows:
            self.pub_step("step_waiting", row, waiting_for=waiting_for)
        self.pub_workflow("workflow_waiting", run, waiting_for=waiting_for, wake_at=ms_to_iso(wake))

    # ---- branch -------------------------------------------------------------------

    def _branch(self, run: RunState, wf: Workflow, instr: Instr, node: Branch) -> bool:
        attempt = block_attempt(self, run, instr.name, "branch")
        self.pub_step("step_started", attempt.row)
        try:
            value = node.on(run.context)
            target, case = _pick_case(instr, value)
        except Exception as exc:
            self._give_up(run, wf, attempt, error_value(exc))
            return False
        if target is None:
            message = f"branch {instr.name!r}: no case matches {value!r} and there is no default"
            self._give_up(run, wf, attempt, error_plain("NoBranchMatchError", message))
            return False
        taken = {"value": _json_safe(value), "case": case}
        row = attempt.end(self.now, "completed", result=codec.encode(taken))
        self.save(run, run.checkpoint(self.now, steps=[row], current_step=target))
        self.pub_step("step_completed", row, branch=taken, next_step=target)
        return True

    # ---- endings ------------------------------------------------------------------

    def fail(
        self,
        run: RunState,
        wf: Workflow | None,
        error: dict[str, Any],
        steps: list[Row] | None = None,
        step_events: list[StepEvent] | None = None,
    ) -> None:
        """The run failed for good: compensate finished steps, or end it failed."""
        run.error = error
        if wf is not None and wf.program.compensations and self._has_compensable(run, wf):
            self.save(run, run.checkpoint(self.now, status="compensating", steps=steps))
            for kind, row, extra in step_events or []:
                self.pub_step(kind, row, **extra)
            compensate(self, run, wf)
            return
        self.finish(run, "failed", steps=steps, step_events=step_events)

    def _has_compensable(self, run: RunState, wf: Workflow) -> bool:
        done = self.engine.storage.completed_steps(run.id)
        return any(
            compensation_of(wf, r["step_name"]) is not None
            for r in done
            if r["step_type"] == "step"
        )

    def finish(
        self,
        run: RunState,
        status: str,
        *,
        steps: list[Row] | None = None,
        result: str | None = None,
        step_events: list[StepEvent] | None = None,
        context: tuple[Any, str] | None = None,
    ) -> None:
        """End the run in a terminal status; tell a waiting parent in the same commit."""
        cp = run.checkpoint(
            self.now,
            status=status,
            terminal=True,
            result=result,
            steps=steps,
            current_step=None if status == "completed" else run.current_step,
            context=context,
        )
        if run.row["parent_id"]:
            if status == "completed":
                value = '{"status":"completed","result":' + (result or "null") + "}"
            else:
                value = codec.encode({"status": status, "error": run.error})
            cp.notify_parent = (run.id, value)
        kind = "workflow_completed" if status == "completed" else "workflow_failed"
        if status != "completed" and (run.error or {}).get("type") == "Cancelled":
            kind = "workflow_cancelled"  # cancel(compensate=True): compensations done
        info: dict[str, Any] = {} if status == "completed" else {"error": public_error(run.error)}
        # the final events travel in the commit when the bus lives in the same database
        planned = None
        if self.engine.pubsub.server is not None:
            events = [(k, step_payload(row, **extra), False) for k, row, extra in step_events or []]
            events.append((kind, workflow_payload(run.projected(cp), **info), True))
            planned = self.engine.pubsub.plan_commit(events, run.id)
        if planned is not None:
            cp.messages = planned[0]
        self.save(run, cp)
        self.engine.observer.run_ended(run.row, status, run.error)
        if planned is not None:
            planned[1]()
            return
        for step_kind, row, extra in step_events or []:
            self.pub_step(step_kind, row, **extra)
        self.pub_workflow(kind, run, **info)
        if run.row["parent_id"]:
            self.engine.notifier.notify("*")

    # ---- plumbing -------------------------------------------------------------------

    def save(self, run: RunState, checkpoint: Checkpoint) -> None:
        """Commit a checkpoint; the run takes its new state only once it is committed.

        A commit that raises leaves ``run.inflight`` set: its outcome is unknown until
        :func:`~durable.executor.crash.settle_claim` reads it back from the database.
        """
        run.inflight = checkpoint
        if not self.engine.storage.save(checkpoint):
            run.inflight = None
            run.discarded(checkpoint)
            raise LostClaimError(f"execution {run.id} was taken over or cancelled")
        run.inflight = None
        run.applied(checkpoint)

    def pub_step(self, kind: str, row: Row, **extra: Any) -> None:
        self.engine.pubsub.broadcast_step(
            kind, lambda: step_payload(row, **extra), execution_id=row["execution_id"]
        )

    def pub_workflow(self, kind: str, run: RunState, **extra: Any) -> None:
        self.engine.pubsub.broadcast_workflow(
            kind, lambda: run.payload(**extra), execution_id=run.id
        )


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _pick_case(instr: Instr, value: Any) -> tuple[str | None, Any]:
    try:
        known = value in instr.case_starts
    except TypeError:  # unhashable value: no case can match
        known = False
    if known:
        # keys match by type and value: True is not the case 1, nor 1.0 the case 1
        for key, start in instr.case_starts.items():
            if type(key) is type(value) and key == value:
                return start, _json_safe(value)
    if instr.has_default:
        return instr.default_start, "default"
    return None, None


def _json_safe(value: Any) -> Any:
    try:
        codec.encode(value)
    except SerializationError:
        return repr(value)
    return value
