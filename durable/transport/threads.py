"""The two background threads that drive a transport, shared by wake-ups and buses.

- ``Sender``: its owner queues work under ``sender.cond`` and calls ``kick()`` (``kick_locked()`` + ``start()`` when it holds the lock);
  the thread takes a batch (``take``, under the lock), ships it (``ship``,
  outside the lock), then pauses ``flush_interval_seconds`` so that the next
  batch coalesces, unless someone waits in ``flush()``. A failed batch is
  reported to ``on_failure`` and dropped: signals are hints, never a backlog.
- ``Receiver``: listens to the channels its owner wants (``want``/``drop``),
  hands what arrives to ``deliver``, and reconnects with a backoff when the
  connection drops; it logs that and calls ``on_gap`` (messages sent meanwhile
  were missed), then listens again to every wanted channel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..redaction import redact
from .base import Transport

log = logging.getLogger("durable.transport")

#: how long one receive may wait: also the longest a change of channels waits
RECEIVE_SLICE_SECONDS = 0.05


class _Thread:
    def __init__(self, label: str) -> None:
        self.label = label
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _ensure(self, target: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self.stopping.is_set():
                thread = threading.Thread(target=target, name=f"durable-{self.label}", daemon=True)
                self._thread = thread
                thread.start()

    def _join(self) -> None:
        self.stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


class Sender(_Thread):
    def __init__(
        self,
        label: str,
        *,
        take: Callable[[], list[Any]],
        ship: Callable[[list[Any]], None],
        on_failure: Callable[[list[Any], Exception], None],
        flush_interval_seconds: float,
    ) -> None:
        super().__init__(label)
        self.cond = threading.Condition()
        self._take = take
        self._ship = ship
        self._on_failure = on_failure
        self._interval = flush_interval_seconds
        self._batch: list[Any] = []
        self._sending = False
        self._flushers = 0
        self._pending = False

    def kick(self) -> None:
        """Something was queued (call without ``cond`` held)."""
        with self.cond:
            self.kick_locked()
        self.start()

    def kick_locked(self) -> None:
        """Something was queued (call with ``cond`` held, then ``start()``)."""
        self._pending = True
        if self._flushers:
            self.cond.notify_all()
        else:
            self.cond.notify()  # only the sender thread waits then

    def start(self) -> None:
        if self._thread is None:
            self._ensure(self._loop)

    def wait_idle_locked(self, timeout: float) -> None:
        """With ``cond`` held: wait until no batch is being shipped."""
        self.cond.wait_for(lambda: not self._sending, timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued was shipped (or dropped); True if so."""
        with self.cond:
            self._flushers += 1
            self.cond.notify_all()
            try:
                return self.cond.wait_for(lambda: not self._pending and not self._sending, timeout)
            finally:
                self._flushers -= 1

    def close(self) -> None:
        """Ship what is queued (best effort), then stop."""
        with self.cond:
            self.stopping.set()
            self.cond.notify_all()
        self._join()

    def _loop(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self._pending or self.stopping.is_set())
                batch = self._take()
                if not batch:
                    self._pending = False
                    self.cond.notify_all()
                    if self.stopping.is_set():
                        return
                    continue
                self._sending = True
            try:
                self._ship(batch)
            except Exception as exc:  # the backend is away: drop, as documented
                self._on_failure(batch, exc)
            finally:
                with self.cond:
                    self._sending = False
                    self.cond.notify_all()
            if not self.stopping.is_set() and self._interval > 0:
                with self.cond:  # let the next batch coalesce, unless someone flushes
                    self.cond.wait_for(
                        lambda: self._flushers > 0 or self.stopping.is_set(), self._interval
                    )


class Receiver(_Thread):
    def __init__(
        self,
        transport: Transport,
        label: str,
        *,
        deliver: Callable[[list[str | None]], None],
        on_gap: Callable[[], None],
    ) -> None:
        super().__init__(label)
        self.transport = transport
        self._deliver = deliver
        self._on_gap = on_gap
        self._cond = threading.Condition()
        self._wanted: dict[str, int] = {}  # channel -> how many owners want it
        self._active: set[str] = set()
        #: set while the connection is up and listening to every wanted channel
        self.listening = threading.Event()
        #: how many times the connection was lost and made again
        self.reconnects = 0

    def want(self, channel: str, timeout: float | None) -> bool:
        """Listen to ``channel`` (counted); with a timeout, wait until the backend
        confirmed it. False if that did not happen in time (it keeps trying)."""
        with self._cond:
            self._wanted[channel] = self._wanted.get(channel, 0) + 1
        self._ensure(self._loop)
        if timeout is None:
            return True
        with self._cond:
            return self._cond.wait_for(
                lambda: channel in self._active or self.stopping.is_set(), timeout
            )

    def drop(self, channel: str) -> None:
        with self._cond:
            left = self._wanted.get(channel, 0) - 1
            if left > 0:
                self._wanted[channel] = left
            else:
                self._wanted.pop(channel, None)

    def close(self) -> None:
        self._join()

    def _sync(self) -> None:
        with self._cond:
            wanted = set(self._wanted)
        add, remove = wanted - self._active, self._active - wanted
        if add or remove:
            self.transport.listen(add, remove)
            with self._cond:
                self._active = (self._active | add) - remove
                self._cond.notify_all()

    def _loop(self) -> None:
        backoff = 0.0
        lost = False
        transport = self.transport
        while not self.stopping.is_set():
            try:
                transport.open_receiver()
                with self._cond:
                    self._active = set()
                self._sync()
                if lost:
                    self.reconnects += 1
                    log.warning(
                        "%s listener %s: listening again; messages sent while it was "
                        "disconnected were missed",
                        transport.backend,
                        self.label,
                    )
                    self._on_gap()
                lost, backoff = False, 0.0
                self.listening.set()
                while not self.stopping.is_set():
                    self._sync()
                    texts = transport.receive(RECEIVE_SLICE_SECONDS)
                    if texts:
                        self._deliver(texts)
            except Exception as exc:
                if self.stopping.is_set():
                    break
                self.listening.clear()
                backoff = min(5.0, backoff * 2 or 0.1)
                log.warning(
                    "%s listener %s: connection lost (%s); reconnecting in %.1fs",
                    transport.backend,
                    self.label,
                    redact(str(exc), getattr(transport, "url", None)),
                    backoff,
                )
                lost = True
                with self._cond:
                    self._active = set()
                transport.reset_receiver()
                self.stopping.wait(backoff)
        transport.reset_receiver()
