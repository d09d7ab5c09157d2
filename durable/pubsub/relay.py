"""The machinery shared by the cross-process buses (PostgreSQL, SQLite, Redis).

A relay bus delivers every event to subscribers of this process at once (an
in-process fan-out, as ``MemoryBus``) and hands it to a background *sender*
thread that ships batches to the other processes. A background *receiver*
thread, started on the first ``subscribe``, takes the batches of the other
processes and fans them out here. ``publish`` only appends to a bounded queue:
it never blocks and never raises into the executor.

On the wire a message is compact JSON: ``{"o": origin, "s": seq, "t": [topics],
"k": kind, "p": payload}``. One event published to several topics (a workflow
event goes to the workflows topic and the run's own topic) travels once.

Delivery is at most once. A receiver that loses its connection reconnects,
logs it, and raises ``Subscription.dropped`` on every subscription: events
published meanwhile are not delivered, so a consumer that sees ``dropped``
grow should resync from storage (``app.list_executions``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Any

from ..ids import new_token
from .base import Event, Subscription
from .memory import MemoryBus

log = logging.getLogger("durable.pubsub")

Message = dict[str, Any]


class RelayBus:
    """Base of the cross-process buses; subclasses supply the transport hooks."""

    #: how a log line names the backend
    backend = "relay"

    def __init__(
        self,
        name: str,
        *,
        flush_interval_seconds: float = 0.005,
        max_pending: int = 100_000,
        max_batch: int = 500,
        ready_timeout_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.origin = new_token()[:16]
        self._local = MemoryBus(name)
        self._flush_interval = flush_interval_seconds
        self._max_batch = max_batch
        self._ready_timeout = ready_timeout_seconds
        self._out: deque[tuple[str, Event]] = deque(maxlen=max_pending)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._seq = 0
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self.overflowed = 0
        #: how many times the receiver reconnected (each may have missed events)
        self.reconnects = 0

    # ---- the Bus protocol --------------------------------------------------------

    def publish(self, topic: str, event: Event) -> None:
        """Deliver here at once; queue for the other processes (never blocks)."""
        self._local.publish(topic, event)
        if self._stopping.is_set():
            return
        with self._cond:
            if len(self._out) == self._out.maxlen:
                self.overflowed += 1
            self._out.append((topic, event))
            self._cond.notify()
        if self._sender is None:
            self._start("_sender", self._send_loop, "sender")

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription:
        """Follow ``topic`` in every process. Returns once the receiver listens
        (or after ``ready_timeout_seconds`` if the backend cannot be reached; it
        keeps retrying in the background)."""
        sub = self._local.subscribe(topic, buffer=buffer)
        with self._start_lock:
            self._subs.add(sub)
        if self._receiver is None:
            self._start("_receiver", self._receive_loop, "receiver")
        if not self._ready.wait(self._ready_timeout):
            log.warning(
                "%s bus %s: not listening yet; events may be missed", self.backend, self.name
            )
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._start_lock:
            self._subs.discard(subscription)
        self._local.unsubscribe(subscription)

    def close(self) -> None:
        """Flush what is queued (best effort), stop the threads, close subscriptions."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        for thread in (self._sender, self._receiver):
            if thread is not None:
                thread.join(timeout=5)
        self._local.close()
        self._close_transport()

    def publish_local(self, topic: str, event: Event) -> None:
        """Deliver to this process only (the event travels with a commit instead)."""
        self._local.publish(topic, event)

    def commits_with(self, storage: Any) -> bool:
        """Whether this bus's transport is ``storage``'s database (so an event can be
        written in the same transaction as the state change it announces)."""
        return False

    def commit_record(self, topics: list[str], kind: str, payload: Any) -> tuple[str, Any] | None:
        """The (query, params) that sends this event as part of a storage commit, or
        None when it cannot travel that way (then publish it as usual)."""
        return None

    def take_queued(self, run_topic: str, execution_id: str) -> list[tuple[list[str], str, Any]]:
        """Remove and return, in order, the queued events of one run (its own topic,
        and its workflow events on other topics), so they can travel in a commit.
        Waits for a batch being sent right now, so nothing of the run overtakes it."""
        taken: list[tuple[list[str], str, Any]] = []
        with self._cond:
            self._cond.wait_for(lambda: not self._sending, 1.0)
            kept: deque[tuple[str, Event]] = deque(maxlen=self._out.maxlen)
            last: Event | None = None
            for topic, event in self._out:
                mine = topic == run_topic or (
                    isinstance(event.payload, dict) and event.payload.get("id") == execution_id
                )
                if not mine:
                    kept.append((topic, event))
                elif last is not None and event.payload is last.payload and event.kind == last.kind:
                    taken[-1][0].append(topic)
                else:
                    taken.append(([topic], event.kind, event.payload))
                    last = event
            self._out = kept
        return taken

    def _message(self, topics: list[str], kind: str, payload: Any) -> Message:
        with self._cond:
            self._seq += 1
            seq = self._seq
        return {"o": self.origin, "s": seq, "t": list(topics), "k": kind, "p": payload}

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handed to the backend; True if so.
        The sender skips its coalescing pause while someone waits here."""
        with self._cond:
            self._flushers += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._out and not self._sending, timeout)
            finally:
                self._flushers -= 1

    # ---- threads --------------------------------------------------------------------

    _sending = False
    _flushers = 0

    def _start(self, attr: str, target: Any, role: str) -> None:
        with self._start_lock:
            if getattr(self, attr) is None and not self._stopping.is_set():
                thread = threading.Thread(
                    target=target, name=f"durable-{self.backend}-{role}", daemon=True
                )
                setattr(self, attr, thread)
                thread.start()

    def _take_batch(self) -> list[Message]:
        """Queued publications as wire messages; consecutive publications of one
        event (same kind, same payload object) become one message."""
        out: list[Message] = []
        last: Event | None = None
        while self._out and len(out) < self._max_batch:
            topic, event = self._out.popleft()
            if last is not None and event.payload is last.payload and event.kind == last.kind:
                out[-1]["t"].append(topic)
                continue
            self._seq += 1
            out.append(
                {
                    "o": self.origin,
                    "s": self._seq,
                    "t": [topic],
                    "k": event.kind,
                    "p": event.payload,
                }
            )
            last = event
        return out

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._out) or self._stopping.is_set())
                if not self._out:
                    return
                batch = self._take_batch()
                self._sending = True
            try:
                self._send(batch)
            except Exception as exc:  # the backend is down: drop, as documented
                log.warning(
                    "%s bus %s: could not send %d events (%s); they are dropped",
                    self.backend,
                    self.name,
                    len(batch),
                    exc,
                )
                self._reset_sender()
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()
            if not self._stopping.is_set() and self._flush_interval > 0:
                with self._cond:  # coalesce the next batch, unless someone flushes
                    self._cond.wait_for(
                        lambda: self._flushers > 0 or self._stopping.is_set(), self._flush_interval
                    )

    def _receive_loop(self) -> None:
        backoff = 0.0
        lost = False
        while not self._stopping.is_set():
            try:
                self._open_receiver()
                if lost:
                    self.reconnects += 1
                    log.warning(
                        "%s bus %s: listening again; events published while disconnected "
                        "were missed (subscriptions' dropped counters were raised)",
                        self.backend,
                        self.name,
                    )
                    self._mark_gap()
                lost = False
                backoff = 0.0
                self._ready.set()
                while not self._stopping.is_set():
                    for message in self._receive():
                        self._deliver(message)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                backoff = min(5.0, backoff * 2 or 0.1)
                log.warning(
                    "%s bus %s: listener connection lost (%s); reconnecting in %.1fs",
                    self.backend,
                    self.name,
                    exc,
                    backoff,
                )
                lost = True
                self._reset_receiver()
                self._stopping.wait(backoff)
        self._reset_receiver()

    def _deliver(self, message: Message) -> None:
        if message.get("o") == self.origin or "k" not in message:
            return
        kind, payload = message["k"], message["p"]
        for topic in message["t"]:
            self._local.publish(topic, Event(kind, payload, topic))

    def _mark_gap(self) -> None:
        with self._start_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.dropped += 1

    # ---- transport hooks (subclasses) ---------------------------------------------

    def _send(self, batch: list[Message]) -> None:
        raise NotImplementedError

    def _reset_sender(self) -> None:
        """Forget the sender's connection after a failure (reopen lazily)."""

    def _open_receiver(self) -> None:
        """Connect and start listening (called again after a failure)."""
        raise NotImplementedError

    def _receive(self) -> list[Message]:
        """Wait a short while (well under a second) for messages; raise when the
        connection is lost."""
        raise NotImplementedError

    def _reset_receiver(self) -> None:
        """Close the receiver's connection after a failure or at the end."""

    def _close_transport(self) -> None:
        """Close the sender's connection (threads have stopped)."""


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> Message | None:
    """A wire message, or None for text that is not one (logged, skipped)."""
    try:
        value = json.loads(text)
    except ValueError:
        log.warning("pubsub: skipping a message that is not JSON: %.80r", text)
        return None
    return value if isinstance(value, dict) else None


