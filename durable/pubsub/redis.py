"""Redis bus (optional extra ``durable[redis]``): the same contract over Redis pub/sub.

Each event is one PUBLISH on its topic's own channel, so a plain
``redis-cli SUBSCRIBE durable:<instance>:workflows`` follows it
(``durable.transport.redis``). Works with Valkey too.
"""

from __future__ import annotations

from .relay import RelayBus


class RedisBus(RelayBus):
    """Pub/sub across processes and machines through Redis (``pubsub="redis://..."``).

    ``channel_prefix`` keeps apart deployments that share one Redis (Redis
    channels ignore the database number) and instance name.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "durable.pubsub",
        channel_prefix: str = "",
        flush_interval_seconds: float = 0.002,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        from ..transport.redis import RedisTransport

        transport = RedisTransport(
            url, channel_prefix=channel_prefix, connect_timeout_seconds=connect_timeout_seconds
        )
        super().__init__(
            transport,
            name=name,
            flush_interval_seconds=flush_interval_seconds,
            ready_timeout_seconds=connect_timeout_seconds,
        )
        self.url = url
