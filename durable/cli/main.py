"""Entry point and the core commands: worker, migrate, demo."""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from ..errors import DurableError
from ..observe.logs import configure_logging
from ..redaction import redact
from . import events, ops, runs, schedules
from .dashboard import dashboard as dashboard_command
from .loading import load_app
from .logs import logs as logs_command


class DurableGroup(click.Group):
    """Turns errors into one clear line on stderr and exit code 1 (a traceback
    only with ``--debug``); usage errors keep click's exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as exc:
            exc.__dict__["message"] = _redacted(ctx, exc.message)  # click marks it Final
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `durable ... | head`: the reader left; click exits quietly
            raise
        except DurableError as exc:
            if _debug(ctx):
                raise
            click.echo(_redacted(ctx, f"error: {exc}"), err=True)
            ctx.exit(1)
        except Exception as exc:
            if _debug(ctx):
                raise
            text = f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"
            click.echo(_redacted(ctx, text), err=True)
            ctx.exit(1)


def _redacted(ctx: click.Context, text: str) -> str:
    """Every error line goes out with URL credentials masked (the app's own URL's
    secrets too, wherever a driver quoted them)."""
    app = (ctx.obj or {}).get("app")
    return redact(text, getattr(app, "url", None))


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug") or (ctx.obj or {}).get("debug"))


@click.group(cls=DurableGroup)
@click.option(
    "--app",
    "app_spec",
    envvar="DURABLE_APP",
    help="module:attribute of your Durable app (also after the command name)",
)
@click.option(
    "--name",
    default=None,
    help="the instance name, when the module holds several (also after the command name)",
)
@click.option(
    "--schema",
    default=None,
    help="PostgreSQL schema of Durable's tables, instead of the app's own (also after the "
    "command name)",
)
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.pass_context
def cli(
    ctx: click.Context, app_spec: str | None, name: str | None, schema: str | None, debug: bool
) -> None:
    """Durable: durable, resumable workflows."""
    ctx.ensure_object(dict)
    ctx.obj.update(app_spec=app_spec, name=name, schema=schema, debug=debug)
    source = ctx.get_parameter_source("app_spec")
    ctx.obj["app_from_env"] = source is click.core.ParameterSource.ENVIRONMENT
    if not debug:
        # the driver's own connection warnings would repeat our one-line error
        logging.getLogger("psycopg").addHandler(logging.NullHandler())


#: the shared options' own parameter names (a command may have a NAME argument) -> the key
#: the root group stores them under
_SHARED_KEYS = {"shared_app_spec": "app_spec", "shared_name": "name", "shared_schema": "schema"}


def _store_shared(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or param.name not in _SHARED_KEYS:
        return value
    key = _SHARED_KEYS[param.name]
    root = ctx.find_root()
    root.ensure_object(dict)
    before = root.obj.get(key)
    if key == "app_spec" and root.obj.pop("app_from_env", False):
        before = None  # an explicit --app wins over DURABLE_APP
    if before is not None and before != value:
        flag = param.opts[0]
        raise click.UsageError(f"{flag} was given twice, as {before!r} and {value!r}")
    root.obj[key] = value
    return value


def _shared_options() -> list[click.Option]:
    return [
        click.Option(
            ["--app", "shared_app_spec"],
            default=None,
            expose_value=False,
            callback=_store_shared,
            help="module:attribute of your Durable app (also before the command)",
        ),
        click.Option(
            ["--name", "shared_name"],
            default=None,
            expose_value=False,
            callback=_store_shared,
            help="the instance name, when the module holds several",
        ),
        click.Option(
            ["--schema", "shared_schema"],
            default=None,
            expose_value=False,
            callback=_store_shared,
            help="PostgreSQL schema of Durable's tables, instead of the app's own",
        ),
    ]


def accept_shared_options(command: click.Command) -> None:
    """Give ``command`` (and every subcommand of a group) the options of the root group,
    so ``durable worker --app m:a`` works as well as ``durable --app m:a worker``."""
    known = {opt for p in command.params for opt in p.opts}
    for option in _shared_options():
        if not known & set(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_shared_options(sub)


def get_app(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if "app" not in obj:
        obj["app"] = load_app(obj.get("app_spec"), obj.get("name"), obj.get("schema"))
    return obj["app"]


def _parse_queues(values: tuple[str, ...], concurrency: int) -> dict[str, int] | None:
    if not values:
        return None
    out = {}
    for value in values:
        name, _, limit = value.partition("=")
        try:
            out[name] = int(limit) if limit else concurrency
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: use NAME or NAME=CONCURRENCY", param_hint="--queue"
            ) from None
    return out


@cli.command()
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    help="queue to serve, NAME or NAME=CONCURRENCY (repeatable)",
)
@click.option(
    "--concurrency", "-c", default=10, show_default=True, help="default concurrency per queue"
)
@click.option(
    "--grace", default=30.0, show_default=True, help="seconds in-flight steps get at shutdown"
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line with the record's fields",
)
@click.pass_context
def worker(
    ctx: click.Context,
    queues: tuple[str, ...],
    concurrency: int,
    grace: float,
    log_level: str,
    log_format: str,
) -> None:
    """Run a worker until SIGTERM/SIGINT (graceful: in-flight steps finish or are released)."""
    configure_logging(log_level, log_format)
    app = get_app(ctx)
    chosen = _parse_queues(queues, concurrency)
    if chosen is None and concurrency != 10:
        chosen = {q: concurrency for q in app._all_queues()}
    app.run_worker(chosen, grace_seconds=grace)


@cli.command()
@click.option("--check", is_flag=True, help="do not migrate; exit 1 and list what is pending")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_context
def migrate(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Apply the database schema (or, with --check, exit 1 if it is not current: a deploy gate)."""
    app = get_app(ctx)
    if check:
        pending = app.pending_migrations()
        if as_json:
            click.echo(json.dumps({"current": not pending, "pending": pending}))
        elif pending:
            click.echo("pending migrations: " + ", ".join(pending))
        else:
            click.echo("schema is current")
        if pending:
            ctx.exit(1)
        return
    done = app.migrate()
    if as_json:
        click.echo(json.dumps({"applied": done}))
        return
    click.echo("applied: " + ", ".join(done) if done else "schema is current; nothing to apply")


@cli.command()
@click.option("--db", default="sqlite:///durable-demo.db", show_default=True, help="database URL")
def demo(db: str) -> None:
    """Run a small demo: workflows that retry, succeed and fail, printed live from PubSub."""
    from ..demo import run_demo

    run_demo(db)


for _command in (*runs.COMMANDS, *ops.COMMANDS, events.events, schedules.schedules):
    cli.add_command(_command)
cli.add_command(dashboard_command)
cli.add_command(logs_command)
for _command in cli.commands.values():
    accept_shared_options(_command)


def main() -> None:
    cli(prog_name="durable")


if __name__ == "__main__":  # pragma: no cover
    main()
