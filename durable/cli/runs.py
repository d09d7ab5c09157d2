"""Commands on runs: status, list, inspect, run, cancel, retry, send-event,
provide-input, pending."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from ..app import Durable
from ..errors import InputValidationError
from ..ids import short_id
from ..models import Execution, ExecutionStatus
from ..pubsub import Subscription
from .common import app_of, json_option, resolve
from .output import (
    age,
    emit_json,
    heading,
    iso,
    now,
    parse_json_value,
    parse_time,
    short_time,
    table,
)
from .shapes import (
    execution_json,
    pending_event_json,
    pending_input_json,
    step_json,
)

STATUSES = tuple(s.value for s in ExecutionStatus)


# ---- status --------------------------------------------------------------------


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Live workers, queues (pending/running/waiting, concurrency) and counts per status."""
    app = app_of(ctx)
    app.ready()
    current = app.clock.now_ms()
    workers = []
    concurrency: dict[str, int] = {}
    for w in app.query.workers():
        beat_age = (current - w["heartbeat_at"]) / 1000
        workers.append(
            {
                "id": w["id"],
                "hostname": w["hostname"],
                "pid": w["pid"],
                "queues": w["queues"],
                "limits": w["limits"],
                "running": w["running"],
                "started_at": iso(_dt(w["started_at"])),
                "heartbeat_at": iso(_dt(w["heartbeat_at"])),
                "heartbeat_age_seconds": round(beat_age, 3),
            }
        )
        for q, n in w["queues"].items():
            concurrency[q] = concurrency.get(q, 0) + int(n)
    counts = app.query.queue_counts()
    names = sorted(set(counts) | set(concurrency))
    queues: dict[str, dict[str, Any]] = {
        q: {
            "pending": counts.get(q, {}).get("pending", 0),
            "running": counts.get(q, {}).get("running", 0),
            "waiting": counts.get(q, {}).get("waiting", 0),
            "concurrency": concurrency.get(q, 0),
        }
        for q in names
    }
    live_after = current - int(app.engine.config.stale_timeout_seconds * 1000)
    for q, view in app.query.queue_limits(app.engine.limits, current, live_after).items():
        queues.setdefault(q, {"pending": 0, "running": 0, "waiting": 0, "concurrency": 0})
        queues[q]["limits"] = view
    statuses = {s: 0 for s in STATUSES} | app.query.status_counts()
    from ..unserved import unserved_runs

    config = app.engine.config
    unserved = unserved_runs(app.storage, current, config.stale_timeout_seconds)
    if as_json:
        emit_json(
            {
                "workers": workers,
                "queues": queues,
                "statuses": statuses,
                "waiting_for_worker": [u.to_dict() for u in unserved],
            }
        )
        return
    table(
        ["worker", "host", "pid", "queues", "running", "heartbeat"],
        [
            [
                w["id"],
                w["hostname"],
                w["pid"],
                ",".join(f"{q}={n}" for q, n in w["queues"].items()),
                w["running"],
                f"{age(w['heartbeat_age_seconds'])} ago",
            ]
            for w in workers
        ],
        title="Workers",
    )
    click.echo()
    table(
        ["queue", "pending", "running", "waiting", "concurrency"],
        [
            [q, c["pending"], c["running"], c["waiting"], c["concurrency"]]
            for q, c in queues.items()
        ],
        title="Queues",
    )
    limited = {q: c["limits"] for q, c in queues.items() if "limits" in c}
    if limited:
        click.echo()
        table(
            ["queue", "limits", "in use", "tokens", "ready", "held back", "fleet"],
            [[q, *_limit_cells(v)] for q, v in limited.items()],
            title="Queue limits",
        )
    click.echo()
    table(["status", "runs"], [[s, n] for s, n in statuses.items()], title="Runs by status")
    if unserved:
        click.echo()
        table(
            ["workflow", "queue", "runs", "waiting", "why"],
            [[u.label, u.queue, u.runs, age(u.waiting_seconds), u.reason] for u in unserved],
            title="Waiting for a worker that knows them",
        )


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


# ---- list ------------------------------------------------------------------------


