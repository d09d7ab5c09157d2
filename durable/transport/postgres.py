"""PostgreSQL transport: ``LISTEN/NOTIFY`` on dedicated autocommit connections.

- Channels: a topic is its own channel when it fits PostgreSQL's 63-byte
  identifier limit; a longer one becomes ``durable:h:`` + the first 40 hex digits
  of its SHA-256 (``channel_name``). Either way it is case-sensitive, so quote it
  in SQL: ``LISTEN "durable:shop:workflows";``.
- Large messages: NOTIFY refuses payloads of 8000 bytes or more. A text longer
  than ``NOTIFY_LIMIT_BYTES`` is stored in ``pubsub_payloads`` and travels by
  reference (``durable.pubsub.wire.by_reference``); receivers read it back.
  Rows older than ``payload_retention_seconds`` are trimmed by the senders.
- Both connections live outside any pool: never listen through PgBouncer in
  transaction mode (pass ``listen_url`` pointing at PostgreSQL itself).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Collection, Sequence
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..ids import new_token
from ..redaction import DRIVER_LOGGERS, guard_driver_logs, redact
from ..storage.base import CommitMessage
from ..storage.sqlfile import load_queries, to_pyformat

try:
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("durable.transport")

#: PostgreSQL's identifier limit (NAMEDATALEN - 1)
CHANNEL_LIMIT_BYTES = 63
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


def connect(url: str, connect_timeout_seconds: float, schema: str | None = None) -> Any:
    """A dedicated autocommit connection, outside any pool (its unqualified table names
    in ``schema`` when given)."""
    require_psycopg()
    conn = psycopg.connect(
        url, autocommit=True, connect_timeout=max(1, int(connect_timeout_seconds))
    )
    if schema is not None:
        from ..storage.pgschema import set_search_path

        set_search_path(conn, schema)
    return conn


def channel_name(topic: str) -> str:
    """The NOTIFY channel of a topic: itself when it fits in 63 bytes, else
    ``durable:h:`` and the first 40 hex digits of the SHA-256 of its UTF-8 bytes."""
    if len(topic.encode("utf-8")) <= CHANNEL_LIMIT_BYTES:
        return topic
    return "durable:h:" + hashlib.sha256(topic.encode("utf-8")).hexdigest()[:40]


class PgTransport:
    """LISTEN/NOTIFY on one PostgreSQL database (the app's own, usually)."""

    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        listen_url: str | None = None,
        channel_prefix: str | None = None,
        schema: str | None = None,
        connect_timeout_seconds: float = 5.0,
        payload_retention_seconds: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        """``schema``: the PostgreSQL schema of Durable's tables (``durable`` by default).
        Channels of a schema other than ``durable`` or ``public`` are prefixed with
        ``<schema>:`` unless ``channel_prefix`` says otherwise, so instances in
        different schemas of one database hear nothing of each other."""
        from ..storage.pgschema import DEFAULT_SCHEMA, channel_prefix_of, check_schema

        require_psycopg()
        self.schema = check_schema(DEFAULT_SCHEMA if schema is None else schema)
        if channel_prefix is None:
            channel_prefix = channel_prefix_of(self.schema)
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError(
                f"a PostgreSQL transport needs a postgresql:// URL, got {redact(url, url)!r}"
            )
        guard_driver_logs(*DRIVER_LOGGERS)
        self.url = url
        self.listen_url = listen_url or url
        self.prefix = channel_prefix
        self.origin = new_token()[:16]
        self._timeout = max(1, int(connect_timeout_seconds))
        self._retention_ms = int(payload_retention_seconds * 1000)
        self._clock = clock or SystemClock()
        self._send_conn: Any = None
        self._recv_conn: Any = None
        self._last_trim = 0

    def channel(self, topic: str) -> str:
        return channel_name(self.prefix + topic)

    # ---- sending ----------------------------------------------------------------

    def send(self, messages: Sequence[tuple[str, str]]) -> None:
        from ..pubsub.wire import by_reference

        if self._send_conn is None:
            self._send_conn = connect(self.url, self._timeout, self.schema)
        conn = self._send_conn
        q = queries()
        channels = [c for c, _ in messages]
        texts = [t for _, t in messages]
        large = [i for i, t in enumerate(texts) if _too_large(t)]
        if not large:  # the common case: one autocommit statement, one round trip
            conn.execute(q["pg_notify_pairs"], {"channels": channels, "texts": texts})
            return
        now = self._clock.now_ms()
        with conn.transaction():  # stored bodies are visible when the notifications arrive
            for i in large:
                row = conn.execute(q["pg_payload_insert"], {"body": texts[i], "now": now})
                texts[i] = by_reference(texts[i], row.fetchone()[0])
            conn.execute(q["pg_notify_pairs"], {"channels": channels, "texts": texts})
            if now - self._last_trim > _TRIM_EVERY_MS:
                self._last_trim = now
                conn.execute(q["pg_payload_trim"], {"before": now - self._retention_ms})

    def commit_messages(self, messages: Sequence[tuple[str, str]]) -> list[CommitMessage] | None:
        if any(_too_large(text) for _, text in messages):
            return None
        return [CommitMessage(channel, text, self.origin) for channel, text in messages]

    def reset_sender(self) -> None:
        conn, self._send_conn = self._send_conn, None
        _close_quietly(conn)

    def close(self) -> None:
        self.reset_sender()

    # ---- receiving ----------------------------------------------------------------

    def open_receiver(self) -> None:
        self.reset_receiver()
        self._recv_conn = connect(self.listen_url, self._timeout, self.schema)

    def listen(self, add: Collection[str], remove: Collection[str]) -> None:
        conn = self._recv_conn
        if conn is None:
            raise ConnectionError("the listener is not connected")
        for channel in add:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        for channel in remove:
            conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))

    def receive(self, timeout: float) -> list[str | None]:
        from ..pubsub.wire import payload_ref

        conn = self._recv_conn
        if conn is None:
            raise ConnectionError("the listener is not connected")
        out: list[str | None] = []
        # consume the generator first: it holds the connection's lock while it runs
        arrived = [n.payload for n in conn.notifies(timeout=timeout, stop_after=1)]
        for text in arrived:
            ref = payload_ref(text)
            if ref is not None:
                row = conn.execute(queries()["pg_payload_get"], {"id": ref}).fetchone()
                text = row[0] if row is not None else None  # None: trimmed before we read it
            out.append(text)
        return out

    def reset_receiver(self) -> None:
        conn, self._recv_conn = self._recv_conn, None
        _close_quietly(conn)


def _too_large(text: str) -> bool:
    return len(text) * 4 > NOTIFY_LIMIT_BYTES and len(text.encode("utf-8")) > NOTIFY_LIMIT_BYTES


def _close_quietly(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken
            log.debug("closing a broken connection failed", exc_info=True)
