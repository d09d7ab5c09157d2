"""The RetentionStorage contract (finished trees deleted whole), on every backend."""

from __future__ import annotations

from durable.storage import StorageBackend

from .rows import NOW, claim, execution, finish, save, step, wait


def _finished(backend: StorageBackend, status: str, at: int, queue: str, **extra) -> dict:
    row = execution(queue=queue, **extra)
    backend.create_executions([row], NOW)
    finish(backend, row, status, at, steps=[step(row["id"], at)])
    return row


def test_roots_are_counted_and_listed_oldest_first_with_a_keyset(backend: StorageBackend) -> None:
    a = _finished(backend, "completed", NOW + 1, "q1")
    b = _finished(backend, "completed", NOW + 2, "q2")
    _finished(backend, "failed", NOW + 1, "q3")
    _finished(backend, "completed", NOW + 9, "q4")
    assert backend.count_retention_roots("completed", NOW + 5) == 2
    assert backend.count_retention_roots("failed", NOW + 5) == 1
    assert backend.count_retention_roots("cancelled", NOW + 5) == 0
    page = backend.retention_roots("completed", NOW + 5, None, 1)
    assert [r["id"] for r in page] == [a["id"]]
    after = (page[0]["completed_at"], page[0]["id"])
    assert [r["id"] for r in backend.retention_roots("completed", NOW + 5, after, 10)] == [b["id"]]


def test_children_are_not_roots_and_trees_are_measured_whole(backend: StorageBackend) -> None:
    backend.create_executions([execution()], NOW)
    parent = claim(backend)
    child = execution(parent_id=parent["id"], parent_step="a", queue="kids")
    backend.register_waits(
        parent["id"],
        parent["lock_token"],
        [wait(parent["id"], kind="child", name="wf", child_id=child["id"])],
        NOW,
        [child],
    )
    assert save(backend, parent, NOW, status="waiting", suspend=1)
    outcome = (child["id"], '{"status":"completed","result":1}')
    finish(
        backend,
        child,
        "completed",
        NOW + 1,
        steps=[step(child["id"], NOW + 1)],
        notify_parent=outcome,
    )
    assert backend.count_retention_roots("completed", NOW + 5) == 0
    assert backend.measure_execution_tree(parent["id"]) == (2, 1, False)
    assert backend.delete_execution_trees([parent["id"]]) == (0, 0, 1)
    assert backend.get_execution(child["id"]) is not None
    parent = claim(backend, at=NOW + 2)
    assert save(
        backend,
        parent,
        NOW + 2,
        status="completed",
        completed_at=NOW + 2,
        steps=[step(parent["id"], NOW + 2), step(parent["id"], NOW + 2, step_name="b")],
    )
    assert [r["id"] for r in backend.retention_roots("completed", NOW + 5, None, 10)] == [
        parent["id"]
    ]
    assert backend.measure_execution_tree(parent["id"]) == (2, 3, True)
    assert backend.delete_execution_trees([parent["id"], "gone"]) == (2, 3, 0)
    assert backend.get_execution(parent["id"]) is None
    assert backend.get_execution(child["id"]) is None
    assert backend.list_steps(parent["id"]) == []
    assert backend.execution_waits(parent["id"]) == []
    assert backend.measure_execution_tree(parent["id"]) == (0, 0, True)
