"""Finding the user's app: ``--app module:attribute`` or ``DURABLE_APP``."""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..app import Durable


def load_app(spec: str | None, name: str | None = None) -> Durable:
    """Import ``module:attribute`` (a Durable, or a callable returning one)."""
    spec = spec or os.environ.get("DURABLE_APP")
    if not spec:
        raise click.UsageError(
            "say which app to use: --app module:attribute or DURABLE_APP=module:attribute"
        )
    if ":" not in spec:
        raise click.UsageError(f"--app {spec!r} must look like module:attribute")
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.ClickException(f"cannot import module {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise click.ClickException(f"module {module_name!r} has no attribute {attr!r}") from None
    if callable(target) and not isinstance(target, Durable):
        target = target()
    if isinstance(target, dict | list | tuple):
        return _pick(target, name, spec)
    if not isinstance(target, Durable):
        raise click.ClickException(f"{spec} is a {type(target).__name__}, not a Durable app")
    if name is not None and target.name != name:
        raise click.ClickException(f"{spec} is the instance {target.name!r}, not {name!r}")
    return target


def _pick(
    items: dict[str, object] | list[object] | tuple[object, ...], name: str | None, spec: str
) -> Durable:
    values = list(items.values()) if isinstance(items, dict) else list(items)
    apps = [a for a in values if isinstance(a, Durable)]
    if name is None:
        if len(apps) == 1:
            return apps[0]
        names = ", ".join(a.name for a in apps)
        raise click.UsageError(f"{spec} holds several instances ({names}); choose one with --name")
    for app in apps:
        if app.name == name:
            return app
    raise click.ClickException(f"{spec} has no instance named {name!r}")
