"""PostgreSQL bus: the lifecycle events of every worker, in every process, by LISTEN/NOTIFY.

Each event is one NOTIFY on its topic's channel (``durable.transport.postgres``
names channels and carries large messages by reference), sent by a sender
thread in one ``pg_notify`` batch per flush, on its own autocommit connection;
a run's final events travel inside the commit that ends it. Subscribing starts
one listener per bus on a dedicated connection (never through PgBouncer in
transaction mode: pass ``listen_url`` pointing at PostgreSQL itself). When it
drops, the listener reconnects, logs it, and raises ``dropped`` on every
subscription.
"""

from __future__ import annotations

from ..clock import Clock
from ..transport.postgres import PgTransport
from .relay import RelayBus


class PostgresBus(RelayBus):
    """Pub/sub across processes and machines through one PostgreSQL database.

    >>> bus = PostgresBus("postgresql://postgres@127.0.0.1/app")  # doctest: +SKIP
    >>> app = Durable("postgresql://postgres@127.0.0.1/app", pubsub=bus)  # doctest: +SKIP

    ``Durable(url, pubsub="postgres")`` builds one on the app's database.
    ``schema``: where the tables of large messages live (``durable``); a schema other
    than ``durable``/``public`` also prefixes the channels with ``<schema>:``.
    ``channel_prefix`` keeps apart deployments that share one database and
    instance name (it is prepended to every topic before naming its channel).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "durable.pubsub",
        listen_url: str | None = None,
        channel_prefix: str | None = None,
        schema: str | None = None,
        flush_interval_seconds: float = 0.005,
        connect_timeout_seconds: float = 5.0,
        payload_retention_seconds: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        transport = PgTransport(
            url,
            listen_url=listen_url,
            channel_prefix=channel_prefix,
            schema=schema,
            connect_timeout_seconds=connect_timeout_seconds,
            payload_retention_seconds=payload_retention_seconds,
            clock=clock,
        )
        super().__init__(
            transport,
            name=name,
            flush_interval_seconds=flush_interval_seconds,
            ready_timeout_seconds=connect_timeout_seconds,
            clock=clock,
        )
        self.url = url
