"""Parallel blocks: children run concurrently, each checkpointed on its own.

A child's completion is committed as soon as it happens, so after a crash
only unfinished children run again. A child that waits or awaits a retry
leaves the block pending; the run is woken when the earliest of them is due.
"""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import codec
from ..errors import SerializationError
from ..ids import new_id
from ..models import ms_to_iso
from ..retry import NO_RETRY
from ..runtime import StepRuntime
from ..storage import Row
from ..workflow import Goto, Instr, Parallel, Step, Workflow
from .errors import error_plain, error_value
from .steps import Outcome

if TYPE_CHECKING:
    from .runner import Runner


@dataclass
class _Block:
    done: dict[str, Any] = field(default_factory=dict)
    gave_up: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting_rows: list[Row] = field(default_factory=list)
    waiting_for: list[dict[str, Any]] = field(default_factory=list)
    wakes: list[int] = field(default_factory=list)
    running: dict[str, tuple[StepRuntime, Row]] = field(default_factory=dict)
    cancelled: list[tuple[StepRuntime, Row]] = field(default_factory=list)
    cancel_reason: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)


def run_parallel(runner: Runner, run: Any, wf: Workflow, instr: Instr, node: Parallel) -> bool:
    names = {c.name for c in node.steps}
    block = _Block()
    for r in runner.engine.storage.completed_steps(run.id):
        if r["step_name"] in names:
            block.done[r["step_name"]] = codec.decode(r["result"])
    for name in names:
        state = run.attempts.get(name, {})
        if state.get("gave_up"):
            block.gave_up[name] = state["error"]
        elif name not in block.done and state.get("retry_at", 0) > runner.now:
            block.wakes.append(int(state["retry_at"]))
    runnable = [
        c
        for c in node.steps
        if c.name not in block.done
        and c.name not in block.gave_up
        and run.attempts.get(c.name, {}).get("retry_at", 0) <= runner.now
    ]
    _run_children(runner, run, wf, node, runnable, block)
    if block.cancel_reason is not None:
        runner.engine.cancel(run.id, block.cancel_reason)
        return False
    if block.gave_up and node.on_error == "fail_fast":
        return _fail_fast(runner, run, wf, block)
    if len(block.done) + len(block.gave_up) == len(names):
        return _complete(runner, run, wf, instr, node, block)
    _leave_pending(runner, run, block)
    return False


def _run_children(
    runner: Runner, run: Any, wf: Workflow, node: Parallel, children: list[Step], block: _Block
) -> None:
    if not children:
        return
    futures = {
        runner.children_pool.submit(_child, runner, run, wf, node, c, block): c for c in children
    }
    pending = set(futures)
    while pending:
        _finished, pending = concurrent.futures.wait(
            pending, return_when=concurrent.futures.FIRST_COMPLETED
        )
        if block.stopped.is_set():
            break
    if block.stopped.is_set():
        with run.lock:  # siblings still running when the block stopped: cancelled
            block.cancelled = list(block.running.values())
        for rt, _row in block.cancelled:
            rt.request_cancel()


def _child(
    runner: Runner, run: Any, wf: Workflow, node: Parallel, step: Step, block: _Block
) -> None:
    if block.stopped.is_set():
        return
    with run.lock:
        rt, row = runner.begin(run, step)
        block.running[step.name] = (rt, row)
    outcome = runner.invoker.invoke(step, run.context, rt, runner.step_timeout(run, step))
    with run.lock:
        block.running.pop(step.name, None)
        if block.stopped.is_set():
            return
        _settle_child(runner, run, node, step, rt, row, outcome, block)


def _settle_child(
    runner: Runner,
    run: Any,
    node: Parallel,
    step: Step,
    rt: StepRuntime,
    row: Row,
    outcome: Outcome,
    block: _Block,
) -> None:
    if outcome.kind == "ok":
        if isinstance(outcome.value, Goto):
            error = error_plain("InvalidJumpError", f"parallel step {step.name!r} may not jump")
            _give_up(runner, run, node, step, rt, row, error, block)
            return
        try:
            text, value = codec.roundtrip(outcome.value, f"the result of step {step.name!r}")
        except SerializationError as exc:
            _give_up(runner, run, node, step, rt, row, error_value(exc), block)
            return
        runner.end(row, rt, "completed", result=text)
        run.attempts.pop(step.name, None)
        runner.save(run.checkpoint(runner.now, steps=[row]))
        runner.pub_step("step_completed", row, parallel=True)
        block.done[step.name] = value
        return
    if outcome.kind in ("suspend", "snooze"):
        if outcome.kind == "snooze":
            wake = runner.now + int(outcome.value * 1000)
            block.waiting_for.append(
                {"type": "snooze", "step": step.name, "until": ms_to_iso(wake)}
            )
        else:
            wake = rt.wake_at  # type: ignore[assignment]
            block.waiting_for.extend({**w, "step": step.name} for w in rt.waiting_for)
        if wake is not None:
            block.wakes.append(wake)
        block.waiting_rows.append(
            runner.end(row, rt, "waiting" if outcome.kind == "suspend" else "snoozed")
        )
        run.had_waits = True
        return
    if outcome.kind == "cancel":
        block.cancel_reason = str(outcome.value)
        block.stopped.set()
        return
    if outcome.kind == "fail":
        _give_up(
            runner, run, node, step, rt, row, error_plain("FailNow", str(outcome.value)), block
        )
        return
    assert outcome.error is not None
    error = error_value(outcome.error)
    retry = step.retry or NO_RETRY
    if row["attempt"] >= retry.max_attempts or isinstance(outcome.error, SerializationError):
        _give_up(runner, run, node, step, rt, row, error, block)
        return
    next_at = runner.now + int(retry.delay_seconds(row["attempt"], runner.engine.rand()) * 1000)
    run.attempts[step.name] = {"failures": row["attempt"], "retry_at": next_at}
    runner.end(row, rt, "failed", error=codec.encode(error), next_retry_at=next_at)
    cp = run.checkpoint(runner.now, steps=[row])
    cp.reset_waits_of = step.name
    runner.save(cp)
    from .runner import public_error

    runner.pub_step("step_failed", row, error=public_error(error), next_retry_at=ms_to_iso(next_at))
    block.wakes.append(next_at)


