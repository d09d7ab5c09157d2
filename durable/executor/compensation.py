"""Compensations (saga): undo finished steps in reverse order after a failure.

Each compensation receives the result of the step it undoes, is retried by
its own policy (3 attempts by default) off the worker, and is checkpointed,
so after a crash only unfinished compensations run. The run ends
``compensated`` or ``compensation_failed``; both keep the original error.
"""

from __future__ import annotations

import dataclasses

from .. import codec
from ..models import ms_to_iso
from ..retry import Retry
from ..workflow import Step, Workflow
from .attempt import (
    Driver,
    begin,
    encode_error,
    invoke,
    judge,
    public_error,
    record_retry,
    stored,
)
from .state import RunState

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


def compensate(driver: Driver, run: RunState, wf: Workflow) -> None:
    done = driver.engine.storage.completed_steps(run.id)
    originals = [
        (r, c)
        for r in done
        if r["step_type"] == "step" and (c := compensation_of(wf, r["step_name"])) is not None
    ]
    finished = {r["step_name"] for r in done if r["step_type"] == "compensation"}
    for original, comp in reversed(originals):
        if comp.name in finished:
            continue
        attempt = begin(driver, run, comp, "compensation")
        outcome = invoke(driver, run, attempt, codec.decode(original["result"]))
        info = {"compensates": original["step_name"]}
        if outcome.kind == "ok":
            try:
                text: str | None = stored(
                    outcome.value,
                    f"the result of compensation {comp.name!r}",
                    driver.engine.codec.max_value_bytes,
                )[0]
            except Exception:  # a compensation's result is informative only
                text = None
            row = attempt.end(driver.now, "completed", result=text)
            run.attempts.pop(comp.name, None)
            driver.save(run, run.checkpoint(driver.now, steps=[row]))
            driver.pub_step("step_completed", row, **info)
            continue
        policy = comp.retry or DEFAULT_COMPENSATION_RETRY
        verdict = judge(
            outcome, policy, attempt.number, driver.now, driver.engine.rand, fail_now=False
        )
        error, next_at = verdict.error, verdict.retry_at
        if next_at is not None:
            record_retry(run, comp.name, attempt.number, next_at)
            row = attempt.end(
                driver.now, "failed", error=encode_error(error), next_retry_at=next_at
            )
            cp = run.checkpoint(driver.now, release=True, wake_at=next_at, steps=[row])
            driver.save(run, cp)
            driver.pub_step(
                "step_failed",
                row,
                error=public_error(error),
                next_retry_at=ms_to_iso(next_at),
                **info,
            )
            return
        row = attempt.end(driver.now, "failed", error=encode_error(error))
        driver.finish(
            run,
            "compensation_failed",
            steps=[row],
            step_events=[("step_failed", row, {"error": public_error(error), **info})],
        )
        return
    driver.finish(run, "compensated")
