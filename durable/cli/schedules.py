"""``durable schedules list|show|create|update|delete|enable|disable|trigger|next``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from ..errors import ConfigurationError
from ..retention import parse_age
from .common import app_of, json_option
from .output import emit_json, iso, table
from .shapes import schedule_json


def _manager(ctx: click.Context) -> Any:
    app = app_of(ctx)
    manager = getattr(app, "schedules", None)
    if manager is None:
        raise ConfigurationError("this version of Durable has no schedule manager (app.schedules)")
    return manager


def _show(info: Any, as_json: bool) -> None:
    data = schedule_json(info)
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
        click.echo(f"  {key:<18} {text}")


def _zoned(value: datetime | None, tz: str) -> str:
    """A time in the schedule's own zone, labelled (``2026-01-06 03:00 CET``)."""
    if value is None:
        return "-"
    try:
        local = value.astimezone(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return iso(value) or "-"
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")


@click.group("schedules")
def schedules() -> None:
    """Cron and interval schedules: list, show, create, update, delete, enable,
    disable, trigger, next."""


@schedules.command("list")
@click.option("--workflow", "-w", default=None)
@click.option("--enabled/--disabled", "enabled", default=None, help="only (not) enabled ones")
@json_option
@click.pass_context
def list_schedules(
    ctx: click.Context, workflow: str | None, enabled: bool | None, as_json: bool
) -> None:
    """Every schedule, by name."""
    items = _manager(ctx).list(workflow=workflow, enabled=enabled)
    if as_json:
        emit_json([schedule_json(i) for i in items])
        return
    table(
        ["name", "workflow", "when", "tz", "enabled", "next run", "last run"],
        [
            [
                i.name,
                i.workflow_name,
                i.cron or f"every {i.every_seconds:g}s",
                i.timezone,
                "yes" if i.enabled else "no",
                _zoned(i.next_run_at, i.timezone),
                _zoned(i.last_run_at, i.timezone),
            ]
            for i in items
        ],
    )


@schedules.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """One schedule."""
    _show(_manager(ctx).get(name), as_json)


def _timing_options(fn: Any) -> Any:
    fn = click.option("--cron", default=None, help="cron expression, read in --timezone")(fn)
    fn = click.option("--every", default=None, help="interval: seconds or 30s, 5m, 1h")(fn)
    fn = click.option("--timezone", "--tz", "timezone", default=None, help="IANA time zone")(fn)
    fn = click.option("--input", "-i", "input_text", default=None, help="JSON input or @file")(fn)
    fn = click.option("--queue", "-q", default=None)(fn)
    fn = click.option("--priority", "-p", default=None, type=int)(fn)
    fn = click.option("--catch-up", type=click.Choice(["latest", "all", "none"]), default=None)(fn)
    fn = click.option("--overlap", type=click.Choice(["allow", "skip"]), default=None)(fn)
    return fn


def _changes(**given: Any) -> dict[str, Any]:
    from .output import parse_json_value

    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key == "every":
            try:
                out["every"] = parse_age(value, "--every")
            except ConfigurationError as exc:
                raise click.BadParameter(str(exc), param_hint="--every") from None
        elif key == "input_text":
            out["input"] = parse_json_value(value, "--input")
        else:
            out[key] = value
    return out


@schedules.command("create")
@click.argument("name")
@click.argument("workflow")
@_timing_options
@click.option("--disabled", is_flag=True, help="store it disabled")
@json_option
@click.pass_context
def create(
    ctx: click.Context, /, name: str, workflow: str, disabled: bool, as_json: bool, **opts: Any
) -> None:
    """Create schedule NAME running WORKFLOW (give --cron or --every)."""
    changes = _changes(**opts)
    if ("cron" in changes) == ("every" in changes):
        raise click.UsageError("give exactly one of --cron or --every")
    info = _manager(ctx).create(name, workflow, enabled=not disabled, **changes)
    _show(info, as_json)


@schedules.command("update")
@click.argument("name")
@_timing_options
@json_option
@click.pass_context
def update(ctx: click.Context, /, name: str, as_json: bool, **opts: Any) -> None:
    """Change a schedule (only the options given)."""
    changes = _changes(**opts)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    _show(_manager(ctx).update(name, **changes), as_json)


@schedules.command("delete")
@click.argument("name")
@json_option
@click.pass_context
def delete(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete a schedule (its past runs stay)."""
    _manager(ctx).delete(name)
    if as_json:
        emit_json({"name": name, "deleted": True})
    else:
        click.echo(f"schedule {name!r} deleted")


@schedules.command("enable")
@click.argument("name")
@json_option
@click.pass_context
def enable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Enable a schedule (it fires from its next tick)."""
    _show(_manager(ctx).enable(name), as_json)


@schedules.command("disable")
@click.argument("name")
@json_option
@click.pass_context
def disable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Disable a schedule."""
    _show(_manager(ctx).disable(name), as_json)


@schedules.command("trigger")
@click.argument("name")
@json_option
@click.pass_context
def trigger(ctx: click.Context, name: str, as_json: bool) -> None:
    """Start a run of the schedule's workflow now; print its id."""
    run_id = _manager(ctx).trigger(name)
    if as_json:
        emit_json({"name": name, "id": run_id})
    else:
        click.echo(run_id)


@schedules.command("next")
@click.argument("name")
@click.option("--count", "-n", default=5, show_default=True, type=click.IntRange(1, 1000))
@json_option
@click.pass_context
def next_times(ctx: click.Context, name: str, count: int, as_json: bool) -> None:
    """The next fire times of a schedule."""
    times = _manager(ctx).next_fire_times(name, count)
    if as_json:
        emit_json(
            {"name": name, "next": [t.isoformat() for t in times], "utc": [iso(t) for t in times]}
        )
        return
    for t in times:
        click.echo(t.isoformat())
