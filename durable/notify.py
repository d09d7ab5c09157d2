"""The Notifier seam: wake idle workers when a run becomes runnable.

Notifications are hints only: every worker also polls. The local notifier
covers one process; PostgreSQL LISTEN/NOTIFY and SQLite's change counter
cover several (see ``durable.queue.notifiers``).
"""

from __future__ import annotations

import threading
from typing import Protocol


class Notifier(Protocol):
    def notify(self, queue: str) -> None:
        """A run of ``queue`` became runnable (call after the commit)."""
        ...

    def listener(self) -> threading.Event:
        """An event set whenever a notification arrives; the caller clears it."""
        ...

    def close(self) -> None: ...


class LocalNotifier:
    """In-process notifications: sets every listener's event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[threading.Event] = []

    def notify(self, queue: str) -> None:
        for event in self._events:
            event.set()

    def listener(self) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events = [*self._events, event]
        return event

    def close(self) -> None:
        for event in self._events:
            event.set()
