"""Fan-out blocks (``parallel`` and ``foreach``): children run concurrently,
each checkpointed on its own.

A child's completion is committed as soon as it happens, so after a crash
only unfinished children run again. A child that waits or awaits a retry
leaves the block pending; the run is woken when the earliest of them is due.
A ``foreach`` child is its body step named ``body[i]``, run on item ``i``.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import codec
from ..errors import SerializationError
from ..models import ms_to_iso
from ..storage import Row
from ..workflow import ForEach, Goto, Instr, OnError, Parallel, Step, Workflow
from .attempt import (
    Attempt,
    Driver,
    begin,
    block_attempt,
    encode_error,
    invoke,
    judge,
    public_error,
    record_retry,
    stored,
)
from .errors import error_plain, error_value
from .state import RunState
from .steps import Outcome


@dataclass
class _Block:
    done: dict[str, Any] = field(default_factory=dict)
    gave_up: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting_rows: list[Row] = field(default_factory=list)
    waiting_for: list[dict[str, Any]] = field(default_factory=list)
    wakes: list[int] = field(default_factory=list)
    running: dict[str, Attempt] = field(default_factory=dict)
    cancelled: list[Attempt] = field(default_factory=list)
    cancel_reason: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)
    #: what broke the executor in a child's thread (a failed commit...): re-raised by the
    #: block, so the claim is settled from the database and nothing more is written
    crash: BaseException | None = None


@dataclass
class FanOut:
    """What a block runs: (child step, its argument) pairs, and how results merge."""

    kind: str  # "parallel" | "foreach": the block row's step_type
    children: list[tuple[Step, Callable[[], Any]]]  # (child step, its own argument, made)
    on_error: OnError
    concurrency: int
    merge: Callable[[Any, dict[str, Any]], Any]  # (ctx, results by child name, in order)
    extra: Callable[[], dict[str, Any]]  # fields of the block's step_completed event


def run_parallel(driver: Driver, run: RunState, wf: Workflow, instr: Instr, node: Parallel) -> bool:
    def merge(ctx: Any, results: dict[str, Any]) -> Any:
        if node.into is not None:
            return node.into(ctx, results)
        return (
            {**ctx, "__results__": results} if isinstance(ctx, dict) else {"__results__": results}
        )

    def own_context() -> Any:
        # each sibling gets its own copy, decoded from the stored text: an in-place write
        # is seen by nobody else, on the first run as on a replay
        return codec.decode(run.context_json)

    fan = FanOut(
        "parallel",
        [(c, own_context) for c in node.steps],
        node.on_error,
        len(node.steps),
        merge,
        lambda: {"parallel_steps": [c.name for c in node.steps]},
    )
    return run_fanout(driver, run, wf, instr, fan)


def run_foreach(driver: Driver, run: RunState, wf: Workflow, instr: Instr, node: ForEach) -> bool:
    try:
        items = node.items(codec.decode(run.context_json))
        if not isinstance(items, list | tuple):
            raise TypeError(f"items= must return a list, got {type(items).__name__}")
    except Exception as exc:
        attempt = block_attempt(driver, run, instr.name, "foreach")
        row = attempt.end(driver.now, "failed", error=encode_error(error_value(exc)))
        driver.fail(run, wf, error_value(exc), steps=[row])
        return False
    body = node.step
    children = [
        (dataclasses.replace(body, name=f"{body.name}[{i}]"), _copier(item))
        for i, item in enumerate(items)
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
    return run_fanout(driver, run, wf, instr, fan)


def _copier(item: Any) -> Callable[[], Any]:
    return lambda: copy.deepcopy(item)


def run_fanout(driver: Driver, run: RunState, wf: Workflow, instr: Instr, fan: FanOut) -> bool:
    names = {c.name for c, _ in fan.children}
    block = _Block()
    for r in driver.engine.storage.completed_steps(run.id):
        if r["step_name"] in names:
            block.done[r["step_name"]] = codec.decode(r["result"])
    for name in names:
        state = run.attempts.get(name, {})
        if state.get("gave_up"):
            block.gave_up[name] = state["error"]
        elif name not in block.done and state.get("retry_at", 0) > driver.now:
            block.wakes.append(int(state["retry_at"]))
    runnable = [
        (c, arg)
        for c, arg in fan.children
        if c.name not in block.done
        and c.name not in block.gave_up
        and run.attempts.get(c.name, {}).get("retry_at", 0) <= driver.now
    ]
    _run_children(driver, run, fan, runnable, block)
    if block.crash is not None:
        raise block.crash
    if block.cancel_reason is not None:
        driver.engine.cancel(run.id, block.cancel_reason)
        return False
    if block.gave_up and fan.on_error == "fail_fast":
        return _fail_fast(driver, run, wf, fan, block)
    if len(block.done) + len(block.gave_up) == len(names):
        return _complete(driver, run, wf, instr, fan, block)
    _leave_pending(driver, run, block)
    return False


def _run_children(
    driver: Driver,
    run: RunState,
    fan: FanOut,
    children: list[tuple[Step, Callable[[], Any]]],
    block: _Block,
) -> None:
    queue = list(children)
    pending: set[concurrent.futures.Future[None]] = set()
    while queue or pending:
        while queue and len(pending) < fan.concurrency and not block.stopped.is_set():
            step, arg = queue.pop(0)
            pending.add(driver.children_pool.submit(_child, driver, run, fan, step, arg, block))
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
        for attempt in block.cancelled:
            attempt.rt.request_cancel()


def _child(
    driver: Driver,
    run: RunState,
    fan: FanOut,
    step: Step,
    arg: Callable[[], Any],
    block: _Block,
) -> None:
    if block.stopped.is_set():
        return
    try:
        with run.lock:
            attempt = begin(driver, run, step)
            block.running[step.name] = attempt
        outcome = invoke(driver, run, attempt, arg())
        with run.lock:
            block.running.pop(step.name, None)
            if block.stopped.is_set():
                return
            _settle_child(driver, run, fan, attempt, outcome, block)
    except BaseException as exc:  # a failed commit: the block stops, the claim is settled
        with run.lock:
            if block.crash is None:
                block.crash = exc
        block.stopped.set()


def _settle_child(
    driver: Driver,
    run: RunState,
    fan: FanOut,
    attempt: Attempt,
    outcome: Outcome,
    block: _Block,
) -> None:
    step = attempt.step
    if outcome.kind == "ok":
        if isinstance(outcome.value, Goto):
            error = error_plain("InvalidJumpError", f"{fan.kind} step {step.name!r} may not jump")
            _give_up(driver, run, fan, attempt, error, block)
            return
        try:
            text, value = stored(
                outcome.value,
                f"the result of step {step.name!r}",
                driver.engine.codec.max_value_bytes,
            )
        except SerializationError as exc:
            _give_up(driver, run, fan, attempt, error_value(exc), block)
            return
        row = attempt.end(driver.now, "completed", result=text)
        run.attempts.pop(step.name, None)
        driver.save(run, run.checkpoint(driver.now, steps=[row]))
        driver.pub_step("step_completed", row, **{fan.kind: True})
        block.done[step.name] = value
        return
    if outcome.kind in ("suspend", "snooze"):
        if outcome.kind == "snooze":
            wake: int | None = driver.now + int(outcome.value * 1000)
            block.waiting_for.append(
                {"type": "snooze", "step": step.name, "until": ms_to_iso(wake)}
            )
        else:
            wake = attempt.rt.wake_at
            block.waiting_for.extend({**w, "step": step.name} for w in attempt.rt.waiting_for)
        if wake is not None:
            block.wakes.append(wake)
        status = "waiting" if outcome.kind == "suspend" else "snoozed"
        block.waiting_rows.append(attempt.end(driver.now, status))
        return
    if outcome.kind == "cancel":
        block.cancel_reason = str(outcome.value)
        block.stopped.set()
        return
    verdict = judge(outcome, step.retry, attempt.number, driver.now, driver.engine.rand)
    next_at = verdict.retry_at
    if next_at is None:
        _give_up(driver, run, fan, attempt, verdict.error, block)
        return
    record_retry(run, step.name, attempt.number, next_at)
    error = verdict.error
    row = attempt.end(driver.now, "failed", error=encode_error(error), next_retry_at=next_at)
    cp = run.checkpoint(driver.now, steps=[row])
    cp.reset_waits_of = step.name
    driver.save(run, cp)
    driver.pub_step("step_failed", row, error=public_error(error), next_retry_at=ms_to_iso(next_at))
    block.wakes.append(next_at)


def _give_up(
    driver: Driver,
    run: RunState,
    fan: FanOut,
    attempt: Attempt,
    error: dict[str, Any],
    block: _Block,
) -> None:
    name = attempt.step.name
    run.attempts[name] = {
        "failures": attempt.number,
        "gave_up": True,
        "error": public_error(error),
    }
    row = attempt.end(driver.now, "failed", error=encode_error(error))
    driver.save(run, run.checkpoint(driver.now, steps=[row]))
    driver.pub_step("step_failed", row, error=public_error(error))
    block.gave_up[name] = public_error(error) or {}
    if fan.on_error == "fail_fast":
        block.stopped.set()


def _fail_fast(driver: Driver, run: RunState, wf: Workflow, fan: FanOut, block: _Block) -> bool:
    name, cause = next(iter(block.gave_up.items()))
    rows = [attempt.end(driver.now, "cancelled") for attempt in block.cancelled]  # discarded
    error = error_plain(
        "ParallelStepError" if fan.kind == "parallel" else "ForEachStepError",
        f"{fan.kind} step {name!r} failed: {cause.get('message')}",
        step=name,
        cause=cause,
    )
    driver.fail(run, wf, error, steps=rows + block.waiting_rows)
    return False


def _complete(
    driver: Driver, run: RunState, wf: Workflow, instr: Instr, fan: FanOut, block: _Block
) -> bool:
    results: dict[str, Any] = {}
    for child, _arg in fan.children:
        name = child.name
        results[name] = (
            {"ok": block.done[name]} if name in block.done else {"error": block.gave_up[name]}
        )
    attempt = block_attempt(driver, run, instr.name, fan.kind)
    try:
        merged = fan.merge(codec.decode(run.context_json), results)
        text, value = stored(
            merged,
            f"the result of {fan.kind} block {instr.name!r}",
            driver.engine.codec.max_value_bytes,
        )
    except Exception as exc:
        row = attempt.end(driver.now, "failed", error=encode_error(error_value(exc)))
        driver.fail(run, wf, error_value(exc), steps=[row])
        return False
    row = attempt.end(driver.now, "completed", result=text)
    for name in results:
        run.attempts.pop(name, None)
    extra = fan.extra()
    if instr.next is None:
        driver.finish(
            run,
            "completed",
            steps=[row],
            result=text,
            step_events=[("step_completed", row, extra)],
            context=(value, text),
        )
        return False
    cp = run.checkpoint(driver.now, steps=[row], current_step=instr.next, context=(value, text))
    driver.save(run, cp)
    driver.pub_step("step_completed", row, **extra)
    return True


def _leave_pending(driver: Driver, run: RunState, block: _Block) -> None:
    wake = min(block.wakes) if block.wakes else None
    deadline = run.row["deadline_at"]
    if deadline is not None:
        wake = deadline if wake is None else min(wake, deadline)
    waiting = bool(block.waiting_rows)
    status = "waiting" if waiting else "pending"
    driver.save(
        run,
        run.checkpoint(
            driver.now,
            status=status,
            release=True,
            wake_at=wake,
            suspend=True,
            steps=block.waiting_rows,
        ),
    )
    for row in block.waiting_rows:
        driver.pub_step(
            "step_waiting",
            row,
            waiting_for=[w for w in block.waiting_for if w.get("step") == row["step_name"]],
        )
    if waiting:
        driver.pub_workflow(
            "workflow_waiting", run, waiting_for=block.waiting_for, wake_at=ms_to_iso(wake)
        )
