"""Entry point and the core commands: worker, migrate, demo."""

from __future__ import annotations

import logging
from typing import Any

import click

from ..errors import DurableError
from .loading import load_app


class DurableGroup(click.Group):
    """Turns DurableError into one clear line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DurableError as exc:
            if ctx.params.get("debug") or (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=DurableGroup)
@click.option(
    "--app", "app_spec", envvar="DURABLE_APP", help="module:attribute of your Durable app"
)
@click.option("--name", default=None, help="the instance name, when the module holds several")
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, name: str | None, debug: bool) -> None:
    """Durable: durable, resumable workflows."""
    ctx.ensure_object(dict)
    ctx.obj.update(app_spec=app_spec, name=name, debug=debug)


def get_app(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if "app" not in obj:
        obj["app"] = load_app(obj.get("app_spec"), obj.get("name"))
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
@click.pass_context
def worker(
    ctx: click.Context, queues: tuple[str, ...], concurrency: int, grace: float, log_level: str
) -> None:
    """Run a worker until SIGTERM/SIGINT (graceful: in-flight steps finish or are released)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = get_app(ctx)
    chosen = _parse_queues(queues, concurrency)
    if chosen is None and concurrency != 10:
        chosen = {q: concurrency for q in app._all_queues()}
    app.run_worker(chosen, grace_seconds=grace)


@cli.command()
@click.option("--check", is_flag=True, help="do not migrate; exit 1 and list what is pending")
@click.pass_context
def migrate(ctx: click.Context, check: bool) -> None:
    """Apply the database schema (or check that it is current)."""
    app = get_app(ctx)
    if check:
        pending = app.pending_migrations()
        if pending:
            click.echo("pending migrations: " + ", ".join(pending))
            ctx.exit(1)
        click.echo("schema is current")
        return
    done = app.migrate()
    click.echo("applied: " + ", ".join(done) if done else "schema is current; nothing to apply")


@cli.command()
@click.option("--db", default="sqlite:///durable-demo.db", show_default=True, help="database URL")
def demo(db: str) -> None:
    """Run a small demo: workflows that retry, succeed and fail, printed live from PubSub."""
    from ..demo import run_demo

    run_demo(db)


def main() -> None:
    cli(prog_name="durable")


if __name__ == "__main__":  # pragma: no cover
    main()
