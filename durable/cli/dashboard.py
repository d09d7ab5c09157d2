"""``durable dashboard``: serve the web dashboard with uvicorn."""

from __future__ import annotations

import importlib
import ipaddress
from typing import Any

import click

from ..observe.logs import configure_logging
from .loading import load_app


def _load_object(spec: str, option: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"{spec!r}: use module:attribute", param_hint=option)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot load {spec!r}: {exc}", param_hint=option) from exc


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", "-p", default=8080, show_default=True, help="port to listen on")
@click.option("--read-only", is_flag=True, help="nobody may act; every caller is a viewer")
@click.option("--redact", multiple=True, help="a key whose values are masked (repeatable)")
@click.option(
    "--auth", "auth_spec", default=None, help="module:callable auth hook (request -> user)"
)
@click.option(
    "--roles", "roles_spec", default=None, help="module:attribute roles (dict or callable)"
)
@click.option("--root-path", default="", help="URL prefix when served behind a proxy")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="a Host name the dashboard answers to, besides loopback (repeatable; *.example.com)",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="listen beyond loopback without --auth (anyone who reaches the port may act)",
)
@click.option(
    "--grace", default=3.0, show_default=True, help="seconds open streams get at shutdown"
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line (the server's logs too)",
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    host: str,
    port: int,
    read_only: bool,
    redact: tuple[str, ...],
    auth_spec: str | None,
    roles_spec: str | None,
    root_path: str,
    allowed_hosts: tuple[str, ...],
    insecure_no_auth: bool,
    grace: float,
    log_level: str,
    log_format: str,
) -> None:
    """Serve the web dashboard (live runs, inputs, schedules, workers; actions audited).

    It listens on loopback and answers to loopback names only; to serve it on a
    network, give --auth (and --allowed-host for the name people use)."""
    if not is_loopback(host) and not auth_spec and not insecure_no_auth:
        raise click.UsageError(
            f"refusing to serve the dashboard on {host} without --auth: anyone who can reach "
            "that address could read every run and cancel, retry or answer them. "
            "Give --auth module:callable (see the docs), or --insecure-no-auth if only "
            "trusted machines can reach it."
        )
    try:
        import uvicorn

        from ..dashboard import create_app
    except ImportError as exc:  # pragma: no cover - needs the extra missing
        raise click.ClickException(
            f"the dashboard needs its extra: pip install 'durable[dashboard]' ({exc})"
        ) from exc
    configure_logging(log_level, log_format)
    obj = ctx.find_root().obj or {}
    app = obj.get("app") or load_app(obj.get("app_spec"), obj.get("name"), obj.get("schema"))
    asgi = create_app(
        app,
        auth=_load_object(auth_spec, "--auth") if auth_spec else None,
        roles=_load_object(roles_spec, "--roles") if roles_spec else None,
        read_only=read_only,
        redact=list(redact) or None,
        allowed_hosts=hosts_for(host, allowed_hosts),
    )
    click.echo(f"Durable dashboard for {app.name!r} on http://{host}:{port}{root_path}/")
    uvicorn.run(
        asgi,
        host=host,
        port=port,
        root_path=root_path,
        log_level=log_level.lower(),
        # json: uvicorn's loggers propagate to the root handler set up above
        log_config=None if log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=max(int(grace), 1),
    )


def is_loopback(host: str) -> bool:
    """True for an address or name that only this machine can reach."""
    name = host.strip().lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def hosts_for(bind: str, extra: tuple[str, ...]) -> list[str]:
    """Loopback names, the address the dashboard is bound to (when it is one
    address, not 0.0.0.0 or ::), and the names given with --allowed-host."""
    from ..dashboard.security import LOOPBACK_HOSTS  # the dashboard extra may be missing

    hosts = [*LOOPBACK_HOSTS, *extra]
    name = bind.strip().strip("[]")
    try:
        if not ipaddress.ip_address(name).is_unspecified:
            hosts.append(name)
    except ValueError:
        hosts.append(name)  # a host name the user chose to bind to
    return hosts
