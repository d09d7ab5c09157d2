"""The PubSub contract: topics, the event value, subscriptions and the bus seam.

Topics are scoped per Durable instance name:

- ``durable:<instance>:workflows``      every workflow lifecycle event
- ``durable:<instance>:workflow:<id>``  every event of one execution
- ``durable:<instance>:schedules``      schedule events
- ``durable:<instance>:inputs``         pending-input events
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .payloads import EVENT_KINDS as EVENT_KINDS  # the kinds live in payloads.py

if TYPE_CHECKING:
    from ..storage.base import CommitMessage


def workflows_topic(instance: str) -> str:
    return f"durable:{instance}:workflows"


def workflow_topic(instance: str, execution_id: str) -> str:
    return f"durable:{instance}:workflow:{execution_id}"


def schedules_topic(instance: str) -> str:
    return f"durable:{instance}:schedules"


def inputs_topic(instance: str) -> str:
    return f"durable:{instance}:inputs"


def default_name(instance: str) -> str:
    """The name of the bus an instance owns when the host passes none."""
    return f"{instance}.pubsub"


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle message: ``kind`` is one of the 14 kinds, ``payload`` JSON-safe."""

    kind: str
    payload: dict[str, Any]
    topic: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "payload": self.payload, "topic": self.topic}


class _Closed:
    pass


_CLOSED = _Closed()


@dataclass(eq=False)
class Subscription:
    """A bounded, drop-oldest buffer of events for one topic.

    Iterate it (``for event in sub``) or async-iterate it (``async for``). When
    the buffer is full the oldest event is dropped and ``dropped`` counts it:
    a consumer that sees ``dropped`` grow should resync from storage.
    """

    topic: str
    buffer: int = 1000
    dropped: int = 0
    _items: deque[Event | _Closed] = field(init=False)
    _cond: threading.Condition = field(init=False, default_factory=threading.Condition)
    _waker: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = field(init=False, default=None)
    closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._items = deque(maxlen=self.buffer)

    def deliver(self, event: Event | _Closed) -> None:
        """Called by the bus; never blocks (drops the oldest when full)."""
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(event)
            self._cond.notify()
            waker = self._waker
        if waker is not None:
            loop, flag = waker
            with contextlib.suppress(RuntimeError):  # loop closed: the consumer is gone
                loop.call_soon_threadsafe(flag.set)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.deliver(_CLOSED)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once closed."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            item = self._items.popleft()
        if isinstance(item, _Closed):
            self._items.appendleft(item)
            return None
        return item

    def drain(self) -> list[Event]:
        """Every event buffered now, without waiting."""
        out: list[Event] = []
        with self._cond:
            while self._items and not isinstance(self._items[0], _Closed):
                item = self._items.popleft()
                assert isinstance(item, Event)
                out.append(item)
        return out

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    async def _aget(self) -> Event | None:
        loop = asyncio.get_running_loop()
        flag = asyncio.Event()
        with self._cond:
            self._waker = (loop, flag)
        try:
            while True:
                with self._cond:
                    if self._items:
                        item = self._items.popleft()
                        if isinstance(item, _Closed):
                            self._items.appendleft(item)
                            return None
                        return item
                    flag.clear()
                await flag.wait()
        finally:
            with self._cond:
                self._waker = None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Event]:
        while True:
            event = await self._aget()
            if event is None:
                return
            yield event


class Bus(Protocol):
    """A pub/sub backend. ``publish`` must never block or raise into the caller."""

    def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...

    def close(self) -> None: ...


class CommitPublisher(Protocol):
    """A bus that lives in the storage's own database, so that a run's final events
    are written inside the commit that ends the run (a crash between the commit and
    the publish cannot lose them). ``durable.signals.open_signals`` hands one to the
    PubSub when it builds the bus on the storage's database."""

    def commit_messages(
        self, run_topic: str, execution_id: str, events: list[tuple[tuple[str, ...], Event]]
    ) -> tuple[list[CommitMessage], Callable[[], None]] | None:
        """The messages announcing ``events`` (each with its topics) for the commit,
        after this run's events still queued, and the delivery to this process to
        call once it committed; None when they cannot travel that way."""
        ...
