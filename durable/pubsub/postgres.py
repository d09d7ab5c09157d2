"""PostgreSQL bus: lifecycle events of every worker, in every process, by LISTEN/NOTIFY.

Publishing is off the executor's path: a sender thread batches queued events
into one ``SELECT pg_notify(...) FROM unnest(...)`` per flush (every few ms
under load), on its own autocommit connection. A message whose JSON exceeds
NOTIFY's 8000-byte limit is stored in ``pubsub_payloads`` in the same
transaction and travels by reference (its id); rows older than
``payload_retention_seconds`` are trimmed by the senders.

Subscribing starts one listener per bus: a dedicated autocommit connection,
outside any pool (never through PgBouncer in transaction mode: pass
``listen_url`` pointing at PostgreSQL itself). When it drops, the listener
reconnects, logs it, and raises ``dropped`` on every subscription; events
published while it was away are not delivered (see ``durable.pubsub.relay``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..storage.sqlfile import load_queries, to_pyformat
from .relay import Message, RelayBus, decode, encode

try:
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("durable.pubsub")

#: NOTIFY refuses payloads of 8000 bytes or more; keep a margin
NOTIFY_LIMIT_BYTES = 7900
_TRIM_EVERY_MS = 60_000


@functools.cache
def queries() -> dict[str, str]:
    """The named queries in psycopg's ``%(name)s`` style."""
    return {k: to_pyformat(v) for k, v in load_queries("postgres").items()}


def require_psycopg() -> None:
    if psycopg is None:
        raise ConfigurationError(
            "PostgreSQL support needs psycopg: pip install 'durable[postgres]'"
        )


def connect(url: str, connect_timeout_seconds: float) -> Any:
    """A dedicated autocommit connection, outside any pool."""
    require_psycopg()
    return psycopg.connect(
        url, autocommit=True, connect_timeout=max(1, int(connect_timeout_seconds))
    )


class PgListener:
    """A dedicated autocommit connection that LISTENs on some channels."""

    def __init__(self, url: str, channels: list[str], connect_timeout_seconds: float) -> None:
        require_psycopg()
        self.url = url
        self.channels = channels
        self._timeout = max(1, int(connect_timeout_seconds))
        self._conn: Any = None

    def open(self) -> None:
        self.close()
        conn = connect(self.url, self._timeout)
        for channel in self.channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self._conn = conn

    def wait(self, timeout: float) -> list[str]:
        """The payloads that arrive within ``timeout`` seconds (at least one packet's worth
        as soon as one arrives). Raises ``psycopg.OperationalError`` when the connection drops."""
        if self._conn is None:
            raise ConnectionError("the listener is not connected")
        return [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=1)]

    def query_one(self, name: str, params: dict[str, Any]) -> Any:
        """Run a named query on this connection (between waits) and return its first row."""
        return self._conn.execute(queries()[name], params).fetchone()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                log.debug("closing a broken listener connection failed", exc_info=True)


class PostgresBus(RelayBus):
    """Pub/sub across processes and machines through one PostgreSQL database.

    >>> bus = PostgresBus("postgresql://postgres@127.0.0.1/app")  # doctest: +SKIP
    >>> app = Durable("postgresql://postgres@127.0.0.1/app", pubsub=bus)  # doctest: +SKIP

    ``Durable(url, pubsub="postgres")`` builds one on the app's database.
    """

    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        name: str = "durable.pubsub",
        channel: str = "durable_pubsub",
        listen_url: str | None = None,
        flush_interval_seconds: float = 0.005,
        connect_timeout_seconds: float = 5.0,
        payload_retention_seconds: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        require_psycopg()
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError(f"PostgresBus needs a postgresql:// URL, got {url!r}")
        super().__init__(
            name,
            flush_interval_seconds=flush_interval_seconds,
            ready_timeout_seconds=connect_timeout_seconds,
        )
        self.url = url
        self.channel = channel
        self._clock = clock or SystemClock()
        self._connect_timeout = max(1, int(connect_timeout_seconds))
        self._retention_ms = int(payload_retention_seconds * 1000)
        self._send_conn: Any = None
        self._last_trim = 0
        self._listener = PgListener(listen_url or url, [channel], connect_timeout_seconds)

    # ---- sending ----------------------------------------------------------------

    def _send(self, batch: list[Message]) -> None:
        if self._send_conn is None:
            self._send_conn = connect(self.url, self._connect_timeout)
        conn = self._send_conn
        q = queries()
        now = self._clock.now_ms()
        texts = [encode(message) for message in batch]
        large = [i for i, t in enumerate(texts) if len(t.encode("utf-8")) > NOTIFY_LIMIT_BYTES]
        if not large:  # the common case: one autocommit statement, one round trip
            conn.execute(q["pg_notify_many"], {"channel": self.channel, "payloads": texts})
            return
        with conn.transaction():  # stored bodies are visible when the notifications arrive
            for i in large:
                row = conn.execute(
                    q["pg_payload_insert"], {"body": texts[i], "now": now}
                ).fetchone()
                texts[i] = encode({"o": self.origin, "s": batch[i]["s"], "r": row[0]})
            conn.execute(q["pg_notify_many"], {"channel": self.channel, "payloads": texts})
            if now - self._last_trim > _TRIM_EVERY_MS:
                self._last_trim = now
                conn.execute(q["pg_payload_trim"], {"before": now - self._retention_ms})

    def commits_with(self, storage: Any) -> bool:
        return getattr(storage, "url", None) == self.url

    def commit_record(self, topics: list[str], kind: str, payload: Any) -> tuple[str, Any] | None:
        text = encode(self._message(topics, kind, payload))
        if len(text.encode("utf-8")) > NOTIFY_LIMIT_BYTES:
            return None
        return ("pg_notify_one", {"channel": self.channel, "text": text})

    def _reset_sender(self) -> None:
        conn, self._send_conn = self._send_conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing a broken sender connection failed", exc_info=True)

    def _close_transport(self) -> None:
        self._reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def _open_receiver(self) -> None:
        self._listener.open()

    def _reset_receiver(self) -> None:
        self._listener.close()

    def _receive(self) -> list[Message]:
        out: list[Message] = []
        for text in self._listener.wait(0.2):
            message = decode(text)
            if message is None or message.get("o") == self.origin:
                continue
            if "r" in message:
                row = self._listener.query_one("pg_payload_get", {"id": message["r"]})
                message = decode(row[0]) if row is not None else None
                if message is None:  # trimmed before we read it
                    self._mark_gap()
                    continue
            out.append(message)
        return out
