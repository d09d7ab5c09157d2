"""The executor on a FakeClock: pipelines, retries, timeouts, cancel, retry of failed runs."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import timedelta

import pytest

from durable import Retry, Workflow, step
from durable.errors import (
    ExecutionNotFoundError,
    InvalidStateError,
    SerializationError,
    WorkflowNotFoundError,
)
from durable.testing import TestApp


def add_one(x):
    return x + 1


async def double(x):
    await asyncio.sleep(0)
    return x * 2


def test_pipeline_passes_each_result_to_the_next_step():
    wf = Workflow("p", [step(add_one), step(double), step(lambda x: {"v": x}, name="wrap")])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        assert t.app.get_execution(run_id).status == "pending"
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "completed"
        assert e.result == {"v": 4}
        assert e.input == 1
        assert e.started_at is not None and e.completed_at is not None
        steps = t.app.list_steps(run_id)
        assert [(s.step_name, s.status, s.attempt) for s in steps] == [
            ("add_one", "completed", 1),
            ("double", "completed", 1),
            ("wrap", "completed", 1),
        ]
        assert steps[1].result == 4


def test_retries_wait_off_the_worker_with_the_backoff_schedule():
    calls = []

    def flaky(x):
        calls.append(t.clock.now())
        if len(calls) < 4:
            raise ConnectionError(f"down {len(calls)}")
        return "ok"

    wf = Workflow("r", [step(flaky, retry=Retry(max_attempts=5, backoff="exponential", base=10))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "pending" and e.locked_by is None  # nothing holds a claim
        assert e.scheduled_at == calls[0] + timedelta(seconds=10)
        assert t.advance(9.9) == 0  # not due yet
        t.advance(0.1)
        t.advance(20)
        t.advance(40)
        assert t.app.get_execution(run_id).status == "completed"
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(calls)]
        assert gaps == [10, 20, 40]
        failed = [s for s in t.app.list_steps(run_id) if s.status == "failed"]
        assert [s.attempt for s in failed] == [1, 2, 3]
        assert failed[0].error["type"] == "ConnectionError"
        assert failed[0].error["message"] == "down 1"
        assert "Traceback" in failed[0].error["traceback"]
        assert failed[0].next_retry_at == calls[1]


def test_a_step_that_fails_for_good_fails_the_run_with_its_error():
    def boom(x):
        raise ValueError("bad input")

    wf = Workflow("f", [step(add_one), step(boom, retry=Retry(max_attempts=2, base=1))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.advance(1)
        e = t.app.get_execution(run_id)
        assert e.status == "failed"
        assert e.error["type"] == "ValueError" and e.error["message"] == "bad input"
        assert e.current_step == "boom"


def test_retry_of_a_failed_run_resumes_at_the_failed_step():
    ran = {"first": 0, "second": 0}
    broken = {"yes": True}

    def first(x):
        ran["first"] += 1
        return x

    def second(x):
        ran["second"] += 1
        if broken["yes"]:
            raise RuntimeError("not yet")
        return x * 10

    wf = Workflow("rt", [step(first), step(second)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 3)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "failed"
        broken["yes"] = False
        assert t.app.retry(run_id).status == "pending"
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "completed" and e.result == 30
        assert ran == {"first": 1, "second": 2}
        with pytest.raises(InvalidStateError, match="only failed executions"):
            t.app.retry(run_id)


def test_sync_step_timeout_fails_the_attempt():
    release = threading.Event()

    def slow(x):
        release.wait(5)
        return x

    wf = Workflow("t", [step(slow, timeout=0.05)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        release.set()
        e = t.app.get_execution(run_id)
        assert e.status == "failed"
        assert e.error["type"] == "StepTimeoutError"
        assert "timed out after 0.05s" in e.error["message"]


def test_async_step_timeout_cancels_the_coroutine():
    cancelled = threading.Event()

    async def slow(x):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    wf = Workflow("ta", [step(slow, timeout=0.05, retry=Retry(max_attempts=2, base=1))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert cancelled.wait(2)
        steps = t.app.list_steps(run_id)
        assert steps[0].error["type"] == "StepTimeoutError"
        assert t.app.get_execution(run_id).status == "pending"  # the retry is scheduled


def test_workflow_timeout_is_enforced_between_steps():
    def tick(x):
        t.clock.advance(40)
        return x

    wf = Workflow(
        "wt", [step(tick, name="s1"), step(tick, name="s2"), step(tick, name="s3")], timeout=60
    )
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 0)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed"
        assert e.error["type"] == "WorkflowTimeoutError"
        assert [s.step_name for s in t.app.list_steps(run_id)] == ["s1", "s2"]


def test_workflow_timeout_fires_while_a_retry_waits():
    def fails(x):
        raise RuntimeError("no")

    wf = Workflow("wt2", [step(fails, retry=Retry(max_attempts=10, base=3600))], timeout=60)
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 0)
        t.run_until_idle()
        assert t.app.get_execution(run_id).scheduled_at == t.clock.now() + timedelta(seconds=60)
        t.advance(60)
        assert t.app.get_execution(run_id).error["type"] == "WorkflowTimeoutError"


def test_cancel_a_pending_run_and_errors_for_finished_or_unknown():
    wf = Workflow("c", [step(add_one)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        e = t.app.cancel(run_id, "no longer needed")
        assert e.status == "cancelled" and e.error["message"] == "no longer needed"
        assert t.run_until_idle() == 0
        with pytest.raises(InvalidStateError, match="already cancelled"):
            t.app.cancel(run_id)
        with pytest.raises(ExecutionNotFoundError):
            t.app.cancel("nope")
        with pytest.raises(ExecutionNotFoundError):
            t.app.get_execution("nope")


def test_cancel_while_a_step_runs_fences_the_worker_off():
    entered = threading.Event()
    go_on = threading.Event()
    ran_second = []

    def first(x):
        entered.set()
        go_on.wait(5)
        return x

    def second(x):
        ran_second.append(x)
        return x

    wf = Workflow("cr", [step(first), step(second)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        worker = threading.Thread(target=t.run_until_idle)
        worker.start()
        assert entered.wait(5)
        t.app.cancel(run_id)
        go_on.set()
        worker.join(5)
        assert t.app.get_execution(run_id).status == "cancelled"
        assert ran_second == []
        assert [s.step_name for s in t.app.list_steps(run_id)] == []  # its commit was refused


def test_bad_input_is_refused_with_the_path_and_nothing_is_stored():
    wf = Workflow("bi", [step(add_one)])
    with TestApp([wf]) as t:
        with pytest.raises(SerializationError, match=r"input of workflow 'bi'.*\$\.when"):
            t.app.start(wf, {"when": object()})
        assert t.app.list_executions().items == []
        with pytest.raises(WorkflowNotFoundError, match="unknown workflow 'nope'"):
            t.app.start("nope", 1)


def test_a_result_that_cannot_be_stored_fails_the_run_naming_the_step():
    def bad(x):
        return {"fn": print}

    wf = Workflow("br", [step(bad, retry=Retry(max_attempts=3))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed"  # not retried: it would fail the same way
        assert "the result of step 'bad'" in e.error["message"] and "$.fn" in e.error["message"]


def test_naive_scheduled_at_is_refused_and_aware_one_delays():
    from datetime import datetime

    wf = Workflow("sa", [step(add_one)])
    with TestApp([wf]) as t:
        with pytest.raises(Exception, match="timezone-aware"):
            t.app.start(wf, 1, scheduled_at=datetime(2030, 1, 1))
        later = t.clock.now() + timedelta(hours=1)
        run_id = t.app.start(wf, 1, scheduled_at=later)
        assert t.run_until_idle() == 0
        t.advance(hours=1)
        assert t.app.get_execution(run_id).status == "completed"


def test_priority_orders_claims_within_a_queue():
    order = []

    def record(x):
        order.append(x)
        return x

    wf = Workflow("pr", [step(record)])
    with TestApp([wf]) as t:
        for i in range(3):
            t.app.start(wf, f"low{i}")
        t.app.start(wf, "high", priority=10)
        t.app.worker({"default": 1}).run_once()
        assert order[0] == "high"


def test_list_executions_filters_and_paginates():
    wf = Workflow("l1", [step(add_one)])
    other = Workflow("l2", [step(add_one, name="x")])
    with TestApp([wf, other]) as t:
        ids = [t.app.start(wf, i) for i in range(5)]
        t.app.start(other, 1)
        page = t.app.list_executions(workflow="l1", limit=2)
        assert len(page.items) == 2 and page.next_cursor
        seen = [e.id for e in page.items]
        while page.next_cursor:
            page = t.app.list_executions(workflow="l1", limit=2, cursor=page.next_cursor)
            seen += [e.id for e in page.items]
        assert seen == list(reversed(ids))
        t.run_until_idle()
        assert len(t.app.list_executions(status="completed").items) == 6
        assert t.app.list_executions(status=["failed", "cancelled"]).items == []
        with pytest.raises(Exception, match="unknown status"):
            t.app.list_executions(status="done")


def test_two_apps_live_side_by_side(tmp_path):
    wf = Workflow("side", [step(add_one)])
    with TestApp([wf]) as one, TestApp([wf], url=f"sqlite:///{tmp_path}/b.db") as two:
        a = one.app.start(wf, 1)
        b = two.app.start(wf, 10)
        one.run_until_idle()
        assert one.app.get_execution(a).result == 2
        assert two.app.get_execution(b).status == "pending"
        two.run_until_idle()
        assert two.app.get_execution(b).result == 11


def test_real_worker_threads_and_wait_for_completion():
    wf = Workflow("rw", [step(add_one), step(double)])
    from durable import Durable

    with Durable("memory://", workflows=[wf], poll_interval_seconds=0.05) as app:
        app.start_worker({"default": 4})
        ids = [app.start(wf, i) for i in range(20)]
        assert [app.result(i, timeout=10) for i in ids] == [(i + 1) * 2 for i in range(20)]


async def test_async_facade():
    wf = Workflow("af", [step(add_one)])
    with TestApp([wf]) as t:
        run_id = await t.app.start_async(wf, 41)
        t.run_until_idle()
        e = await t.app.get_execution_async(run_id)
        assert e.result == 42
        assert (await t.app.list_steps_async(run_id))[0].result == 42
