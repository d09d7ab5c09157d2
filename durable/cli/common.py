"""Helpers shared by the commands: the app, ``--json``, id prefixes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..app import Durable

F = TypeVar("F", bound=Callable[..., Any])


def app_of(ctx: click.Context) -> Durable:
    """The app named by --app/DURABLE_APP (loaded once per invocation)."""
    from .main import get_app

    app: Durable = get_app(ctx)
    return app


def json_option(fn: F) -> F:
    """``--json``: print one documented JSON document instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")(fn)


def resolve(app: Durable, id_or_prefix: str) -> str:
    """A full execution id from an id or a unique prefix (ambiguity is refused,
    with the candidates listed)."""
    app.ready()
    return app.query.resolve_id(id_or_prefix.strip())
