"""Load named queries from ``.sql`` files (``-- name: <query>`` blocks)."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def parse(text: str) -> dict[str, str]:
    """Split a file into {name: sql}; comments before the first name are ignored."""
    parts = _NAME.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts), 2):
        out[parts[i]] = parts[i + 1].strip()
    return out


def load_queries(dialect: str) -> dict[str, str]:
    """Shared queries overlaid with the dialect's overrides, in ``:name`` style."""
    base = resources.files("durable.storage") / "sql"
    queries = parse((base / "queries.sql").read_text("utf-8"))
    override = base / dialect / "queries.sql"
    if override.is_file():
        queries.update(parse(override.read_text("utf-8")))
    return queries


def to_pyformat(sql: str) -> str:
    """``:name`` placeholders to psycopg's ``%(name)s``."""
    return _PARAM.sub(r"%(\1)s", sql)


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file of a dialect, in order."""
    folder = resources.files("durable.storage") / "sql" / dialect / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(out)
