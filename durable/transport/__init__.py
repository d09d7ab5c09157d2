"""Transports: how wake-ups and events travel between processes (see ``base.Transport``).

``for_storage`` picks the transport that rides on a storage's own database:
LISTEN/NOTIFY for PostgreSQL, the outbox table and change counter for a SQLite
file, none for an in-memory database (one process: nothing to carry).
"""

from __future__ import annotations

from collections.abc import Callable

from ..clock import Clock
from ..storage.base import Storage
from .base import WAKE_CHANNEL, Transport

__all__ = ["WAKE_CHANNEL", "Transport", "for_storage"]


def _postgres(location: str, clock: Clock | None) -> Transport:
    from .postgres import PgTransport

    return PgTransport(location, clock=clock)


def _sqlite(location: str, clock: Clock | None) -> Transport:
    from .sqlite import SqliteTransport

    # the change counter is read every 50 ms (a SqliteBus reads its own every 20 ms)
    return SqliteTransport(location, poll_interval_seconds=0.05, clock=clock)


#: dialect -> how to open a transport on a database of that dialect
BY_DIALECT: dict[str, Callable[[str, Clock | None], Transport]] = {
    "postgres": _postgres,
    "sqlite": _sqlite,
}


def for_storage(storage: Storage, clock: Clock | None = None) -> Transport | None:
    """A new transport on ``storage``'s database, or None when it has none to share."""
    if storage.dialect == "postgres" and storage.location:
        from .postgres import PgTransport

        # the storage's schema: its tables (large messages) and its channels
        return PgTransport(storage.location, clock=clock, schema=getattr(storage, "schema", None))
    make = BY_DIALECT.get(storage.dialect)
    return None if make is None or not storage.location else make(storage.location, clock)
