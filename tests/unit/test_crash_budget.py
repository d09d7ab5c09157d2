"""Runs that crash the engine are stopped with a clear error; error capture cannot fail."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from durable import Retry, Workflow, branch, parallel, step
from durable.errors import DefinitionError, StorageError
from durable.ids import new_token
from durable.storage import Checkpoint
from durable.testing import TestApp

CALLS: Counter[str] = Counter()


def first(ctx: Any) -> Any:
    CALLS["first"] += 1
    return {"n": 1}


def second(ctx: Any) -> Any:
    CALLS["second"] += 1
    return {**ctx, "second": True}


TWO = Workflow("two", [step(first), step(second)])


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def test_an_executor_that_keeps_failing_on_a_run_fails_it_after_the_budget() -> None:
    with TestApp([TWO], crash_budget=3) as t:
        real = t.app.storage.save

        def save(cp: Checkpoint) -> bool:
            if any(s["step_name"] == "second" for s in cp.steps):
                raise RuntimeError("a bug in the executor")
            return real(cp)

        t.app.storage.save = save  # type: ignore[method-assign]
        run_id = t.app.start(TWO, None)
        for _ in range(10):
            t.advance(2)
        execution = t.assert_status(run_id, "failed")
        assert execution.error["type"] == "ExecutorCrashError"
        message = execution.error["message"]
        assert message.startswith("the executor failed 3 times while running step `second`")
        assert "RuntimeError: a bug in the executor" in message
        assert CALLS == {"first": 1, "second": 3}  # no loop: three tries, then stop
        assert t.completed_steps(run_id) == ["first"]  # its history is kept
        assert t.app.storage.get_execution(run_id)["lock_token"] is None


def test_worker_deaths_fail_the_run_that_causes_them_not_its_neighbours() -> None:
    with TestApp([TWO], crash_budget=3, stale_timeout_seconds=10) as t:
        poison = t.app.start(TWO, None)
        neighbour = t.app.start(TWO, None, priority=1)
        storage = t.app.storage

        def worker_dies(claimed: list[str]) -> None:
            t.clock.advance(11)  # no heartbeat: the worker is dead
            recovered = t._worker.maintain()
            assert sorted(r["id"] for r in recovered) == sorted(claimed)
            assert {r["locked_by"] for r in recovered} == {"doomed"}  # named in the log

        # the poison kills the worker that holds both, twice: each is charged two deaths
        for _ in range(2):
            storage.claim(
                "default", 2, "doomed", new_token(), t.clock.now_ms(), t.app.engine.known()
            )
            worker_dies([poison, neighbour])
        assert (
            storage.claim("default", 2, "w", new_token(), t.clock.now_ms(), t.app.engine.known())
            == []
        )
        # suspects run alone, one at a time: the neighbour completes and is cleared
        assert t._worker.run_once() == 1
        assert t.app.get_execution(neighbour).status == "completed"
        # the poison, alone, kills the worker that takes it: that death is its own
        alone = storage.claim_suspect("default", "doomed", new_token(), t.clock.now_ms())
        assert alone is not None and alone["id"] == poison
        worker_dies([poison])
        t.run_until_idle()
        execution = t.assert_status(poison, "failed")
        assert execution.error == {
            "type": "WorkerCrashError",
            "message": "the worker process died 3 times while running step `first`",
            "crashes": 3,
        }
        assert CALLS["first"] == 1  # the neighbour's; the poison never ran again
        assert t.assert_status(neighbour, "completed").result == {"n": 1, "second": True}


def deep(ctx: Any) -> Any:
    CALLS["deep"] += 1
    value: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 100):
        value = [value]
    return value


def surrogate(ctx: Any) -> Any:
    CALLS["surrogate"] += 1
    return {"text": "\ud800"}


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no")


def unprintable(ctx: Any) -> Any:
    CALLS["unprintable"] += 1
    raise Unprintable()


@pytest.mark.parametrize(
    ("body", "kind"),
    [(deep, "SerializationError"), (surrogate, "SerializationError"), (unprintable, "Unprintable")],
)
def test_a_result_or_error_that_cannot_be_stored_is_a_step_failure(body: Any, kind: str) -> None:
    wf = Workflow("bad", [step(body)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        t.advance(5)
        execution = t.assert_status(run_id, "failed")
        assert execution.error["type"] == kind
        assert CALLS[body.__name__] == 1  # recorded once, not an executor crash loop
        assert t.history(run_id) == [(body.__name__, "failed")]


def exits(ctx: Any) -> Any:
    CALLS["exits"] += 1
    if CALLS["exits"] == 1:
        raise SystemExit(3)
    if CALLS["exits"] == 2:
        raise KeyboardInterrupt
    return "ok"


async def exits_async(ctx: Any) -> Any:
    await asyncio.sleep(0)
    CALLS["exits_async"] += 1
    if CALLS["exits_async"] == 1:
        raise SystemExit(3)
    return "ok"


@pytest.mark.parametrize("body", [exits, exits_async])
def test_system_exit_in_a_step_is_a_recorded_step_failure(body: Any) -> None:
    wf = Workflow("exits", [step(body, retry=Retry(max_attempts=3, base=1))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        failed = t.app.list_steps(run_id)[0]
        assert (failed.status, failed.error["type"]) == ("failed", "SystemExit")
        for _ in range(3):
            t.advance(5)
        assert t.assert_status(run_id, "completed").result == "ok"


def test_a_run_left_unsettled_is_no_longer_heart_beaten() -> None:
    with TestApp([TWO], stale_timeout_seconds=0.3, heartbeat_interval_seconds=0.1) as t:
        storage = t.app.storage
        real_save, real_get = storage.save, storage.get_execution

        def down(*args: Any) -> Any:
            raise StorageError("the database is away")

        run_id = t.app.start(TWO, None)
        storage.save = down  # type: ignore[method-assign]
        storage.get_execution = down  # type: ignore[method-assign]
        t._worker.run_once()  # the runner cannot commit nor establish: it gives up
        storage.save, storage.get_execution = real_save, real_get  # type: ignore[method-assign]
        assert t._worker._claims == {}
        t._worker._beat_safely()
        assert storage.get_execution(run_id)["lock_token"] is not None
        t.clock.advance(1)
        t.run_until_idle()  # stale recovery takes it back; it then completes
        t.assert_status(run_id, "completed")


def test_branch_keys_match_by_type_and_value() -> None:
    wf = Workflow(
        "typed",
        [
            branch(
                lambda ctx: ctx,
                cases={1: [step(lambda c: "one", name="one")]},
                default=[step(lambda c: "other", name="other")],
            )
        ],
    )
    with TestApp([wf]) as t:
        assert t.run(wf, True).result == "other"
        assert t.run(wf, 1).result == "one"
        assert t.run(wf, 1.0).result == "other"


def test_parallel_siblings_each_get_their_own_context() -> None:
    written = threading.Event()

    def writer(ctx: dict[str, Any]) -> str:
        ctx["written"] = True
        ctx["items"].append("w")
        written.set()
        return "w"

    def reader(ctx: dict[str, Any]) -> Any:
        assert written.wait(30)  # the sibling has written in place by now
        return [ctx.get("written"), list(ctx["items"])]

    wf = Workflow("par", [parallel([step(writer), step(reader)])])
    with TestApp([wf]) as t:
        result = t.run(wf, {"items": []}).result
        assert result["__results__"]["reader"] == {"ok": [None, []]}
        assert "written" not in result and result["items"] == []  # nothing leaks


def test_queue_inside_a_block_is_refused_when_defined() -> None:
    with pytest.raises(DefinitionError, match="queue= is not supported inside parallel"):
        parallel([step(first, queue="gpu"), step(second)])