def open_bus(spec: str, storage: Any, name: str, clock: Any = None) -> Any:
    """The bus named by ``Durable(pubsub=...)``: ``"postgres"`` (on the app's
    PostgreSQL database), ``"sqlite"`` (on the app's SQLite file), a
    ``postgresql://`` URL or a ``redis://`` URL."""
    from ..errors import ConfigurationError

    if spec == "postgres":
        from ..storage.postgres import PostgresStorage

        if not isinstance(storage, PostgresStorage):
            raise ConfigurationError(
                'pubsub="postgres" needs a PostgreSQL database; pass pubsub="sqlite", '
                "a redis:// URL or a postgresql:// URL instead"
            )
        spec = storage.url
    if spec == "sqlite":
        from ..storage.sqlite import SqliteStorage

        if not isinstance(storage, SqliteStorage) or storage.path == ":memory:":
            raise ConfigurationError(
                'pubsub="sqlite" needs a SQLite database file; use pubsub=True for one process'
            )
        from .sqlite import SqliteBus

        return SqliteBus(storage.path, name=name, clock=clock)
    if spec.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresBus

        return PostgresBus(spec, name=name, clock=clock)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisBus

        return RedisBus(spec, name=name)
    raise ConfigurationError(
        f'unknown pubsub {spec!r}; use True (in-process), False, "postgres", "sqlite", '
        "a postgresql:// or redis:// URL, or a Bus object"
    )
