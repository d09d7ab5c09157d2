"""Notifiers that wake idle workers in other processes.

- ``PostgresNotifier``: LISTEN/NOTIFY. ``notify(queue)`` wakes this process's
  workers at once and queues the queue name; a sender thread coalesces the
  names into one ``pg_notify`` batch per flush (ids only, after the commit
  that made the run runnable, off the write path). A dedicated autocommit
  connection outside the pool LISTENs; it reconnects and logs it when it
  drops, and wakes the local workers then, since notifications may have been
  missed meanwhile.
- ``SqliteNotifier``: polls ``PRAGMA data_version`` on a connection of its own
  every ``poll_interval_seconds`` (it moves whenever another connection, in
  any process, commits) and wakes the local workers when it moves.

Both are hints: workers still poll every ``poll_interval_seconds``.
``default_notifier`` picks one for a storage.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from ..ids import new_token
from ..notify import LocalNotifier, Notifier
from ..pubsub import postgres as _pg
from ..storage import Storage

log = logging.getLogger("durable.worker")


def default_notifier(storage: Storage) -> Notifier:
    """PostgreSQL -> LISTEN/NOTIFY; a SQLite file -> data_version poller; else local."""
    from ..storage.postgres import PostgresStorage
    from ..storage.sqlite import SqliteStorage

    if isinstance(storage, PostgresStorage):
        return PostgresNotifier(storage.url)
    if isinstance(storage, SqliteStorage) and storage.path != ":memory:":
        return SqliteNotifier(storage.path)
    return LocalNotifier()


class _Background:
    """Start-once daemon threads and a stop flag."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._start_lock = threading.Lock()

    def _start(self, role: str, target: Any) -> None:
        with self._start_lock:
            if role not in self._threads and not self._stopping.is_set():
                thread = threading.Thread(target=target, name=f"durable-{role}", daemon=True)
                self._threads[role] = thread
                thread.start()

    def _join(self) -> None:
        self._stopping.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=5)


class PostgresNotifier(_Background):
    """Wake workers in every process connected to one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = "durable_wake",
        listen_url: str | None = None,
        flush_interval_seconds: float = 0.005,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        _pg.require_psycopg()
        super().__init__()
        self.url = url
        self.channel = channel
        self.origin = new_token()[:16]
        self._local = LocalNotifier()
        self._flush_interval = flush_interval_seconds
        self._connect_timeout = max(1, int(connect_timeout_seconds))
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self._send_conn: Any = None
        self._listener = _pg.PgListener(listen_url or url, [channel], connect_timeout_seconds)
        self._listening = threading.Event()
        #: how many times the listener reconnected after losing its connection
        self.reconnects = 0

    def notify(self, queue: str) -> None:
        self._local.notify(queue)
        with self._cond:
            self._pending.add(queue)
            self._cond.notify()
        if "sender" not in self._threads:
            self._start("sender", self._send_loop)

    def listener(self) -> threading.Event:
        event = self._local.listener()
        self._start("listener", self._listen_loop)
        return event

    def wait_listening(self, timeout: float) -> bool:
        """True once the LISTEN connection is up (for tests and benchmarks)."""
        return self._listening.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self._stopping.set()
            self._cond.notify_all()
        self._join()
        self._listener.close()
        self._close_sender()
        self._local.close()

    # ---- sending ----------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._stopping.is_set())
                if not self._pending:
                    return
                names, self._pending = self._pending, set()
            payloads = [f"{self.origin}:{name}" for name in sorted(names)]
            try:
                if self._send_conn is None:
                    self._send_conn = _pg.connect(self.url, self._connect_timeout)
                self._send_conn.execute(
                    _pg.queries()["pg_notify_many"], {"channel": self.channel, "payloads": payloads}
                )
            except Exception as exc:  # workers poll anyway
                log.warning("could not send wake-up notifications (%s); workers will poll", exc)
                self._close_sender()
            self._stopping.wait(self._flush_interval)

    def _close_sender(self) -> None:
        conn, self._send_conn = self._send_conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing a broken notifier connection failed", exc_info=True)

    # ---- listening ----------------------------------------------------------------

    def _listen_loop(self) -> None:
        backoff = 0.0
        lost = False
        while not self._stopping.is_set():
            try:
                self._listener.open()
                self._listening.set()
                if lost:
                    self.reconnects += 1
                    log.warning("wake-up listener reconnected to PostgreSQL")
                    self._local.notify("*")  # we may have missed wake-ups: look once
                lost, backoff = False, 0.0
                while not self._stopping.is_set():
                    for payload in self._listener.wait(0.2):
                        origin, _, queue = payload.partition(":")
                        if origin != self.origin:
                            self._local.notify(queue)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self._listening.clear()
                backoff = min(5.0, backoff * 2 or 0.1)
                log.warning(
                    "wake-up listener lost its PostgreSQL connection (%s); reconnecting in "
                    "%.1fs (workers keep polling)",
                    exc,
                    backoff,
                )
                lost = True
                self._listener.close()
                self._stopping.wait(backoff)


class SqliteNotifier(_Background):
    """Wake workers in every process sharing one SQLite file, by its change counter."""

    def __init__(self, path: str, *, poll_interval_seconds: float = 0.05) -> None:
        super().__init__()
        self.path = path
        self._interval = poll_interval_seconds
        self._local = LocalNotifier()
        self._watching = threading.Event()

    def notify(self, queue: str) -> None:
        # other processes see the commit through data_version; this one is told now
        self._local.notify(queue)

    def listener(self) -> threading.Event:
        event = self._local.listener()
        self._start("sqlite-watch", self._watch_loop)
        return event

    def wait_listening(self, timeout: float) -> bool:
        """True once the change counter is being watched (for tests and benchmarks)."""
        return self._watching.wait(timeout)

    def close(self) -> None:
        self._join()
        self._local.close()

    def _watch_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        last = None
        while not self._stopping.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                version = conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                log.warning(
                    "cannot watch %s for changes (%s); workers keep polling", self.path, exc
                )
                if conn is not None:
                    conn.close()
                conn = None
                self._stopping.wait(1.0)
                continue
            if last is not None and version != last:
                self._local.notify("*")
            last = version
            self._watching.set()
            self._stopping.wait(self._interval)
        if conn is not None:
            conn.close()
