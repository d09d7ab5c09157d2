"""Compensations (saga): undo finished steps in reverse order after a failure.

Each compensation receives the result of the step it undoes, is retried by
its own policy (3 attempts by default) off the worker, and is checkpointed,
so after a crash only unfinished compensations run. The run ends
``compensated`` or ``compensation_failed``; both keep the original error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codec
from ..errors import SerializationError
from ..models import ms_to_iso
from ..retry import Retry
from ..workflow import Workflow
from .errors import error_plain, error_value

if TYPE_CHECKING:
    from .runner import Runner

DEFAULT_COMPENSATION_RETRY = Retry(max_attempts=3, backoff="exponential", base=1.0)


def compensate(runner: Runner, run: Any, wf: Workflow) -> None:
    from .runner import public_error

    comps = wf.program.compensations
    done = runner.engine.storage.completed_steps(run.id)
    originals = [r for r in done if r["step_type"] == "step" and r["step_name"] in comps]
    finished = {r["step_name"] for r in done if r["step_type"] == "compensation"}
    for original in reversed(originals):
        comp = comps[original["step_name"]]
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
