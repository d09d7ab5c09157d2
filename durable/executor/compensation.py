"""Compensations (saga): undo finished steps in reverse order after a failure.

Each compensation receives the result of the step it undoes, is retried by
its own policy (3 attempts by default) off the worker, and is checkpointed,
so after a crash only unfinished compensations run. The run ends
``compensated`` or ``compensation_failed``; both keep the original error.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .. import codec
from ..errors import SerializationError
from ..models import ms_to_iso
from ..retry import Retry
from ..workflow import Step, Workflow
from .errors import error_plain, error_value

if TYPE_CHECKING:
    from .runner import Runner

DEFAULT_COMPENSATION_RETRY = Retry(max_attempts=3, backoff="exponential", base=1.0)


def compensation_of(wf: Workflow, step_name: str) -> Step | None:
    """The compensation of a finished step; a foreach item ``body[3]`` gets its own
    ``body.compensate[3]``."""
    comps = wf.program.compensations
    if step_name in comps:
        return comps[step_name]
    base, bracket, index = step_name.partition("[")
    if bracket and base in comps:
        return dataclasses.replace(comps[base], name=f"{comps[base].name}[{index}")
    return None


def compensate(runner: Runner, run: Any, wf: Workflow) -> None:
    from .runner import public_error

    done = runner.engine.storage.completed_steps(run.id)
    originals = [
        (r, c)
        for r in done
        if r["step_type"] == "step" and (c := compensation_of(wf, r["step_name"])) is not None
    ]
    finished = {r["step_name"] for r in done if r["step_type"] == "compensation"}
    for original, comp in reversed(originals):
        if comp.name in finished:
            continue
        rt, row = runner.begin(run, comp, "compensation")
        outcome = runner.invoker.invoke(comp, codec.decode(original["result"]), rt, comp.timeout)
        info = {"compensates": original["step_name"]}
        if outcome.kind == "ok":
            try:
                text = codec.encode(outcome.value, f"the result of compensation {comp.name!r}")
            except SerializationError:
                text = None
            runner.end(row, rt, "completed", result=text)
            run.attempts.pop(comp.name, None)
            runner.save(run.checkpoint(runner.now, steps=[row]))
            runner.pub_step("step_completed", row, **info)
            continue
        if outcome.error is not None:
            error = error_value(outcome.error)
        else:
            error = error_plain(
                "CompensationError", f"a compensation cannot {outcome.kind} ({outcome.value})"
            )
        retry = comp.retry or DEFAULT_COMPENSATION_RETRY
        if row["attempt"] < retry.max_attempts:
            next_at = runner.now + int(
                retry.delay_seconds(row["attempt"], runner.engine.rand()) * 1000
            )
            run.attempts[comp.name] = {"failures": row["attempt"], "retry_at": next_at}
            runner.end(row, rt, "failed", error=codec.encode(error), next_retry_at=next_at)
            runner.save(run.checkpoint(runner.now, release=True, wake_at=next_at, steps=[row]))
            runner.pub_step(
                "step_failed",
                row,
                error=public_error(error),
                next_retry_at=ms_to_iso(next_at),
                **info,
            )
            return
        runner.end(row, rt, "failed", error=codec.encode(error))
        runner.finish(
            run,
            "compensation_failed",
            steps=[row],
            step_events=[("step_failed", row, {"error": public_error(error), **info})],
        )
        return
    runner.finish(run, "compensated")
