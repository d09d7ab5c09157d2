"""Redis bus (optional extra ``durable[redis]``): the same contract over Redis pub/sub.

All events of one bus travel on one Redis channel (``durable:pubsub`` unless
told otherwise); receivers pick the topics their subscribers follow. The
sender pipelines each batch of PUBLISH commands; the receiver holds one
SUBSCRIBE connection and reconnects when it drops (events published meanwhile
are missed: ``dropped`` grows on every subscription). Works with Valkey too.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigurationError
from .relay import Message, RelayBus, decode, encode

try:
    import redis as _redis
except ImportError:  # pragma: no cover - exercised only without the extra
    _redis = None  # type: ignore[assignment]

log = logging.getLogger("durable.pubsub")


class RedisBus(RelayBus):
    """Pub/sub across processes and machines through Redis (``pubsub="redis://..."``)."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        name: str = "durable.pubsub",
        channel: str = "durable:pubsub",
        flush_interval_seconds: float = 0.002,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        if _redis is None:
            raise ConfigurationError("the Redis bus needs redis-py: pip install 'durable[redis]'")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"RedisBus needs a redis:// URL, got {url!r}")
        super().__init__(
            name,
            flush_interval_seconds=flush_interval_seconds,
            ready_timeout_seconds=connect_timeout_seconds,
        )
        self.url = url
        self.channel = channel
        self._connect_timeout = connect_timeout_seconds
        self._client: Any = None
        self._pubsub: Any = None

    def _new_client(self) -> Any:
        return _redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self._connect_timeout,
            health_check_interval=30,
        )

    # ---- sending ----------------------------------------------------------------

    def _send(self, batch: list[Message]) -> None:
        if self._client is None:
            self._client = self._new_client()
        pipe = self._client.pipeline(transaction=False)
        for message in batch:
            pipe.publish(self.channel, encode(message))
        pipe.execute()

    def _reset_sender(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _close_transport(self) -> None:
        self._reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def _open_receiver(self) -> None:
        self._reset_receiver()
        pubsub = self._new_client().pubsub()
        pubsub.subscribe(self.channel)
        # wait for the confirmation, so that subscribe() returns only once we listen
        while True:
            reply = pubsub.get_message(timeout=self._connect_timeout)
            if reply is None:
                raise ConnectionError(f"Redis did not confirm SUBSCRIBE {self.channel}")
            if reply["type"] == "subscribe":
                break
        self._pubsub = pubsub

    def _reset_receiver(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                log.debug("closing a broken Redis subscription failed", exc_info=True)

    def _receive(self) -> list[Message]:
        pubsub = self._pubsub
        assert pubsub is not None
        out: list[Message] = []
        reply = pubsub.get_message(timeout=0.2)
        while reply is not None:
            if reply["type"] == "message":
                data = reply["data"]
                message = decode(data.decode("utf-8") if isinstance(data, bytes) else data)
                if message is not None and message.get("o") != self.origin:
                    out.append(message)
            reply = pubsub.get_message(timeout=0)
        return out
