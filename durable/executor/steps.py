"""Calling a step body: sync or async, with its runtime, timeout and log capture."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import CancelNow, FailNow, Snooze, StepTimeoutError, Suspend
from ..runtime import StepRuntime, activate, deactivate
from ..workflow import Step
from .threads import run_in_daemon_thread

log = logging.getLogger("durable.executor")

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
    """Runs step bodies and turns what they do into an :class:`Outcome`.

    A sync step with a timeout runs in its own daemon thread; on timeout the thread
    cannot be interrupted and is abandoned (it runs on, its result discarded). At most
    ``max_abandoned_threads`` may be alive at once: past that, timed steps fail at once
    with an error saying so, and the count is logged and readable (``abandoned``).
    """

    def __init__(self, capture: CaptureHook | None = None, max_abandoned_threads: int = 32) -> None:
        self.loop_thread = AsyncLoopThread()
        self._capture = capture
        self.max_abandoned_threads = max_abandoned_threads
        self._abandoned: set[threading.Thread] = set()
        self._lock = threading.Lock()

    @property
    def abandoned(self) -> int:
        """Step threads still running after their step timed out."""
        with self._lock:
            self._abandoned = {t for t in self._abandoned if t.is_alive()}
            return len(self._abandoned)

    def close(self) -> None:
        self.loop_thread.close()

    def invoke(self, step: Step, arg: Any, rt: StepRuntime, timeout: float | None) -> Outcome:
        """Run the body; never raises (whatever it does, ``SystemExit`` and
        ``KeyboardInterrupt`` included, becomes an Outcome: a real signal to the worker
        reaches the worker's own handler, never a step)."""
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
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            return Outcome("error", error=exc)

    def _call(self, step: Step, arg: Any, rt: StepRuntime, timeout: float | None) -> Any:
        args = (arg,) if step.takes_arg else ()
        if step.is_async:
            return self._call_async(step, args, rt, timeout)
        if timeout is None:
            return self._run_sync(step, args, rt)
        hung = self.abandoned
        if hung >= self.max_abandoned_threads:
            raise StepTimeoutError(
                f"step {step.name!r} was not started: {hung} timed-out step threads are still "
                "running in this worker (the limit); restart the worker once they are fixed"
            )
        ctx = contextvars.copy_context()
        thread, future = run_in_daemon_thread(
            lambda: ctx.run(self._run_sync, step, args, rt), f"durable-step-{step.name}"
        )
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # a thread cannot be interrupted: it runs on, and its result is discarded
            with self._lock:
                self._abandoned.add(thread)
            log.warning(
                "step %r of execution %s timed out after %gs; its thread runs on "
                "(%d abandoned step threads in this worker)",
                step.name,
                rt.execution_id,
                timeout,
                self.abandoned,
            )
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
            try:
                return await _guarded()
            except (SystemExit, KeyboardInterrupt) as exc:
                # raised in the loop thread they would stop the loop: carry them out
                return _Exited(exc)

        async def _guarded() -> Any:
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
        result = future.result()
        if isinstance(result, _Exited):
            raise result.exc
        return result


@dataclass(slots=True)
class _Exited:
    exc: BaseException
