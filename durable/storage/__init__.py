"""Storage backends behind protocols; ``open_storage`` picks one from a URL.

:class:`Storage` is the core every run needs (``base.py``); the extensions
(schedules, dashboard, operations, retention) are in ``protocols.py``, and
:class:`StorageBackend` is all of them together.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..redaction import redact
from .base import Checkpoint, ClaimNext, ExecutionFilter, KnownWorkflows, Row, Storage, WaitFilter
from .protocols import (
    DashboardStorage,
    OpsStorage,
    RetentionStorage,
    ScheduleStorage,
    StorageBackend,
)

__all__ = [
    "Checkpoint",
    "ClaimNext",
    "DashboardStorage",
    "ExecutionFilter",
    "KnownWorkflows",
    "OpsStorage",
    "RetentionStorage",
    "Row",
    "ScheduleStorage",
    "Storage",
    "StorageBackend",
    "WaitFilter",
    "open_storage",
]


def open_storage(url: str, *, schema: str | None = None, **options: Any) -> StorageBackend:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``memory://`` or
    ``postgresql://user@host:5432/db``. ``schema``: PostgreSQL only (``durable`` by
    default); one SQLite file is one namespace."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(  # not echoed: it may be a bare conninfo with a password
            "the database URL is not a URL (no scheme://); "
            "use sqlite:///file.db, memory:// or postgresql://..."
        )
    scheme = url.split("://", 1)[0].lower()
    if schema is not None and scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"schema={schema!r} is for PostgreSQL; with {scheme}:// one database file is one "
            "namespace, so give each instance its own file instead"
        )
    if scheme == "sqlite":
        from .sqlite import SqliteStorage

        path = url[len("sqlite://") :]
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs.db
        if not path:
            raise ConfigurationError(
                f"SQLite URL {redact(url, url)!r} names no file; use sqlite:///durable.db"
            )
        return SqliteStorage(path, **options)
    if scheme == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStorage

        return PostgresStorage(url, schema=schema, **options)
    raise ConfigurationError(
        f"unknown database URL scheme {scheme!r} in {redact(url, url)}; "
        "use sqlite://, memory:// or postgresql://"
    )