def _give_up(
    runner: Runner,
    run: Any,
    node: Parallel,
    step: Step,
    rt: StepRuntime,
    row: Row,
    error: dict[str, Any],
    block: _Block,
) -> None:
    from .runner import public_error

    run.attempts[step.name] = {
        "failures": row["attempt"],
        "gave_up": True,
        "error": public_error(error),
    }
    runner.end(row, rt, "failed", error=codec.encode(error))
    runner.save(run.checkpoint(runner.now, steps=[row]))
    runner.pub_step("step_failed", row, error=public_error(error))
    block.gave_up[step.name] = public_error(error) or {}
    if node.on_error == "fail_fast":
        block.stopped.set()


def _fail_fast(runner: Runner, run: Any, wf: Workflow, block: _Block) -> bool:
    name, cause = next(iter(block.gave_up.items()))
    rows = []
    for rt, row in block.cancelled:  # their results are discarded
        rows.append(runner.end(row, rt, "cancelled"))
    error = error_plain(
        "ParallelStepError",
        f"parallel step {name!r} failed: {cause.get('message')}",
        step=name,
        cause=cause,
    )
    runner.fail(run, wf, error, steps=rows + block.waiting_rows)
    return False


def _complete(
    runner: Runner, run: Any, wf: Workflow, instr: Instr, node: Parallel, block: _Block
) -> bool:
    results: dict[str, Any] = {n: {"ok": v} for n, v in block.done.items()}
    results.update({n: {"error": e} for n, e in block.gave_up.items()})
    ordered = {c.name: results[c.name] for c in node.steps}
    started = runner.now
    row: Row = {
        "id": new_id(),
        "execution_id": run.id,
        "step_name": instr.name,
        "step_type": "parallel",
        "status": "running",
        "attempt": 1,
        "started_at": started,
    }
    rt = StepRuntime(runner.engine, run.id, run.workflow_name, run.token, instr.name, 1)
    try:
        if node.into is not None:
            merged = node.into(run.context, ordered)
        elif isinstance(run.context, dict):
            merged = {**run.context, "__results__": ordered}
        else:
            merged = {"__results__": ordered}
        text, value = codec.roundtrip(merged, f"the result of parallel block {instr.name!r}")
    except Exception as exc:
        runner.end(row, rt, "failed", error=codec.encode(error_value(exc)))
        runner.fail(run, wf, error_value(exc), steps=[row])
        return False
    runner.end(row, rt, "completed", result=text)
    for c in node.steps:
        run.attempts.pop(c.name, None)
    run.set_context(value, text)
    run.row["current_step"] = instr.next
    extra = {"parallel_steps": [c.name for c in node.steps]}
    if instr.next is None:
        runner.finish(
            run, "completed", steps=[row], result=text, step_events=[("step_completed", row, extra)]
        )
        return False
    runner.save(run.checkpoint(runner.now, steps=[row]))
    runner.pub_step("step_completed", row, **extra)
    return True


def _leave_pending(runner: Runner, run: Any, block: _Block) -> None:
    wake = min(block.wakes) if block.wakes else None
    deadline = run.row["deadline_at"]
    if deadline is not None:
        wake = deadline if wake is None else min(wake, deadline)
    waiting = bool(block.waiting_rows)
    status = "waiting" if waiting else "pending"
    runner.save(
        run.checkpoint(
            runner.now,
            status=status,
            release=True,
            wake_at=wake,
            suspend=True,
            steps=block.waiting_rows,
        )
    )
    for row in block.waiting_rows:
        runner.pub_step(
            "step_waiting",
            row,
            waiting_for=[w for w in block.waiting_for if w.get("step") == row["step_name"]],
        )
    if waiting:
        runner.pub_workflow(
            "workflow_waiting", run, waiting_for=block.waiting_for, wake_at=ms_to_iso(wake)
        )
