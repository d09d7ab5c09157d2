"""Calling a step body: sync or async, with its runtime, timeout and log capture."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import CancelNow, FailNow, Snooze, StepTimeoutError, Suspend
from ..runtime import StepRuntime, activate, deactivate
from ..workflow import Step

OutcomeKind = Literal["ok", "suspend", "snooze", "fail", "cancel", "error"]
CaptureHook = Callable[[StepRuntime], AbstractContextManager[Any]]


@dataclass(slots=True)
class Outcome:
    kind: OutcomeKind
    value: Any = None
    error: BaseException | None = None


class AsyncLoopThread:
    """One event loop in a daemon thread for ``async def`` steps."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def _run() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                self._thread = threading.Thread(
                    target=_run, name="durable-async-steps", daemon=True
                )
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            if not loop.is_running():
                loop.close()


class StepInvoker:
    """Runs step bodies and turns what they do into an :class:`Outcome`."""

    def __init__(self, capture: CaptureHook | None = None, timeout_threads: int = 8) -> None:
        self.loop_thread = AsyncLoopThread()
        self._timeout_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=timeout_threads, thread_name_prefix="durable-step"
        )
        self._capture = capture

    def close(self) -> None:
        self.loop_thread.close()
        self._timeout_pool.shutdown(wait=False, cancel_futures=True)

    def invoke(self, step: Step, arg: Any, rt: StepRuntime, timeout: float | None) -> Outcome:
        try:
            return Outcome("ok", self._call(step, arg, rt, timeout))
        except Suspend:
            return Outcome("suspend")
        except Snooze as sig:
            return Outcome("snooze", sig.seconds)
        except FailNow as sig:
            return Outcome("fail", sig.reason)
        except CancelNow as sig:
            return Outcome("cancel", sig.reason)
        except Exception as exc:
            return Outcome("error", error=exc)

    def _call(self, step: Step, arg: Any, rt: StepRuntime, timeout: float | None) -> Any:
        args = (arg,) if step.takes_arg else ()
        if step.is_async:
            return self._call_async(step, args, rt, timeout)
        if timeout is None:
            return self._run_sync(step, args, rt)
        ctx = contextvars.copy_context()
        future = self._timeout_pool.submit(ctx.run, self._run_sync, step, args, rt)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # a thread cannot be interrupted: it runs on, and its result is discarded
            raise StepTimeoutError(f"step {step.name!r} timed out after {timeout:g}s") from None

    def _run_sync(self, step: Step, args: tuple[Any, ...], rt: StepRuntime) -> Any:
        token = activate(rt)
        try:
            with self._capture(rt) if self._capture else nullcontext():
                return step.fn(*args)
        finally:
            deactivate(token)

    def _call_async(
        self, step: Step, args: tuple[Any, ...], rt: StepRuntime, timeout: float | None
    ) -> Any:
        capture = self._capture

        async def _body() -> Any:
            token = activate(rt)
            try:
                with capture(rt) if capture else nullcontext():
                    if timeout is None:
                        return await step.fn(*args)
                    try:
                        return await asyncio.wait_for(step.fn(*args), timeout)
                    except TimeoutError:
                        raise StepTimeoutError(
                            f"step {step.name!r} timed out after {timeout:g}s"
                        ) from None
            finally:
                deactivate(token)

        future = self.loop_thread.submit(_body())
        rt.on_cancel = future.cancel  # lets a fail-fast parallel block cancel this attempt
        if rt.cancel_requested:  # asked before on_cancel was set
            future.cancel()
        return future.result()