@click.command("list")
@click.option("--status", "-s", "statuses", multiple=True, type=click.Choice(STATUSES))
@click.option("--workflow", "-w", default=None)
@click.option("--queue", "-q", default=None)
@click.option("--schedule", default=None, help="runs started by this schedule")
@click.option("--parent", "parent_id", default=None, help="children of this run (id or prefix)")
@click.option("--since", default=None, help="created since: ISO time or age (2h, 7d)")
@click.option("--until", default=None, help="created before: ISO time or age")
@click.option(
    "--search", default=None, help="what runs hold: 'input.order.id = o-7' (context., result.)"
)
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", default=None, help="next_cursor of the previous page")
@json_option
@click.pass_context
def list_runs(
    ctx: click.Context,
    statuses: tuple[str, ...],
    workflow: str | None,
    queue: str | None,
    schedule: str | None,
    parent_id: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first (filter, then page with --cursor)."""
    app = app_of(ctx)
    page = app.list_executions(
        workflow=workflow,
        status=list(statuses) or None,
        queue=queue,
        parent_id=resolve(app, parent_id) if parent_id else None,
        schedule=schedule,
        since=parse_time(since, app.clock, "--since") if since else None,
        until=parse_time(until, app.clock, "--until") if until else None,
        search=search,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        emit_json(
            {"items": [execution_json(e) for e in page.items], "next_cursor": page.next_cursor}
        )
        return
    table(
        ["id", "workflow", "status", "queue", "step", "created", "finished"],
        [
            [
                short_id(e.id),
                e.workflow_name,
                e.status.value,
                e.queue,
                e.current_step or "-",
                short_time(e.created_at),
                short_time(e.completed_at),
            ]
            for e in page.items
        ],
    )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


def _limit_cells(view: dict[str, Any]) -> list[Any]:
    lim = view["limits"]
    parts = []
    if "concurrency" in lim:
        parts.append(f"concurrency {lim['concurrency']}")
    if "per_key" in lim:
        parts.append(f"{lim['per_key']} per key")
    if "rate" in lim:
        parts.append(f"{lim['rate']:g}/{lim['period_seconds']:g}s burst {lim['burst']}")
    held = ", ".join(f"{n} by {k}" for k, n in view["held_back"].items() if n) or "0"
    tokens = "-" if view["tokens"] is None else f"{view['tokens']:g}"
    fleet = "MISMATCH (see --json)" if view["mismatch"] else "same"
    return ["; ".join(parts), view["in_use"], tokens, view["ready"], held, fleet]


# ---- inspect ----------------------------------------------------------------------


@click.command()
@click.argument("execution_id")
@click.option("--no-logs", is_flag=True, help="leave out captured step logs")
@json_option
@click.pass_context
def inspect(ctx: click.Context, execution_id: str, no_logs: bool, as_json: bool) -> None:
    """Everything about one run: header, input, context, error, steps, logs, waits,
    parent and children, and a diagnosis when something looks stuck."""
    from ..doctor import diagnose

    app = app_of(ctx)
    run_id = resolve(app, execution_id)
    e = app.get_execution(run_id)
    steps = app.list_steps(run_id)
    children = app.list_children(run_id)
    parent = app.get_execution(e.parent_id) if e.parent_id else None
    waits = app.query.execution_waits(run_id)
    inputs = app.list_pending_inputs(execution_id=run_id)
    events = app.list_pending_events(execution_id=run_id)
    notes = diagnose(app, e, waits)
    if as_json:
        emit_json(
            {
                "execution": execution_json(e, full=True),
                "steps": [step_json(s) for s in steps],
                "pending_inputs": [pending_input_json(p) for p in inputs],
                "pending_events": [pending_event_json(p) for p in events],
                "waits": [_wait_json(w) for w in waits],
                "parent": execution_json(parent) if parent else None,
                "children": [execution_json(c) for c in children],
                "diagnosis": notes,
            }
        )
        return
    heading(f"{e.workflow_name} {e.id}")
    fields = [
        ("status", e.status.value),
        ("queue", f"{e.queue} (priority {e.priority})"),
        ("current step", e.current_step or "-"),
        ("created", short_time(e.created_at)),
        ("started", short_time(e.started_at)),
        ("finished", short_time(e.completed_at)),
        ("wake at", short_time(e.scheduled_at)),
        ("claimed by", e.locked_by or "-"),
        ("claim count", str(e.claim_count)),
        ("schedule", e.schedule_name or "-"),
        (
            "parent",
            f"{parent.id} ({parent.workflow_name}, {parent.status.value})" if parent else "-",
        ),
    ]
    for label, value in fields:
        click.echo(f"  {label:<13} {value}")
    _json_block("input", e.input)
    _json_block("context", e.context)
    if e.result is not None:
        _json_block("result", e.result)
    if e.error:
        heading("error")
        click.echo(f"  {e.error.get('type')}: {e.error.get('message')}")
        if e.error.get("traceback"):
            click.echo("  " + str(e.error["traceback"]).rstrip().replace("\n", "\n  "))
    click.echo()
    table(
        ["step", "type", "attempt", "status", "started", "duration", "error"],
        [
            [
                s.step_name,
                s.step_type.value,
                s.attempt,
                s.status.value,
                short_time(s.started_at),
                "-" if s.duration_ms is None else f"{s.duration_ms} ms",
                f"{s.error.get('type')}: {s.error.get('message')}" if s.error else "",
            ]
            for s in steps
        ],
        title="Steps",
    )
    if not no_logs:
        for s in steps:
            if s.logs:
                heading(f"logs of {s.step_name} (attempt {s.attempt})")
                for entry in s.logs:
                    where = entry.get("logger") or entry.get("source")
                    click.echo(
                        f"  {entry.get('time')} {entry.get('level'):<7} {where}: {entry.get('message')}"
                    )
    if inputs or events:
        click.echo()
        table(
            ["kind", "name", "step", "type", "timeout"],
            [
                ["input", p.input_name, p.step_name, p.input_type, short_time(p.timeout_at)]
                for p in inputs
            ]
            + [["event", p.event_name, p.step_name, "-", short_time(p.timeout_at)] for p in events],
            title="Waiting for",
        )
    if children:
        click.echo()
        table(
            ["child", "workflow", "status"],
            [[short_id(c.id), c.workflow_name, c.status.value] for c in children],
            title="Children",
        )
    if notes:
        click.echo()
        heading("diagnosis")
        for note in notes:
            click.echo(f"  - {note}")


def _json_block(label: str, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    heading(label)
    click.echo("  " + text.replace("\n", "\n  "))


def _wait_json(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": w["id"],
        "step_name": w["step_name"],
        "seq": w["seq"],
        "kind": w["kind"],
        "name": w["name"] or None,
        "status": w["status"],
        "timeout_at": iso(_dt(w["timeout_at"])),
        "child_id": w["child_id"],
        "created_at": iso(_dt(w["created_at"])),
        "resolved_at": iso(_dt(w["resolved_at"])),
    }


# ---- run ---------------------------------------------------------------------------


@click.command()
@click.argument("workflow")
@click.option("--input", "-i", "input_text", default=None, help="JSON input, or @file.json")
@click.option(
    "--id",
    "run_id",
    default=None,
    help="your own run id: a run with it already is not started again",
)
@click.option("--queue", "-q", default=None)
@click.option("--priority", "-p", default=0, show_default=True, type=int)
@click.option("--at", "at", default=None, help="start at: ISO time or delay (10m, 2h)")
@click.option("--wait", "wait", is_flag=True, help="follow the run live; exit with its outcome")
@click.option("--timeout", default=None, type=float, help="with --wait: give up after seconds")
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    workflow: str,
    input_text: str | None,
    run_id: str | None,
    queue: str | None,
    priority: int,
    at: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Start a run of WORKFLOW and print its id (exit 1 with --wait if it does not complete)."""
    app = app_of(ctx)
    value = parse_json_value(input_text, "--input") if input_text is not None else None
    when = parse_time(at, app.clock, "--at", future=True) if at else None
    run_id = app.start(
        workflow, value, id=run_id, queue=queue, priority=priority, scheduled_at=when
    )
    if not wait:
        if as_json:
            emit_json({"id": run_id, "workflow_name": workflow})
        else:
            click.echo(run_id)
        return
    if not as_json:
        click.echo(f"started {workflow} {run_id}", err=True)
    final = follow_run(app, run_id, timeout, quiet=as_json)
    if as_json:
        emit_json(execution_json(final, full=True))
    else:
        click.echo(f"{final.status.value}: {run_id}")
        if final.error:
            click.echo(f"{final.error.get('type')}: {final.error.get('message')}", err=True)
    if final.status.value != "completed":
        ctx.exit(1)


def follow_run(app: Durable, run_id: str, timeout: float | None, *, quiet: bool) -> Execution:
    """Print each step attempt as it lands until the run ends; the bus (if it reaches
    this process) wakes us early, storage is the truth."""
    sub: Subscription | None = None
    if app.pubsub.server is not None:
        sub = app.pubsub.subscribe(app.pubsub.workflow_topic(run_id), buffer=256)
    seen: set[tuple[str, str]] = set()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            e = app.get_execution(run_id)
            for s in app.list_steps(run_id):
                key = (s.id, s.status.value)
                if key in seen:
                    continue
                seen.add(key)
                if not quiet:
                    err = f"  {s.error.get('type')}: {s.error.get('message')}" if s.error else ""
                    click.echo(
                        f"  {short_time(s.completed_at or s.started_at)}  {s.step_name} "
                        f"attempt {s.attempt} {s.status.value}{err}",
                        err=True,
                    )
            if e.is_finished:
                return e
            if deadline is not None and time.monotonic() >= deadline:
                raise click.ClickException(
                    f"run {run_id} is still {e.status.value} after {timeout:g}s"
                )
            if sub is not None:
                sub.get(0.5)
            else:
                time.sleep(0.2)
    finally:
        if sub is not None:
            app.pubsub.unsubscribe(sub)


# ---- acting on runs -----------------------------------------------------------------


@click.command()
@click.argument("execution_id")
@click.option("--reason", default="cancelled from the command line", show_default=True)
@click.option(
    "--compensate",
    is_flag=True,
    help="undo the finished steps: run their compensations in reverse order",
)
@json_option
@click.pass_context
def cancel(
    ctx: click.Context, execution_id: str, reason: str, compensate: bool, as_json: bool
) -> None:
    """Cancel a run and its running children (nothing is undone without --compensate)."""
    app = app_of(ctx)
    e = app.cancel(resolve(app, execution_id), reason, compensate=compensate)
    _acted(e, as_json)


@click.command()
@click.argument("execution_id")
@json_option
@click.pass_context
def retry(ctx: click.Context, execution_id: str, as_json: bool) -> None:
    """Run a failed run again from the step that failed."""
    app = app_of(ctx)
    e = app.retry(resolve(app, execution_id))
    _acted(e, as_json)


def _acted(e: Execution, as_json: bool) -> None:
    if as_json:
        emit_json(execution_json(e))
    else:
        click.echo(f"{e.id}: {e.status.value}")


@click.command("send-event")
@click.argument("execution_id")
@click.argument("name")
@click.option("--payload", "-d", default=None, help="JSON payload, or @file.json")
@json_option
@click.pass_context
def send_event(
    ctx: click.Context, execution_id: str, name: str, payload: str | None, as_json: bool
) -> None:
    """Send event NAME to a run (delivered now, or kept until the run waits for it)."""
    app = app_of(ctx)
    value = parse_json_value(payload, "--payload") if payload is not None else None
    run_id = resolve(app, execution_id)
    delivered = app.send_event(run_id, name, value)
    if as_json:
        emit_json({"id": run_id, "event_name": name, "delivered": delivered})
    else:
        click.echo(
            f"{run_id}: event {name!r} "
            + ("delivered" if delivered else "kept until the run waits for it")
        )


@click.command("provide-input")
@click.argument("execution_id")
@click.argument("name")
@click.argument("value")
@json_option
@click.pass_context
def provide_input(
    ctx: click.Context, execution_id: str, name: str, value: str, as_json: bool
) -> None:
    """Answer input NAME of a run. VALUE is JSON (or @file.json); a bare word such as
    approved is taken as a string."""
    app = app_of(ctx)
    run_id = resolve(app, execution_id)
    parsed = _input_value(value)
    try:
        app.provide_input(run_id, name, parsed)
    except InputValidationError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        raise click.ClickException(
            f"input {name!r} rejected: {exc}" + (f" ({details})" if details else "")
        ) from None
    if as_json:
        emit_json({"id": run_id, "input_name": name, "provided": True})
    else:
        click.echo(f"{run_id}: input {name!r} provided")


def _input_value(text: str) -> Any:
    if text.startswith("@") or text.lstrip()[:1] in ("{", "[", '"'):
        return parse_json_value(text, "VALUE")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.command()
@click.option("--workflow", "-w", default=None)
@click.option("--id", "execution_id", default=None, help="one run (id or prefix)")
@click.option("--wait-name", "wait_name", default=None, help="input or event name")
@click.option("--expiring-in", default=None, help="only waits timing out within (1h, 2d)")
@click.option("--limit", "-n", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@click.pass_context
def pending(
    ctx: click.Context,
    workflow: str | None,
    execution_id: str | None,
    wait_name: str | None,
    expiring_in: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Inputs and events that runs are waiting for."""
    app = app_of(ctx)
    before = (
        parse_time(expiring_in, app.clock, "--expiring-in", future=True) if expiring_in else None
    )
    run_id = resolve(app, execution_id) if execution_id else None
    filters: dict[str, Any] = dict(
        execution_id=run_id, workflow=workflow, name=wait_name, expiring_before=before, limit=limit
    )
    inputs = app.list_pending_inputs(**filters)
    events = app.list_pending_events(**filters)
    if as_json:
        emit_json(
            {
                "inputs": [pending_input_json(p) for p in inputs],
                "events": [pending_event_json(p) for p in events],
            }
        )
        return
    current = now(app.clock)
    table(
        ["kind", "run", "workflow", "name", "type", "prompt", "expires"],
        [
            [
                "input",
                short_id(p.execution_id),
                p.workflow_name,
                p.input_name,
                p.input_type,
                p.prompt or "",
                _expires(p.timeout_at, current),
            ]
            for p in inputs
        ]
        + [
            [
                "event",
                short_id(p.execution_id),
                p.workflow_name,
                p.event_name,
                "-",
                "",
                _expires(p.timeout_at, current),
            ]
            for p in events
        ],
    )


def _expires(when: datetime | None, current: datetime) -> str:
    if when is None:
        return "never"
    return age(-(when - current).total_seconds())


COMMANDS = [status, list_runs, inspect, run, cancel, retry, send_event, provide_input, pending]
