"""Daemon threads for step bodies: a hung body never keeps the process alive.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter
exit, so one step body that never returns keeps a stopped worker process up
forever. These pools use daemon threads: once the worker's grace period is
over, the process exits whatever its steps do.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class DaemonPool:
    """A fixed-size pool of daemon threads (``submit`` returns a Future)."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work
        self._waiting = 0  # work not yet taken by a thread
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} is shut down")
            self._waiting += 1
            if self._waiting > self._idle and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is not _STOP:
                    self._waiting -= 1
            if item is _STOP:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
            del item, future, fn, args

    def shutdown(self) -> None:
        """Stop taking work and cancel what has not started; idle threads end, busy ones
        end with their body."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[0].cancel()
        for _ in threads:
            self._queue.put(_STOP)


def run_in_daemon_thread(
    fn: Callable[[], Any], name: str
) -> tuple[threading.Thread, concurrent.futures.Future[Any]]:
    """Start ``fn`` in its own daemon thread; its result or exception lands in the Future."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def _body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    thread = threading.Thread(target=_body, name=name, daemon=True)
    thread.start()
    return thread, future
