"""SQLite bus: pub/sub between processes on one machine sharing a database file.

Publishers append events to the ``pubsub_outbox`` table (a sender thread
writes each batch in one transaction, on its own connection). Subscribers
poll ``PRAGMA data_version`` (a few microseconds; it moves when another
connection commits) every ``poll_interval_seconds`` and read the rows after
the last one they saw. Publishers trim rows older than ``retention_seconds``.

A subscriber that falls more than ``retention_seconds`` behind loses the
trimmed rows; it sees ``dropped`` grow on its subscriptions.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from typing import Any

from ..clock import Clock, SystemClock
from ..storage.sqlfile import load_queries
from .relay import Message, RelayBus, decode, encode

log = logging.getLogger("durable.pubsub")

_TRIM_EVERY_MS = 10_000
_READ_LIMIT = 1000


@functools.cache
def _queries() -> dict[str, str]:
    return load_queries("sqlite")


def connect(path: str, busy_timeout_ms: int = 30_000) -> sqlite3.Connection:
    """A connection of its own to the database file (autocommit; WAL is set by the storage)."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


def _same_file(a: str, b: str) -> bool:
    import os

    return os.path.abspath(a) == os.path.abspath(b)


class SqliteBus(RelayBus):
    """Pub/sub across processes through one SQLite file (``Durable(url, pubsub="sqlite")``)."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        name: str = "durable.pubsub",
        poll_interval_seconds: float = 0.02,
        flush_interval_seconds: float = 0.01,
        retention_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, flush_interval_seconds=flush_interval_seconds)
        self.path = path
        self._poll = poll_interval_seconds
        self._clock = clock or SystemClock()
        self._retention_ms = int(retention_seconds * 1000)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._last_id: int | None = None
        self._version = -1
        self._last_trim = 0

    # ---- sending ----------------------------------------------------------------

    def _send(self, batch: list[Message]) -> None:
        if self._writer is None:
            self._writer = connect(self.path)
        conn = self._writer
        q = _queries()
        now = self._clock.now_ms()
        rows = [{"origin": self.origin, "body": encode(m), "now": now} for m in batch]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(q["outbox_insert"], rows)
            if now - self._last_trim > _TRIM_EVERY_MS:
                self._last_trim = now
                conn.execute(q["outbox_trim"], {"before": now - self._retention_ms})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def commits_with(self, storage: Any) -> bool:
        path = getattr(storage, "path", None)
        return path is not None and path != ":memory:" and _same_file(path, self.path)

    def commit_record(self, topics: list[str], kind: str, payload: Any) -> tuple[str, Any] | None:
        body = encode(self._message(topics, kind, payload))
        return ("outbox_insert", {"origin": self.origin, "body": body, "now": self._clock.now_ms()})

    def _reset_sender(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    def _close_transport(self) -> None:
        self._reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def _open_receiver(self) -> None:
        self._reset_receiver()
        self._reader = connect(self.path)
        if self._last_id is None:  # first start: events from now on
            row = self._reader.execute(_queries()["outbox_last_id"]).fetchone()
            self._last_id = int(row[0])

    def _reset_receiver(self) -> None:
        conn, self._reader = self._reader, None
        if conn is not None:
            conn.close()

    def _receive(self) -> list[Message]:
        conn = self._reader
        assert conn is not None and self._last_id is not None
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            self._stopping.wait(self._poll)
            return []
        self._version = version
        out: list[Message] = []
        while True:
            rows: list[Any] = conn.execute(
                _queries()["outbox_after"], {"after": self._last_id, "limit": _READ_LIMIT}
            ).fetchall()
            if rows and rows[0][0] != self._last_id + 1 and self._last_id > 0:
                self._mark_gap()  # rows were trimmed before we read them
            for row_id, origin, body in rows:
                self._last_id = int(row_id)
                if origin != self.origin:
                    message = decode(body)
                    if message is not None:
                        out.append(message)
            if len(rows) < _READ_LIMIT:
                return out
