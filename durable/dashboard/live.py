"""Live updates: PubSub subscriptions fanned out to Server-Sent Event streams, coalesced.

One :class:`Hub` per dashboard follows the workflows, inputs and schedules
topics (one subscription each, whatever the number of open pages) and polls a
change marker (the newest ``updated_at``) as a fallback, so runs changed by a
worker in another process show up even on an in-process bus. A stream for a
run page also follows that run's own topic. Each stream waits for a change,
lets a burst settle for ``coalesce_seconds``, then sends one SSE event per
channel that changed; the page then fetches the fragments listening on it.

Channels: ``runs`` (any run changed), ``run`` (this page's run or family),
``inputs``, ``schedules``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from ..pubsub import Event, Subscription

if TYPE_CHECKING:
    from ..app import Durable

log = logging.getLogger("durable.dashboard")
CHANNELS = ("runs", "run", "inputs", "schedules")


class Listener:
    """One open stream: the channels it wants and what changed since it last sent."""

    def __init__(self, channels: Iterable[str], run_ids: Iterable[str] = ()) -> None:
        self.channels = frozenset(channels)
        self.run_ids = frozenset(run_ids)
        self.dirty: set[str] = set()
        self.flag = asyncio.Event()

    def mark(self, channel: str) -> None:
        if channel in self.channels:
            self.dirty.add(channel)
            self.flag.set()

    def take(self) -> list[str]:
        out = sorted(self.dirty)
        self.dirty.clear()
        self.flag.clear()
        return out


class Hub:
    """Shared subscriptions and the polling fallback, alive while any stream is open."""

    def __init__(self, app: Durable, poll_interval_seconds: float) -> None:
        self.app = app
        self.poll_interval_seconds = poll_interval_seconds
        self.listeners: set[Listener] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Subscription] = []
        self._marker: int | None = None

    def attach(self, listener: Listener) -> None:
        self.listeners.add(listener)
        if not self._tasks:
            self._start()

    def detach(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        if not self.listeners:
            self._stop()

    def _start(self) -> None:
        pubsub = self.app.pubsub
        if pubsub.server is not None:
            for topic, channel in (
                (pubsub.workflows_topic(), "runs"),
                (pubsub.inputs_topic(), "inputs"),
                (pubsub.schedules_topic(), "schedules"),
            ):
                sub = pubsub.subscribe(topic, buffer=256)
                self._subs.append(sub)
                self._tasks.append(asyncio.ensure_future(self._follow(sub, channel)))
        self._tasks.append(asyncio.ensure_future(self._poll()))

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for sub in self._subs:
            self.app.pubsub.unsubscribe(sub)
        self._subs.clear()

    def broadcast(self, channel: str, run_id: str | None = None) -> None:
        for listener in list(self.listeners):
            listener.mark(channel)
            if run_id is not None and run_id in listener.run_ids:
                listener.mark("run")

    async def _follow(self, sub: Subscription, channel: str) -> None:
        async for event in sub:
            payload = event.payload
            self.broadcast(channel, payload.get("id") if channel == "runs" else None)
            if channel == "inputs":
                self.broadcast("runs", payload.get("workflow_id"))

    async def _poll(self) -> None:
        while True:
            try:
                marker = await asyncio.to_thread(self.app.query.change_marker)
            except Exception:  # the database may be briefly unavailable; try again
                log.warning("dashboard: polling for changes failed", exc_info=True)
                marker = self._marker
            if self._marker is not None and marker != self._marker:
                for listener in list(self.listeners):
                    for channel in ("runs", "run", "inputs"):
                        listener.mark(channel)
            self._marker = marker
            await asyncio.sleep(self.poll_interval_seconds)


async def stream_events(
    hub: Hub,
    listener: Listener,
    *,
    coalesce_seconds: float,
    lifetime_seconds: float,
    resumed: bool,
    is_disconnected: Any,
) -> AsyncIterator[dict[str, Any]]:
    """The SSE events of one stream (sse-starlette dicts), ending after ``lifetime_seconds``
    so clients reconnect (with Last-Event-ID) and servers can shut down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime_seconds
    own: list[Subscription] = []
    tasks: list[asyncio.Task[None]] = []
    pubsub = hub.app.pubsub
    if pubsub.server is not None:
        for run_id in listener.run_ids:
            sub = pubsub.subscribe(pubsub.workflow_topic(run_id), buffer=64)
            own.append(sub)
            tasks.append(asyncio.ensure_future(_follow_run(sub, listener)))
    hub.attach(listener)
    seq = 0
    try:
        seq += 1
        yield {"event": "hello", "data": "connected", "id": str(seq), "retry": 1000}
        if resumed:  # something may have changed while we were away
            for channel in listener.channels:
                listener.mark(channel)
        while True:
            left = deadline - loop.time()
            if left <= 0 or await is_disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.flag.wait(), timeout=min(left, 5.0))
            if not listener.flag.is_set():
                continue
            await asyncio.sleep(coalesce_seconds)
            for channel in listener.take():
                seq += 1
                yield {"event": channel, "data": channel, "id": str(seq)}
    finally:
        hub.detach(listener)
        for task in tasks:
            task.cancel()
        for sub in own:
            pubsub.unsubscribe(sub)


async def _follow_run(sub: Subscription, listener: Listener) -> None:
    event: Event
    async for event in sub:
        del event
        listener.mark("run")
