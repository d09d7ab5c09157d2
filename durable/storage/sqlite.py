"""SQLite backend: stdlib sqlite3 in WAL mode, one file, safe across processes.

One connection per storage object, guarded by a lock: within a process writes
are serialised without SQLite's busy-wait; across processes every write
starts with ``BEGIN IMMEDIATE`` and waits up to ``busy_timeout``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import SchemaError, StorageError
from .base import Row
from .migrations import SCHEMA_TABLE_SQL, pending, split_statements
from .sql_base import SqlStorage
from .sqlfile import load_queries

_MIN_SQLITE = (3, 35, 0)


class _SqliteTx:
    __slots__ = ("_conn", "_queries")

    def __init__(self, conn: sqlite3.Connection, queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries

    def run(self, name: str, params: dict[str, Any]) -> int:
        return self._conn.execute(self._queries[name], params).rowcount

    def all(self, name: str, params: dict[str, Any]) -> list[Row]:
        return [dict(r) for r in self._conn.execute(self._queries[name], params).fetchall()]

    def one(self, name: str, params: dict[str, Any]) -> Row | None:
        row = self._conn.execute(self._queries[name], params).fetchone()
        return None if row is None else dict(row)


class SqliteStorage(SqlStorage):
    """Storage in one SQLite file (``sqlite:///path.db``)."""

    dialect = "sqlite"

    def __init__(
        self, path: str, *, busy_timeout_ms: int = 30000, synchronous: str = "NORMAL"
    ) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old; Durable needs 3.35 or newer"
            )
        self.path = path
        self.location = "" if path == ":memory:" else path
        self._lock = threading.RLock()
        if path != ":memory:":
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise StorageError(
                    f"cannot open SQLite database {path!r}: folder {folder!r} does not exist"
                )
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
            self._conn.row_factory = sqlite3.Row
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._queries = load_queries("sqlite")
        self._closed = False

    @contextmanager
    def _tx(self) -> Iterator[_SqliteTx]:
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite database {self.path!r} is unavailable: {exc}") from exc
            try:
                yield _SqliteTx(self._conn, self._queries)
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, self.path) from exc
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise _translate(exc, self.path) from exc

    @contextmanager
    def _read(self) -> Iterator[_SqliteTx]:
        with self._lock:
            self._check_open()
            try:
                yield _SqliteTx(self._conn, self._queries)
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("this storage is closed")

    def data_version(self) -> int:
        """SQLite's change counter: moves when *another* connection commits."""
        with self._lock:
            row = self._conn.execute("PRAGMA data_version").fetchone()
            return int(row[0])

    # ---- schema -------------------------------------------------------------

    def _applied(self) -> set[int]:
        rows = self._conn.execute("SELECT version FROM durable_schema_migrations").fetchall()
        return {int(r[0]) for r in rows}

    def pending_migrations(self) -> list[str]:
        with self._lock:
            exists = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'durable_schema_migrations'"
            ).fetchone()
            applied = self._applied() if exists else set()
        return [name for _, name, _ in pending("sqlite", applied)]

    def migrate(self, *, relocate: bool = False) -> list[str]:
        """Apply pending migrations (``relocate`` is PostgreSQL's: one SQLite file is
        one namespace)."""
        done: list[str] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(SCHEMA_TABLE_SQL)
                for version, name, sql in pending("sqlite", self._applied()):
                    for statement in split_statements(sql):
                        self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT INTO durable_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, int(time.time() * 1000)),
                    )
                    done.append(name)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise SchemaError(f"migrating {self.path!r} failed: {exc}") from exc
                raise
        return done

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _translate(exc: sqlite3.Error, path: str) -> StorageError:
    text = str(exc)
    if "no such table" in text:
        return SchemaError(
            f"the database {path!r} has no Durable schema ({text}); run `durable migrate --app ...` "
            "or create the app with auto_migrate=True"
        )
    return StorageError(f"SQLite error on {path!r}: {text}")
