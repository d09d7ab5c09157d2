"""The rest of the core Storage contract (beside test_contract.py), on every backend."""

from __future__ import annotations

from durable.ids import new_token
from durable.storage import StorageBackend
from tests.storage.rows import KNOWN

from .rows import NOW, claim, execution, save, step, wait


def test_completed_steps_are_the_finished_attempts_in_order(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    run = claim(backend)
    steps = [
        step(run["id"], NOW + 2, step_name="b"),
        step(run["id"], NOW + 1, step_name="a"),
        step(run["id"], NOW + 3, step_name="c", status="failed", result=None, error="{}"),
    ]
    assert save(backend, run, NOW + 3, new_token=run["lock_token"], steps=steps)
    done = backend.completed_steps(run["id"])
    assert [(r["step_name"], r["result"], r["completed_at"]) for r in done] == [
        ("a", "1", NOW + 1),
        ("b", "1", NOW + 2),
    ]


def test_cancel_waits_ends_the_pending_ones_and_wakes_the_run(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    run = claim(backend)
    pending = [wait(run["id"], name="go", mode="all"), wait(run["id"], name="ok", mode="all")]
    backend.register_waits(run["id"], run["lock_token"], pending, NOW, [])
    assert save(backend, run, NOW, status="waiting", suspend=1)
    assert backend.claim("default", 5, "w", new_token(), NOW + 1, KNOWN) == []
    assert backend.cancel_waits(run["id"], NOW + 1) == 2
    assert {w["status"] for w in backend.execution_waits(run["id"])} == {"cancelled"}
    assert backend.cancel_waits(run["id"], NOW + 2) == 0
    assert [r["id"] for r in backend.claim("default", 5, "w", new_token(), NOW + 1, KNOWN)] == [
        run["id"]
    ]


def test_a_reopened_wait_is_pending_again_without_its_value(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    run = claim(backend)
    asked = wait(run["id"], kind="input", name="ok")
    backend.register_waits(run["id"], run["lock_token"], [asked], NOW, [])
    [stored] = backend.waits_for_step(run["id"], "a")
    assert backend.resolve_input(stored, '"yes"', NOW + 1)
    backend.reopen_wait(asked["id"], NOW + 2)
    [again] = backend.waits_for_step(run["id"], "a")
    assert (again["status"], again["value"], again["resolved_at"]) == ("pending", None, None)
    assert backend.get_pending_input(run["id"], "ok") is not None


def test_a_removed_worker_is_no_longer_listed(backend: StorageBackend) -> None:
    for worker_id in ("w1", "w2"):
        worker = {"id": worker_id, "hostname": "h", "pid": 1, "queues": "{}", "running": 0}
        backend.heartbeat(worker, NOW, [])
    backend.remove_worker("w1")
    backend.remove_worker("w1")
    assert [w["id"] for w in backend.list_workers()] == ["w2"]
