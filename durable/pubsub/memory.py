"""In-process bus: fan-out to bounded per-subscriber buffers."""

from __future__ import annotations

import threading

from .base import Event, Subscription


class MemoryBus:
    """The default bus. Thread-safe; publishing costs a dict lookup when nobody listens."""

    def __init__(self, name: str = "durable.pubsub") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._subs: dict[str, tuple[Subscription, ...]] = {}

    def publish(self, topic: str, event: Event) -> None:
        subs = self._subs.get(topic)
        if not subs:
            return
        for sub in subs:
            sub.deliver(event)

    def has_subscribers(self, topic: str) -> bool:
        return topic in self._subs

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription:
        sub = Subscription(topic=topic, buffer=buffer)
        with self._lock:
            self._subs[topic] = (*self._subs.get(topic, ()), sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subs = tuple(s for s in self._subs.get(subscription.topic, ()) if s is not subscription)
            if subs:
                self._subs[subscription.topic] = subs
            else:
                self._subs.pop(subscription.topic, None)
        subscription.close()

    def close(self) -> None:
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
            self._subs.clear()
        for sub in subs:
            sub.close()
