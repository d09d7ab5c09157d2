"""The async host: ``async with Durable(...)``, every async verb, and none blocks the loop.

Two measures: a storage wrapper records the thread of every database call (none may
run on the event loop's thread), and a ticker measures the loop's lag while the
verbs run, including a graceful stop that waits for a step in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from durable import Durable, Workflow, step
from durable.storage import Storage, open_storage
from durable.wait import wait_for_event, wait_for_input

# A blocking stop_worker/close would hold the loop for the whole step (SLOW_STEP_SECONDS);
# the loop must answer well within that while any async verb runs. On a quiet machine the
# worst lag is a few milliseconds; the bound leaves room for a loaded CI machine (the
# exact check is the one on database calls above).
SLOW_STEP_SECONDS = 1.5
MAX_LAG_SECONDS = SLOW_STEP_SECONDS / 2


class ThreadRecordingStorage:
    """Storage that notes which thread made each call."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner
        self.threads: dict[int, list[str]] = {}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads.setdefault(threading.get_ident(), []).append(name)
            return value(*args, **kwargs)

        return call


class LagMeter:
    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            before = loop.time()
            await asyncio.sleep(0.002)
            self.worst = max(self.worst, loop.time() - before - 0.002)

    def stop(self) -> None:
        self._stop = True


def ask(ctx: Any) -> Any:
    return {**ctx, "answer": wait_for_input("answer"), "ping": wait_for_event("ping")}


SLOW_STARTED = threading.Event()  # the body runs (a claimed run may not have begun it)


def slow(ctx: Any) -> Any:
    SLOW_STARTED.set()
    time.sleep(SLOW_STEP_SECONDS)
    return ctx


ASK = Workflow("ask", [step(ask)])
SLOW = Workflow("slow", [step(slow)])


async def _timed(meter: LagMeter, label: str, fn: Callable[[], Any], lags: dict[str, float]) -> Any:
    meter.worst = 0.0
    result = await fn()
    lags[label] = meter.worst
    return result


async def test_every_async_verb_leaves_the_loop_free(sqlite_url: str) -> None:
    storage = ThreadRecordingStorage(open_storage(sqlite_url))
    meter = LagMeter()
    lags: dict[str, float] = {}
    ticker = asyncio.create_task(meter.run())
    loop_thread = threading.get_ident()
    app = Durable(
        sqlite_url,
        [ASK, SLOW],
        storage=storage,  # type: ignore[arg-type]
        poll_interval_seconds=0.05,
    )
    storage.threads.clear()  # the constructor is sync by nature; the verbs are what we test
    async with app:
        t = lambda label, fn: _timed(meter, label, fn, lags)  # noqa: E731
        await t("migrate", lambda: app.migrate_async())
        await t("pending_migrations", lambda: app.pending_migrations_async())
        await t("start_worker", lambda: app.start_worker_async())
        run_id = await t("start", lambda: app.start_async(ASK, {"id": 1}))
        await t("start_many", lambda: app.start_many_async(ASK, [{"id": 2}]))
        await t("get_execution", lambda: app.get_execution_async(run_id))
        await t("list_executions", lambda: app.list_executions_async(workflow="ask"))
        for _ in range(400):
            if await app.list_pending_inputs_async(execution_id=run_id):
                break
            await asyncio.sleep(0.025)
        await t("list_pending_inputs", lambda: app.list_pending_inputs_async())
        await t("provide_input", lambda: app.provide_input_async(run_id, "answer", 42))
        await t("list_pending_events", lambda: app.list_pending_events_async())
        await t("send_event", lambda: app.send_event_async(run_id, "ping", "pong"))
        result = await t("result", lambda: app.result_async(run_id, timeout=30))
        assert result == {"id": 1, "answer": 42, "ping": "pong"}
        await t("wait_for_completion", lambda: app.wait_for_completion_async(run_id))
        await t("list_steps", lambda: app.list_steps_async(run_id))
        await t("list_children", lambda: app.list_children_async(run_id))
        other = (await app.list_executions_async(status="waiting")).items[0].id
        await t("cancel_wait", lambda: app.cancel_wait_async(other))
        await t("subscribe", lambda: app.subscribe_async(app.pubsub.workflows_topic()))
        SLOW_STARTED.clear()
        slow_id = await app.start_async(SLOW, {})
        assert await asyncio.to_thread(SLOW_STARTED.wait, 60)
        began = time.monotonic()
        await t("stop_worker", lambda: app.stop_worker_async(grace_seconds=30))
        assert time.monotonic() - began >= SLOW_STEP_SECONDS / 3  # it did wait for the step
        assert (await app.get_execution_async(slow_id)).status == "completed"
        await t("start_worker again", lambda: app.start_worker_async())
        doomed = await app.start_async(ASK, {"id": 3})
        await t("cancel", lambda: app.cancel_async(doomed))
        await t("retry (refused)", lambda: _refused(app.retry_async(run_id)))
    lags["close"] = meter.worst
    meter.stop()
    await ticker

    on_loop = storage.threads.get(loop_thread, [])
    assert on_loop == [], f"database calls on the event loop's thread: {on_loop}"
    slowest = max(lags, key=lambda k: lags[k])
    print("loop lag per verb (ms):", {k: round(v * 1000, 1) for k, v in lags.items()})
    assert lags[slowest] < MAX_LAG_SECONDS, f"{slowest} held the loop {lags[slowest]:.3f}s: {lags}"


async def _refused(coro: Any) -> None:
    from durable.errors import InvalidStateError

    try:
        await coro
    except InvalidStateError:
        return
    raise AssertionError("retry of a completed run was accepted")


async def test_close_async_waits_for_a_step_in_flight_without_blocking(sqlite_url: str) -> None:
    meter = LagMeter()
    ticker = asyncio.create_task(meter.run())
    app = Durable(sqlite_url, [SLOW], poll_interval_seconds=0.05)
    SLOW_STARTED.clear()
    await app.start_worker_async()
    run_id = await app.start_async(SLOW, {})
    assert await asyncio.to_thread(SLOW_STARTED.wait, 60)
    meter.worst = 0.0
    await app.close_async()
    meter.stop()
    await ticker
    assert meter.worst < MAX_LAG_SECONDS
    with Durable(sqlite_url, [SLOW]) as again:
        assert again.get_execution(run_id).status == "completed"


async def test_run_worker_async_runs_until_cancelled(sqlite_url: str) -> None:
    async with Durable(sqlite_url, [SLOW], poll_interval_seconds=0.05) as app:
        SLOW_STARTED.clear()
        task = asyncio.create_task(app.run_worker_async(grace_seconds=30))
        run_id = await app.start_async(SLOW, {})
        assert await asyncio.to_thread(SLOW_STARTED.wait, 60)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # the graceful stop let the step finish
        assert (await app.get_execution_async(run_id)).status == "completed"
