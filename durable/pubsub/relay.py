"""The cross-process bus: the PubSub contract over a transport (PostgreSQL, SQLite, Redis).

A relay bus delivers every event to subscribers of this process at once (an
in-process fan-out, as ``MemoryBus``) and queues it for the transport's sender
thread, which ships batches to the other processes: one JSON message per event
and topic, on that topic's own channel (``durable.pubsub.wire``). The receiver
thread, started on the first ``subscribe``, listens to the channels of the
topics subscribed here and fans what arrives out to them. ``publish`` only
appends to a bounded queue: it never blocks and never raises into the executor.

Delivery is at most once. A receiver that loses its connection reconnects,
logs it, and raises ``Subscription.dropped`` on every subscription: events
published meanwhile are not delivered, so a consumer that sees ``dropped``
grow should resync from storage (``app.list_executions``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from ..clock import Clock, SystemClock
from ..storage.base import CommitMessage
from ..transport.base import Transport
from ..transport.threads import Receiver, Sender
from . import wire
from .base import Event, Subscription
from .memory import MemoryBus

log = logging.getLogger("durable.pubsub")

_Queued = tuple[str, Event, int]  # (topic, event, published at ms)


class RelayBus:
    """A bus whose events reach every process that shares its transport."""

    def __init__(
        self,
        transport: Transport,
        *,
        name: str = "durable.pubsub",
        flush_interval_seconds: float = 0.005,
        max_pending: int = 100_000,
        max_batch: int = 500,
        ready_timeout_seconds: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.transport = transport
        self.backend = transport.backend
        self.origin = transport.origin
        self._local = MemoryBus(name)
        self._clock = clock or SystemClock()
        self._max_batch = max_batch
        self._ready_timeout = ready_timeout_seconds
        self._out: deque[_Queued] = deque(maxlen=max_pending)
        self._subs: set[Subscription] = set()
        self._subs_lock = threading.Lock()
        self._stopping = False
        self.overflowed = 0
        self._sender = Sender(
            f"{self.backend}-sender",
            take=self._take,
            ship=self._ship,
            on_failure=self._failed,
            flush_interval_seconds=flush_interval_seconds,
        )
        self._receiver = Receiver(
            transport, f"{self.backend}-bus", deliver=self._deliver, on_gap=self._mark_gap
        )

    @property
    def reconnects(self) -> int:
        """How many times the receiver reconnected (each may have missed events)."""
        return self._receiver.reconnects

    # ---- the Bus protocol --------------------------------------------------------

    def publish(self, topic: str, event: Event) -> None:
        """Deliver here at once; queue for the other processes (never blocks)."""
        self._local.publish(topic, event)
        if self._stopping:
            return
        now = self._clock.now_ms()
        sender = self._sender
        with sender.cond:
            if len(self._out) == self._out.maxlen:
                self.overflowed += 1
            self._out.append((topic, event, now))
            sender.kick_locked()
        sender.start()

    def has_subscribers(self, topic: str) -> bool:
        return True  # other processes may listen: every event is sent

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription:
        """Follow ``topic`` in every process. Returns once the receiver listens to
        its channel (or after ``ready_timeout_seconds`` if the backend cannot be
        reached; it keeps trying in the background)."""
        sub = self._local.subscribe(topic, buffer=buffer)
        with self._subs_lock:
            self._subs.add(sub)
        if not self._receiver.want(self.transport.channel(topic), self._ready_timeout):
            log.warning(
                "%s bus %s: not listening yet; events may be missed", self.backend, self.name
            )
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._subs_lock:
            if subscription not in self._subs:
                return
            self._subs.discard(subscription)
        self._local.unsubscribe(subscription)
        self._receiver.drop(self.transport.channel(subscription.topic))

    def close(self) -> None:
        """Ship what is queued (best effort), stop the threads, close subscriptions."""
        self._stopping = True
        self._sender.close()
        self._receiver.close()
        self._local.close()
        self.transport.close()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handed to the backend; True if so."""
        return self._sender.flush(timeout)

    # ---- events that travel inside a storage commit (CommitPublisher) ----------------

    def publish_local(self, topic: str, event: Event) -> None:
        """Deliver to this process only (the event travels with a commit instead)."""
        self._local.publish(topic, event)

    def commit_messages(
        self, run_topic: str, execution_id: str, events: list[tuple[tuple[str, ...], Event]]
    ) -> tuple[list[CommitMessage], Callable[[], None]] | None:
        """Messages for ``events`` (with their topics) to write inside a storage commit,
        preceded by this run's events still queued here (so nothing of the run is
        overtaken), and the local delivery to call after the commit; None when they
        cannot travel that way (then publish after the commit as usual)."""
        now = self._clock.now_ms()
        with self._sender.cond:
            self._sender.wait_idle_locked(1.0)  # a batch in flight ships first
            queued = self._take_run(run_topic, execution_id)
        pairs = [self._pair(q) for q in queued]
        pairs += [self._pair((t, e, now)) for topics, e in events for t in topics]
        messages = self.transport.commit_messages(pairs)
        if messages is None:
            with self._sender.cond:  # put them back, in front, as they were
                self._out.extendleft(reversed(queued))
            self._sender.kick()
            return None

        def deliver() -> None:
            for topics, event in events:
                for topic in topics:
                    try:
                        self._local.publish(topic, Event(event.kind, event.payload, topic))
                    except Exception:
                        log.exception("publishing %s to %s failed", event.kind, topic)

        return messages, deliver

    def _take_run(self, run_topic: str, execution_id: str) -> list[_Queued]:
        taken: list[_Queued] = []
        kept: deque[_Queued] = deque(maxlen=self._out.maxlen)
        for item in self._out:
            topic, event = item[0], item[1]
            if topic == run_topic or (
                isinstance(event.payload, dict) and event.payload.get("id") == execution_id
            ):
                taken.append(item)
            else:
                kept.append(item)
        self._out = kept
        return taken

    # ---- the sender's side ----------------------------------------------------------

    def _pair(self, item: _Queued) -> tuple[str, str]:
        topic, event, at = item
        return self.transport.channel(topic), wire.encode(event, topic, self.origin, at)

    def _take(self) -> list[_Queued]:
        out = self._out
        n = min(len(out), self._max_batch)
        return [out.popleft() for _ in range(n)]

    def _ship(self, batch: list[_Queued]) -> None:
        self.transport.send([self._pair(item) for item in batch])

    def _failed(self, batch: list[_Queued], exc: Exception) -> None:
        log.warning(
            "%s bus %s: could not send %d events (%s); they are dropped",
            self.backend,
            self.name,
            len(batch),
            exc,
        )
        self.transport.reset_sender()

    # ---- the receiver's side ----------------------------------------------------------

    def _deliver(self, texts: list[str | None]) -> None:
        for text in texts:
            if text is None:
                self._mark_gap()
                continue
            message = wire.decode(text)
            if message is None or message.get("origin") == self.origin:
                continue
            topic = message["topic"]
            payload = message.get("payload")
            if not isinstance(payload, dict) or not isinstance(message.get("kind"), str):
                continue
            self._local.publish(topic, Event(message["kind"], payload, topic))

    def _mark_gap(self) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.dropped += 1
