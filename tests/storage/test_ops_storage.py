"""The OpsStorage contract (doctor and inspect reads, safe repairs), on every backend."""

from __future__ import annotations

import time

from durable.ids import new_token
from durable.storage import StorageBackend
from tests.storage.rows import KNOWN

from .rows import NOW, claim, execution, finish, save, wait


def test_execution_waits_lists_every_wait_of_a_run_oldest_first(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    run = claim(backend)
    first = wait(run["id"], name="go", seq=0)
    second = wait(run["id"], kind="input", name="ok", seq=1)
    backend.register_waits(run["id"], run["lock_token"], [first], NOW, [])
    backend.register_waits(run["id"], run["lock_token"], [second], NOW + 1, [])
    backend.expire_waits([first["id"]], NOW + 2)
    rows = backend.execution_waits(run["id"])
    assert [(r["id"], r["status"]) for r in rows] == [
        (first["id"], "timed_out"),
        (second["id"], "pending"),
    ]
    assert backend.execution_waits("nobody") == []


def test_stale_claims_are_those_without_a_recent_heartbeat(backend: StorageBackend) -> None:
    backend.create_executions([execution(), execution(queue="other")], NOW)
    run = claim(backend, at=NOW)
    claim(backend, "other", at=NOW + 10)
    stale = backend.stale_claims(NOW + 5)
    assert [(r["id"], r["locked_by"], r["heartbeat_at"]) for r in stale] == [(run["id"], "w", NOW)]
    assert len(backend.stale_claims(NOW + 11)) == 2
    assert len(backend.stale_claims(NOW + 11, limit=1)) == 1
    assert backend.stale_claims(NOW) == []


def test_a_run_nothing_can_wake_is_found_and_woken_once(backend: StorageBackend) -> None:
    backend.create_executions([execution(), execution(queue="waits")], NOW)
    stuck = claim(backend)
    assert save(backend, stuck, NOW, status="waiting", suspend=1)
    waiting = claim(backend, "waits")
    backend.register_waits(waiting["id"], waiting["lock_token"], [wait(waiting["id"])], NOW, [])
    assert save(backend, waiting, NOW, status="waiting", suspend=1)
    found = backend.unwakeable_runs()
    assert [(r["id"], r["workflow_name"], r["current_step"]) for r in found] == [
        (stuck["id"], "wf", "a")
    ]
    assert backend.wake_unwakeable(stuck["id"], NOW + 1)
    assert not backend.wake_unwakeable(stuck["id"], NOW + 2)
    assert not backend.wake_unwakeable(waiting["id"], NOW + 2)
    assert backend.unwakeable_runs() == []
    assert [r["id"] for r in backend.claim("default", 5, "w2", new_token(), NOW + 1, KNOWN)] == [
        stuck["id"]
    ]


def test_a_lost_child_result_is_found_and_delivered_once(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    parent = claim(backend)
    child = execution(parent_id=parent["id"], parent_step="a", queue="kids")
    child_wait = wait(parent["id"], kind="child", name="wf", child_id=child["id"])
    backend.register_waits(parent["id"], parent["lock_token"], [child_wait], NOW, [child])
    assert save(backend, parent, NOW, status="waiting", suspend=1)
    assert backend.finished_child_waits() == []
    finish(backend, child, "completed", NOW + 1, result="5")  # the parent is not told
    [lost] = backend.finished_child_waits()
    assert (lost["wait_id"], lost["execution_id"], lost["child_id"]) == (
        child_wait["id"],
        parent["id"],
        child["id"],
    )
    assert (lost["child_status"], lost["child_result"], lost["child_error"]) == (
        "completed",
        "5",
        None,
    )
    value = '{"status":"completed","result":5}'
    backend.deliver_child_result(child["id"], value, NOW + 2)
    backend.deliver_child_result(child["id"], '{"status":"other"}', NOW + 3)
    [resolved] = backend.execution_waits(parent["id"])
    assert resolved["status"] == "resolved" and resolved["value"] == value
    assert backend.finished_child_waits() == []
    assert [r["id"] for r in backend.claim("default", 5, "w2", new_token(), NOW + 2, KNOWN)] == [
        parent["id"]
    ]


def test_schedule_runs_are_the_finished_scheduled_ones_newest_first(
    backend: StorageBackend,
) -> None:
    old = execution(schedule_name="s", queue="q1")
    new = execution(schedule_name="s", queue="q2")
    active = execution(schedule_name="s", queue="q3")
    unscheduled = execution(queue="q4")
    backend.create_executions([old], NOW)
    backend.create_executions([new, active, unscheduled], NOW + 10)
    for row, status in ((old, "failed"), (new, "completed"), (unscheduled, "completed")):
        finish(backend, row, status, NOW + 20)
    runs = backend.schedule_runs(NOW)
    assert [(r["schedule_name"], r["status"], r["created_at"]) for r in runs] == [
        ("s", "completed", NOW + 10),
        ("s", "failed", NOW),
    ]
    assert [r["status"] for r in backend.schedule_runs(NOW + 1)] == ["completed"]


def test_the_database_clock_is_epoch_milliseconds(backend: StorageBackend) -> None:
    here = time.time() * 1000
    assert abs(backend.database_now_ms() - here) < 60_000
