"""Redis transport (optional extra ``durable[redis]``): Redis pub/sub, Valkey too.

A topic is its own Redis channel (``channel_prefix`` + topic; no length limit),
so ``redis-cli SUBSCRIBE durable:shop:workflows`` follows it. The sender
pipelines each batch of PUBLISH commands; the receiver holds one connection
subscribed to the channels its owner follows. Events published while it is
disconnected are missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from typing import Any

from ..errors import ConfigurationError
from ..ids import new_token
from ..redaction import DRIVER_LOGGERS, guard_driver_logs, redact
from ..storage.base import CommitMessage

try:
    import redis as _redis
except ImportError:  # pragma: no cover - exercised only without the extra
    _redis = None  # type: ignore[assignment]

log = logging.getLogger("durable.transport")


class RedisTransport:
    backend = "redis"

    def __init__(
        self, url: str, *, channel_prefix: str = "", connect_timeout_seconds: float = 5.0
    ) -> None:
        if _redis is None:
            raise ConfigurationError("the Redis bus needs redis-py: pip install 'durable[redis]'")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"a Redis transport needs a redis:// URL, got {redact(url, url)!r}"
            )
        guard_driver_logs(*DRIVER_LOGGERS)
        self.url = url
        self.prefix = channel_prefix
        self.origin = new_token()[:16]
        self._timeout = connect_timeout_seconds
        self._client: Any = None
        self._pubsub: Any = None
        self._early: list[str | None] = []  # messages read while waiting for a confirmation
        self._idle = threading.Event()  # never set: a sleep the receiver can take

    def channel(self, topic: str) -> str:
        return self.prefix + topic

    def _new_client(self) -> Any:
        return _redis.Redis.from_url(
            self.url, socket_connect_timeout=self._timeout, health_check_interval=30
        )

    # ---- sending ----------------------------------------------------------------

    def send(self, messages: Sequence[tuple[str, str]]) -> None:
        if self._client is None:
            self._client = self._new_client()
        pipe = self._client.pipeline(transaction=False)
        for channel, text in messages:
            pipe.publish(channel, text)
        pipe.execute()

    def commit_messages(self, messages: Sequence[tuple[str, str]]) -> list[CommitMessage] | None:
        return None  # Redis is not the database: nothing travels inside a commit

    def reset_sender(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self.reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def open_receiver(self) -> None:
        self.reset_receiver()
        self._pubsub = self._new_client().pubsub()
        self._early = []

    def listen(self, add: Collection[str], remove: Collection[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise ConnectionError("the listener is not connected")
        if remove:
            pubsub.unsubscribe(*remove)
        if not add:
            return
        pubsub.subscribe(*add)
        waiting = set(add)
        while waiting:  # return only once Redis confirmed: then nothing sent later is missed
            reply = pubsub.get_message(timeout=self._timeout)
            if reply is None:
                raise ConnectionError("Redis did not confirm SUBSCRIBE")
            if reply["type"] == "subscribe":
                waiting.discard(_text(reply["channel"]))
            elif reply["type"] == "message":
                self._early.append(_text(reply["data"]))

    def receive(self, timeout: float) -> list[str | None]:
        pubsub = self._pubsub
        if pubsub is None:
            raise ConnectionError("the listener is not connected")
        out, self._early = self._early, []
        if not pubsub.subscribed:  # nothing to read yet (redis-py refuses to wait then)
            if not out:
                self._idle.wait(timeout)
            return out
        reply = pubsub.get_message(timeout=0 if out else timeout)
        while reply is not None:
            if reply["type"] == "message":
                out.append(_text(reply["data"]))
            reply = pubsub.get_message(timeout=0)
        return out

    def reset_receiver(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                log.debug("closing a broken Redis subscription failed", exc_info=True)


def _text(data: Any) -> str:
    return data.decode("utf-8") if isinstance(data, bytes) else str(data)
