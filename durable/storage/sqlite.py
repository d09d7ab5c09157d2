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
from contextlib import contextmanager, suppress
from typing import Any

from ..errors import DatabaseGoneError, SchemaError, StorageError, WriteRejectedError
from .base import Row
from .migrations import SCHEMA_TABLE_SQL, pending, split_statements
from .params import check_params
from .sql_base import SqlStorage
from .sqlfile import load_queries

_MIN_SQLITE = (3, 35, 0)


class _SqliteTx:
    __slots__ = ("_conn", "_queries")

    def __init__(self, conn: sqlite3.Connection, queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries

    def run(self, name: str, params: dict[str, Any]) -> int:
        check_params(name, params)
        return self._conn.execute(self._queries[name], params).rowcount

    def all(self, name: str, params: dict[str, Any]) -> list[Row]:
        check_params(name, params)
        return [dict(r) for r in self._conn.execute(self._queries[name], params).fetchall()]

    def one(self, name: str, params: dict[str, Any]) -> Row | None:
        check_params(name, params)
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
        self._identity: tuple[int, int] | None = None
        if path != ":memory:" and not path.startswith("file:"):
            st = os.stat(path)
            self._identity = (st.st_dev, st.st_ino)

    @contextmanager
    def _tx(self) -> Iterator[_SqliteTx]:
        with self._lock:
            self._check_open()
            self._check_file()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, "cannot start a write") from exc
            try:
                yield _SqliteTx(self._conn, self._queries)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error | UnicodeError):
                    raise _translate(exc, self.path) from exc
                raise

    def _rollback(self) -> None:
        # SQLite itself rolls back on some errors (a full disk, an I/O error): a second
        # ROLLBACK would only hide the real error under "no transaction is active"
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _check_file(self) -> None:
        """Refuse to write once the database file was deleted or replaced: the commits
        would go to a file nobody can open again."""
        if self._identity is None:
            return
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._identity
        except OSError:
            same = False
        if not same:
            raise DatabaseGoneError(
                f"the SQLite database file {self.path!r} was deleted or replaced while open; "
                "nothing more is written to it (restore the file and restart)"
            )

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
            try:
                self._conn.execute("BEGIN IMMEDIATE")
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
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise SchemaError(f"migrating {self.path!r} failed: {exc}") from exc
                raise
        return done

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _translate(exc: BaseException, path: str, doing: str = "") -> StorageError:
    """A driver error as a StorageError with SQLite's own message (and what to do)."""
    text = str(exc)
    where = f"SQLite database {path!r}"
    if "no such table" in text:
        return SchemaError(
            f"the database {path!r} has no Durable schema ({text}); run `durable migrate --app ...` "
            "or create the app with auto_migrate=True"
        )
    if isinstance(exc, UnicodeError | sqlite3.DataError) or "too big" in text:
        return WriteRejectedError(f"{where} refused a value: {text}")
    name = getattr(exc, "sqlite_errorname", "")
    hint = ""
    if "full" in text or name == "SQLITE_FULL":
        hint = " (free disk space; the worker resumes by itself)"
    elif "readonly" in text or name.startswith("SQLITE_READONLY"):
        hint = " (make the file and its folder writable; the worker resumes by itself)"
    elif name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        hint = " (check the disk; the worker resumes by itself)"
    prefix = f"{where}: {doing}: " if doing else f"{where}: "
    return StorageError(f"{prefix}{text}{hint}")
