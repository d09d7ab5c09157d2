"""SQLite transport: processes on one machine sharing a database file.

- Messages are rows of the ``pubsub_outbox`` table (the sender writes each
  batch in one transaction on a connection of its own; the rows' ``body`` is
  the message text). Receivers poll ``PRAGMA data_version`` (a few
  microseconds; it moves when another connection commits) every
  ``poll_interval_seconds`` and read the rows after the last one they saw.
  Senders trim rows older than ``retention_seconds``; a receiver that falls
  further behind sees a lost message (its subscriptions' ``dropped`` grows).
- Wake-ups (``WAKE_CHANNEL``) need no rows: any commit by another connection
  moves ``data_version``, and that is the signal. Sending on it does nothing.

SQLite has no channels: a receiver reads every row and its owner keeps the
messages of the topics it follows (each message names its topic).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Collection, Sequence
from typing import Any

from ..clock import Clock, SystemClock
from ..ids import new_token
from ..storage.base import CommitMessage
from ..storage.sqlfile import load_queries
from .base import WAKE_CHANNEL

log = logging.getLogger("durable.transport")

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


class SqliteTransport:
    """An outbox table and a change counter in one SQLite file."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        poll_interval_seconds: float = 0.02,
        retention_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self.origin = new_token()[:16]
        self._poll = poll_interval_seconds
        self._clock = clock or SystemClock()
        self._retention_ms = int(retention_seconds * 1000)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._listening: set[str] = set()
        self._last_id: int | None = None
        self._version = -1
        self._last_trim = 0
        self._idle = threading.Event()  # never set: a sleep the receiver can take

    def channel(self, topic: str) -> str:
        return topic

    # ---- sending ----------------------------------------------------------------

    def send(self, messages: Sequence[tuple[str, str]]) -> None:
        rows = self._rows(messages, self._clock.now_ms())
        if not rows:
            return
        if self._writer is None:
            self._writer = connect(self.path)
        conn = self._writer
        q = _queries()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(q["commit_message"], rows)
            now = rows[0]["now"]
            if now - self._last_trim > _TRIM_EVERY_MS:
                self._last_trim = now
                conn.execute(q["outbox_trim"], {"before": now - self._retention_ms})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _rows(self, messages: Sequence[tuple[str, str]], now: int) -> list[dict[str, Any]]:
        return [
            {"channel": channel, "body": text, "origin": self.origin, "now": now}
            for channel, text in messages
            if channel != WAKE_CHANNEL  # the commit that made a run runnable is the wake-up
        ]

    def commit_messages(self, messages: Sequence[tuple[str, str]]) -> list[CommitMessage] | None:
        return [
            CommitMessage(channel, text, self.origin)
            for channel, text in messages
            if channel != WAKE_CHANNEL
        ]

    def reset_sender(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self.reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def open_receiver(self) -> None:
        self.reset_receiver()
        self._reader = connect(self.path)
        self._version = -1
        if self._last_id is None:  # first start: messages from now on
            row = self._reader.execute(_queries()["outbox_last_id"]).fetchone()
            self._last_id = int(row[0])

    def listen(self, add: Collection[str], remove: Collection[str]) -> None:
        reading = bool(self._listening - {WAKE_CHANNEL})
        self._listening = (self._listening | set(add)) - set(remove)
        if not reading and self._listening - {WAKE_CHANNEL} and self._reader is not None:
            # nobody read the outbox meanwhile: follow it from now on, not from the past
            row = self._reader.execute(_queries()["outbox_last_id"]).fetchone()
            self._last_id = int(row[0])

    def receive(self, timeout: float) -> list[str | None]:
        conn = self._reader
        if conn is None:
            raise ConnectionError("the receiver is not connected")
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            self._idle.wait(min(timeout, self._poll))
            return []
        first = self._version == -1
        self._version = version
        out: list[str | None] = []
        if WAKE_CHANNEL in self._listening and not first:
            out.append(":*")  # another connection committed: wake every queue
        if self._listening - {WAKE_CHANNEL}:
            out += self._read_outbox(conn)
        return out

    def _read_outbox(self, conn: sqlite3.Connection) -> list[str | None]:
        assert self._last_id is not None
        out: list[str | None] = []
        while True:
            rows: list[Any] = conn.execute(
                _queries()["outbox_after"], {"after": self._last_id, "limit": _READ_LIMIT}
            ).fetchall()
            if rows and rows[0][0] != self._last_id + 1 and self._last_id > 0:
                out.append(None)  # rows were trimmed before we read them
            for row_id, origin, body in rows:
                self._last_id = int(row_id)
                if origin != self.origin:
                    out.append(body)
            if len(rows) < _READ_LIMIT:
                return out

    def reset_receiver(self) -> None:
        conn, self._reader = self._reader, None
        if conn is not None:
            conn.close()
