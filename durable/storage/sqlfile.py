"""Load named queries from ``.sql`` files (``-- name: <query>`` blocks).

A block whose name starts with ``_`` is a fragment: other queries include it
with ``/*> _name */``. Fragments are resolved after the dialect overlay, so a
dialect that overrides a fragment changes every query that includes it.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable

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
    """Every shared ``sql/*.sql`` file, overlaid by ``sql/<dialect>/*.sql`` (same
    query name wins), in ``:name`` style. A name defined twice at one level is an error."""
    base = resources.files("durable.storage") / "sql"
    queries = _load_folder(base)
    folder = base / dialect
    if folder.is_dir():
        queries.update(_load_folder(folder))
    fragments = {k: v for k, v in queries.items() if k.startswith("_")}
    return {k: _expand(v, fragments, k) for k, v in queries.items() if not k.startswith("_")}


_INCLUDE = re.compile(r"/\*>\s*(_\w+)\s*\*/")


def _expand(sql: str, fragments: dict[str, str], where: str, depth: int = 0) -> str:
    if depth > 5:
        raise RuntimeError(f"SQL fragments nest too deeply in {where!r}")

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fragments:
            raise RuntimeError(f"query {where!r} includes unknown fragment {name!r}")
        return _expand(fragments[name], fragments, where, depth + 1)

    return _INCLUDE.sub(repl, sql)


def _load_folder(folder: Traversable) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".sql"):
            for name, sql in parse(entry.read_text("utf-8")).items():
                if name in out:
                    raise RuntimeError(f"query {name!r} is defined twice in {folder}")
                out[name] = sql
    return out


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
