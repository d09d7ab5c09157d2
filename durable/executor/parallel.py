"""Fan-out blocks (``parallel`` and ``foreach``): children run concurrently,
each checkpointed on its own.

A child's completion is committed as soon as it happens, so after a crash
only unfinished children run again. A child that waits or awaits a retry
leaves the block pending; the run is woken when the earliest of them is due.
A ``foreach`` child is its body step named ``body[i]``, run on item ``i``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import codec
from ..errors import SerializationError
from ..ids import new_id
from ..models import ms_to_iso
from ..retry import NO_RETRY
from ..runtime import StepRuntime
from ..storage import Row
from ..workflow import ForEach, Goto, Instr, OnError, Parallel, Step, Workflow
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


@dataclass
class FanOut:
    """What a block runs: (child step, its argument) pairs, and how results merge."""

    kind: str  # "parallel" | "foreach": the block row's step_type
    children: list[tuple[Step, Any]]
    on_error: OnError
    concurrency: int
    merge: Callable[[Any, dict[str, Any]], Any]  # (ctx, results by child name, in order)
    extra: Callable[[], dict[str, Any]]  # fields of the block's step_completed event


def run_parallel(runner: Runner, run: Any, wf: Workflow, instr: Instr, node: Parallel) -> bool:
    def merge(ctx: Any, results: dict[str, Any]) -> Any:
        if node.into is not None:
            return node.into(ctx, results)
        return (
            {**ctx, "__results__": results} if isinstance(ctx, dict) else {"__results__": results}
        )

    fan = FanOut(
        "parallel",
        [(c, run.context) for c in node.steps],
        node.on_error,
        len(node.steps),
        merge,
        lambda: {"parallel_steps": [c.name for c in node.steps]},
    )
    return run_fanout(runner, run, wf, instr, fan)


def run_foreach(runner: Runner, run: Any, wf: Workflow, instr: Instr, node: ForEach) -> bool:
    try:
        items = node.items(run.context)
        if not isinstance(items, list | tuple):
            raise TypeError(f"items= must return a list, got {type(items).__name__}")
    except Exception as exc:
        row = _block_row(run, instr, "foreach", runner.now)
        rt = StepRuntime(runner.engine, run.id, run.workflow_name, run.token, instr.name, 1)
        runner.end(row, rt, "failed", error=codec.encode(error_value(exc)))
        runner.fail(run, wf, error_value(exc), steps=[row])
        return False
    body = node.step
    children = [
        (dataclasses.replace(body, name=f"{body.name}[{i}]"), item) for i, item in enumerate(items)
    ]

    def merge(ctx: Any, results: dict[str, Any]) -> Any:
        ordered = list(results.values())
        if node.into is not None:
            return node.into(ctx, ordered)
        return (
            {**ctx, "__results__": ordered} if isinstance(ctx, dict) else {"__results__": ordered}
        )

    fan = FanOut(
        "foreach",
        children,
        node.on_error,
        node.concurrency,
        merge,
        lambda: {"items": len(children)},
    )
    return run_fanout(runner, run, wf, instr, fan)


def run_fanout(runner: Runner, run: Any, wf: Workflow, instr: Instr, fan: FanOut) -> bool:
    names = {c.name for c, _ in fan.children}
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
        (c, arg)
        for c, arg in fan.children
        if c.name not in block.done
        and c.name not in block.gave_up
        and run.attempts.get(c.name, {}).get("retry_at", 0) <= runner.now
    ]
    _run_children(runner, run, fan, runnable, block)
    if block.cancel_reason is not None:
        runner.engine.cancel(run.id, block.cancel_reason)
        return False
    if block.gave_up and fan.on_error == "fail_fast":
        return _fail_fast(runner, run, wf, fan, block)
    if len(block.done) + len(block.gave_up) == len(names):
        return _complete(runner, run, wf, instr, fan, block)
    _leave_pending(runner, run, block)
    return False


def _run_children(
    runner: Runner, run: Any, fan: FanOut, children: list[tuple[Step, Any]], block: _Block
) -> None:
    queue = list(children)
    pending: set[concurrent.futures.Future[None]] = set()
    while queue or pending:
        while queue and len(pending) < fan.concurrency and not block.stopped.is_set():
            step, arg = queue.pop(0)
            pending.add(runner.children_pool.submit(_child, runner, run, fan, step, arg, block))
        if not pending:
            break
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


def _child(runner: Runner, run: Any, fan: FanOut, step: Step, arg: Any, block: _Block) -> None:
    if block.stopped.is_set():
        return
    with run.lock:
        rt, row = runner.begin(run, step)
        block.running[step.name] = (rt, row)
    outcome = runner.invoker.invoke(step, arg, rt, runner.step_timeout(run, step))
    with run.lock:
        block.running.pop(step.name, None)
        if block.stopped.is_set():
            return
        _settle_child(runner, run, fan, step, rt, row, outcome, block)


def _settle_child(
    runner: Runner,
    run: Any,
    fan: FanOut,
    step: Step,
    rt: StepRuntime,
    row: Row,
    outcome: Outcome,
    block: _Block,
) -> None:
    if outcome.kind == "ok":
        if isinstance(outcome.value, Goto):
            error = error_plain("InvalidJumpError", f"{fan.kind} step {step.name!r} may not jump")
            _give_up(runner, run, fan, step, rt, row, error, block)
            return
        try:
            text, value = codec.roundtrip(outcome.value, f"the result of step {step.name!r}")
        except SerializationError as exc:
            _give_up(runner, run, fan, step, rt, row, error_value(exc), block)
            return
        runner.end(row, rt, "completed", result=text)
        run.attempts.pop(step.name, None)
        runner.save(run.checkpoint(runner.now, steps=[row]))
        runner.pub_step("step_completed", row, **{fan.kind: True})
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
        return
    if outcome.kind == "cancel":
        block.cancel_reason = str(outcome.value)
        block.stopped.set()
        return
    if outcome.kind == "fail":
        _give_up(runner, run, fan, step, rt, row, error_plain("FailNow", str(outcome.value)), block)
        return
    assert outcome.error is not None
    error = error_value(outcome.error)
    retry = step.retry or NO_RETRY
    if row["attempt"] >= retry.max_attempts or isinstance(outcome.error, SerializationError):
        _give_up(runner, run, fan, step, rt, row, error, block)
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
    fan: FanOut,
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
    if fan.on_error == "fail_fast":
        block.stopped.set()


def _fail_fast(runner: Runner, run: Any, wf: Workflow, fan: FanOut, block: _Block) -> bool:
    name, cause = next(iter(block.gave_up.items()))
    rows = []
    for rt, row in block.cancelled:  # their results are discarded
        rows.append(runner.end(row, rt, "cancelled"))
    error = error_plain(
        "ParallelStepError" if fan.kind == "parallel" else "ForEachStepError",
        f"{fan.kind} step {name!r} failed: {cause.get('message')}",
        step=name,
        cause=cause,
    )
    runner.fail(run, wf, error, steps=rows + block.waiting_rows)
    return False


def _block_row(run: Any, instr: Instr, kind: str, now: int) -> Row:
    return {
        "id": new_id(),
        "execution_id": run.id,
        "step_name": instr.name,
        "step_type": kind,
        "status": "running",
        "attempt": 1,
        "started_at": now,
    }


def _complete(
    runner: Runner, run: Any, wf: Workflow, instr: Instr, fan: FanOut, block: _Block
) -> bool:
    results: dict[str, Any] = {}
    for child, _arg in fan.children:
        name = child.name
        results[name] = (
            {"ok": block.done[name]} if name in block.done else {"error": block.gave_up[name]}
        )
    row = _block_row(run, instr, fan.kind, runner.now)
    rt = StepRuntime(runner.engine, run.id, run.workflow_name, run.token, instr.name, 1)
    try:
        merged = fan.merge(run.context, results)
        text, value = codec.roundtrip(merged, f"the result of {fan.kind} block {instr.name!r}")
    except Exception as exc:
        runner.end(row, rt, "failed", error=codec.encode(error_value(exc)))
        runner.fail(run, wf, error_value(exc), steps=[row])
        return False
    runner.end(row, rt, "completed", result=text)
    for name in results:
        run.attempts.pop(name, None)
    run.set_context(value, text)
    run.row["current_step"] = instr.next
    extra = fan.extra()
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
