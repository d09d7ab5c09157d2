"""Wake-ups of idle workers in other processes, over a transport.

``notify(queue)`` wakes this process's workers at once and queues the queue
name; the transport's sender thread coalesces the names into one batch per
flush (ids only, after the commit that made the run runnable, off the write
path) on the ``durable_wake`` channel, as ``origin:queue`` texts. The receiver
thread wakes the local workers when a text of another process arrives, and
once more after a reconnection, since wake-ups may have been missed meanwhile.

- ``PostgresNotifier``: LISTEN/NOTIFY on a dedicated connection.
- ``SqliteNotifier``: the file's ``PRAGMA data_version`` (it moves whenever
  another connection, in any process, commits); nothing is sent.

Both are hints: workers still poll every ``poll_interval_seconds``.
``durable.signals.open_signals`` picks one for a storage.
"""

from __future__ import annotations

import logging
import threading

from ..notify import LocalNotifier
from ..transport.base import WAKE_CHANNEL, Transport
from ..transport.threads import Receiver, Sender

log = logging.getLogger("durable.worker")


class TransportNotifier:
    """Wake workers in every process that shares the transport's backend."""

    def __init__(self, transport: Transport, *, flush_interval_seconds: float = 0.005) -> None:
        self.transport = transport
        self.origin = transport.origin
        self._local = LocalNotifier()
        self._pending: set[str] = set()
        self._sender = Sender(
            f"{transport.backend}-wake-sender",
            take=self._take,
            ship=self._ship,
            on_failure=self._failed,
            flush_interval_seconds=flush_interval_seconds,
        )
        self._receiver = Receiver(
            transport, f"{transport.backend}-wake", deliver=self._deliver, on_gap=self._gap
        )

    @property
    def reconnects(self) -> int:
        """How many times the listener reconnected after losing its connection."""
        return self._receiver.reconnects

    def notify(self, queue: str) -> None:
        self._local.notify(queue)
        sender = self._sender
        with sender.cond:
            self._pending.add(queue)
            sender.kick_locked()
        sender.start()

    def listener(self) -> threading.Event:
        event = self._local.listener()
        self._receiver.want(WAKE_CHANNEL, None)
        return event

    def wait_listening(self, timeout: float) -> bool:
        """True once the listener is up (for tests and benchmarks)."""
        return self._receiver.listening.wait(timeout)

    def close(self) -> None:
        self._sender.close()
        self._receiver.close()
        self.transport.close()
        self._local.close()

    def _take(self) -> list[str]:
        names, self._pending = sorted(self._pending), set()
        return names

    def _ship(self, names: list[str]) -> None:
        self.transport.send([(WAKE_CHANNEL, f"{self.origin}:{name}") for name in names])

    def _failed(self, names: list[str], exc: Exception) -> None:
        log.warning("could not send wake-up notifications (%s); workers will poll", exc)
        self.transport.reset_sender()

    def _deliver(self, texts: list[str | None]) -> None:
        for text in texts:
            origin, _, queue = (text or ":*").partition(":")
            if origin != self.origin:
                self._local.notify(queue or "*")

    def _gap(self) -> None:
        self._local.notify("*")  # we may have missed wake-ups: look once


class PostgresNotifier(TransportNotifier):
    """Wake workers in every process connected to one PostgreSQL database."""

    def __init__(
        self, url: str, *, listen_url: str | None = None, connect_timeout_seconds: float = 5.0
    ) -> None:
        from ..transport.postgres import PgTransport

        transport = PgTransport(
            url, listen_url=listen_url, connect_timeout_seconds=connect_timeout_seconds
        )
        super().__init__(transport)


class SqliteNotifier(TransportNotifier):
    """Wake workers in every process sharing one SQLite file, by its change counter."""

    def __init__(self, path: str, *, poll_interval_seconds: float = 0.05) -> None:
        from ..transport.sqlite import SqliteTransport

        super().__init__(SqliteTransport(path, poll_interval_seconds=poll_interval_seconds))
