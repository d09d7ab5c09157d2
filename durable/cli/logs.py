"""``durable logs ID``: the logs a run's steps captured, optionally followed live."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..models import StepExecution
from .common import app_of, resolve


def _line(step: StepExecution, entry: dict[str, Any]) -> str:
    where = entry.get("logger") or entry.get("source") or ""
    return (
        f"{entry.get('time', '')} {entry.get('level', ''):<7} "
        f"{step.step_name}#{step.attempt} {where}: {entry.get('message', '')}"
    )


@click.command("logs")
@click.argument("execution_id")
@click.option("--step", "step_name", default=None, help="only this step's logs")
@click.option(
    "--follow", "-f", is_flag=True, help="keep printing new logs until the run ends (like tail -f)"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per log entry")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    hidden=True,
    help="seconds between reads while following",
)
@click.pass_context
def logs(
    ctx: click.Context,
    execution_id: str,
    step_name: str | None,
    follow: bool,
    as_json: bool,
    interval: float,
) -> None:
    """Print what a run's steps logged (every attempt, oldest first).

    Captured logs are stored when an attempt ends, so --follow shows each attempt's
    lines once it finishes, waits or fails.
    """
    app = app_of(ctx)
    run_id = resolve(app, execution_id)
    printed: dict[str, int] = {}  # attempt id -> entries already printed
    known_steps: set[str] = set()
    while True:
        execution = app.get_execution(run_id)  # read first: the logs below are at least as new
        steps = app.list_steps(run_id)
        known_steps |= {s.step_name for s in steps}
        for s in steps:
            if step_name is not None and s.step_name != step_name:
                continue
            for entry in s.logs[printed.get(s.id, 0) :]:
                if as_json:
                    item = {"step_name": s.step_name, "attempt": s.attempt, **entry}
                    click.echo(json.dumps(item, default=str))
                else:
                    click.echo(_line(s, entry))
            printed[s.id] = len(s.logs)
        if not follow or execution.is_finished:
            break
        time.sleep(interval)
    if step_name is not None and step_name not in known_steps:
        click.echo(f"run {run_id} has no step {step_name!r} (yet)", err=True)
