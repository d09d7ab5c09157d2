"""SQLite bus: pub/sub between processes on one machine sharing a database file.

Events are rows of the ``pubsub_outbox`` table whose body is the JSON message
(``durable.transport.sqlite``); subscribers poll ``PRAGMA data_version`` every
``poll_interval_seconds`` and read the rows after the last one they saw.
Publishers trim rows older than ``retention_seconds``: a subscriber that falls
further behind sees ``dropped`` grow on its subscriptions.
"""

from __future__ import annotations

from ..clock import Clock
from ..transport.sqlite import SqliteTransport
from .relay import RelayBus


class SqliteBus(RelayBus):
    """Pub/sub across processes through one SQLite file (``Durable(url, pubsub="sqlite")``)."""

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
        transport = SqliteTransport(
            path,
            poll_interval_seconds=poll_interval_seconds,
            retention_seconds=retention_seconds,
            clock=clock,
        )
        super().__init__(
            transport, name=name, flush_interval_seconds=flush_interval_seconds, clock=clock
        )
        self.path = path
