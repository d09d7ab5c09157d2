"""Finding the user's app: ``--app module:attribute`` or ``DURABLE_APP``."""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys

import click

from ..app import Durable


def load_app(spec: str | None, name: str | None = None, schema: str | None = None) -> Durable:
    """Import ``module:attribute`` (a Durable, or a callable returning one); with
    ``schema``, the same app on that PostgreSQL schema."""
    app = _load(spec, name)
    if schema is not None and schema != app.schema:
        if app.schema is None:
            raise click.UsageError(
                f"--schema is for PostgreSQL; {app.url} is one SQLite file, one namespace"
            )
        return app.with_schema(schema)
    return app


def _load(spec: str | None, name: str | None) -> Durable:
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
    made_by = ""
    if inspect.isroutine(target) or isinstance(target, functools.partial):
        target, made_by = target(), f"{spec}() returned "  # a factory
    if isinstance(target, dict | list | tuple):
        return _pick(target, name, spec, made_by)
    if not isinstance(target, Durable):
        what = f"{made_by}{describe(target)}" if made_by else f"{spec} is {describe(target)}"
        raise click.ClickException(
            f"{what}, not a Durable app; point --app at the Durable(...) object "
            "(or a function returning one)"
        )
    if name is not None and target.name != name:
        raise click.ClickException(f"{spec} is the instance {target.name!r}, not {name!r}")
    return target


#: packages whose objects are web applications people point --app at by mistake
_WEB_FRAMEWORKS = {
    "fastapi": "FastAPI",
    "starlette": "Starlette",
    "flask": "Flask",
    "django": "Django",
    "quart": "Quart",
    "litestar": "Litestar",
    "sanic": "Sanic",
    "celery": "Celery",
}


def describe(obj: object) -> str:
    """What an object is, in words: 'a FastAPI application', 'a module', 'an int'."""
    if obj is None:
        return "None"
    if inspect.ismodule(obj):
        return f"the module {obj.__name__!r}"
    if inspect.isclass(obj):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    cls = type(obj)
    top = cls.__module__.split(".")[0]
    if top in _WEB_FRAMEWORKS:
        return f"a {_WEB_FRAMEWORKS[top]} application ({cls.__module__}.{cls.__qualname__})"
    if cls.__module__ == "builtins":
        article = "an" if cls.__name__[0] in "aeiou" else "a"
        return f"{article} {cls.__name__} ({obj!r:.40})"
    return f"a {cls.__qualname__} object ({cls.__module__}.{cls.__qualname__})"


def _pick(
    items: dict[str, object] | list[object] | tuple[object, ...],
    name: str | None,
    spec: str,
    made_by: str,
) -> Durable:
    values = list(items.values()) if isinstance(items, dict) else list(items)
    apps = [a for a in values if isinstance(a, Durable)]
    if not apps:
        what = f"{made_by}{describe(items)}" if made_by else f"{spec} is {describe(items)}"
        raise click.ClickException(f"{what} holding no Durable app")
    if name is None:
        if len(apps) == 1:
            return apps[0]
        names = ", ".join(a.name for a in apps)
        raise click.UsageError(f"{spec} holds several instances ({names}); choose one with --name")
    for app in apps:
        if app.name == name:
            return app
    raise click.ClickException(f"{spec} has no instance named {name!r}")
