"""The Storage contract, run over every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from durable.errors import ExecutionIdConflictError, LostClaimError, SchemaError
from durable.ids import new_id, new_token
from durable.storage import (
    Checkpoint,
    ExecutionFilter,
    KnownWorkflows,
    Storage,
    WaitFilter,
    open_storage,
)

NOW = 1_800_000_000_000
KNOWN = KnownWorkflows.of({"wf": [None], "orders": [None]})


@pytest.fixture
def store(any_url: str) -> Iterator[Storage]:
    storage = open_storage(any_url)
    storage.migrate()
    yield storage
    storage.close()


def execution(**extra):
    row = {
        "id": new_id(),
        "workflow_name": "wf",
        "queue": "default",
        "input": "1",
        "context": "1",
        "current_step": "a",
        "wake_at": NOW,
    }
    row.update(extra)
    return row


def claim_one(store: Storage, queue: str = "default", worker: str = "w1", now: int = NOW) -> dict:
    rows = store.claim(queue, 1, worker, new_token(), now, KNOWN)
    assert len(rows) == 1
    return rows[0]


def save_fields(row: dict, **changes) -> dict:
    fields = {
        "id": row["id"],
        "token": row["lock_token"],
        "status": row["status"],
        "context": row["context"],
        "current_step": row["current_step"],
        "attempts": row["attempts"],
        "result": None,
        "error": None,
        "queue": row["queue"],
        "wake_at": None,
        "suspend": 0,
        "seen_wakeups": row["wakeups"],
        "new_token": row["lock_token"],
        "locked_by": row["locked_by"],
        "deadline_at": None,
        "completed_at": None,
    }
    fields.update(changes)
    return fields


def test_migrate_is_idempotent_and_reports_nothing_pending(store):
    assert store.migrate() == []
    assert store.pending_migrations() == []


def test_create_get_and_list(store):
    rows = [execution(created_marker=i) for i in range(3)]
    for r in rows:
        r.pop("created_marker")
    store.create_executions(rows, NOW)
    got = store.get_execution(rows[0]["id"])
    assert got["workflow_name"] == "wf" and got["status"] == "pending" and got["created_at"] == NOW
    assert store.get_execution("missing") is None
    listed = store.list_executions(ExecutionFilter(), 10, None)
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(rows)]
    page = store.list_executions(ExecutionFilter(), 2, None)
    rest = store.list_executions(ExecutionFilter(), 10, (page[-1]["created_at"], page[-1]["id"]))
    assert [r["id"] for r in page + rest] == [r["id"] for r in reversed(rows)]
    assert store.list_executions(ExecutionFilter(statuses=("completed",)), 10, None) == []
    assert (
        len(store.list_executions(ExecutionFilter(statuses=("pending", "failed")), 10, None)) == 3
    )
    assert store.find_ids_by_prefix(rows[0]["id"][:30], 5) == [rows[0]["id"]]
    assert store.find_ids_by_suffix(rows[1]["id"][-12:], 5) == [rows[1]["id"]]
    assert store.find_ids_by_suffix("%", 5) == []  # wildcards are taken literally


def test_create_is_all_or_nothing(store):
    row = execution()
    with pytest.raises(ExecutionIdConflictError, match="taken by a run of workflow 'wf'"):
        store.create_executions([execution(), row, {**row, "workflow_name": "other"}], NOW)
    assert store.list_executions(ExecutionFilter(), 10, None) == []


def test_create_with_a_stored_id_inserts_nothing(store):
    row = execution()
    assert store.create_executions([row], NOW) == [True]
    again = {**row, "input": "2", "context": "2"}
    assert store.create_executions([execution(), again, again], NOW + 1) == [True, False, False]
    assert store.get_execution(row["id"])["input"] == "1"
    assert len(store.list_executions(ExecutionFilter(), 10, None)) == 2


def test_claim_takes_only_known_workflows_and_versions(store):
    plain = execution(workflow_name="wf")
    theirs = execution(workflow_name="billing")
    v1 = execution(workflow_name="order", workflow_version="1")
    v2 = execution(workflow_name="order", workflow_version="2")
    unversioned = execution(workflow_name="order")  # stored before versions: known by name
    store.create_executions([plain, theirs, v1, v2, unversioned], NOW)
    only_v1 = KnownWorkflows.of({"order": ["1"]})
    got = {r["id"] for r in store.claim("default", 10, "w1", "t1", NOW, only_v1)}
    assert got == {v1["id"], unversioned["id"]}
    assert store.claim("default", 10, "w1", "t1", NOW, KnownWorkflows.of({})) == []
    rest = store.claim(
        "default", 10, "w2", "t2", NOW, KnownWorkflows.of({"order": ["2"], "wf": [None]})
    )
    assert {r["id"] for r in rest} == {v2["id"], plain["id"]}
    assert store.get_execution(theirs["id"])["lock_token"] is None  # nobody knows it


def test_runnable_groups_count_unclaimed_due_runs(store):
    store.create_executions(
        [
            execution(workflow_name="order", workflow_version="2", wake_at=NOW - 5),
            execution(workflow_name="order", workflow_version="2"),
            execution(workflow_name="invoice", queue="billing"),
            execution(workflow_name="invoice", wake_at=NOW + 60_000),  # not due yet
        ],
        NOW,
    )
    groups = {
        (g["workflow_name"], g["workflow_version"], g["queue"]): (g["n"], g["due_since"])
        for g in store.runnable_groups(NOW)
    }
    assert groups == {
        ("order", "2", "default"): (2, NOW - 5),
        ("invoice", None, "billing"): (1, NOW),
    }


def test_claim_takes_due_runs_once(store):
    due, later = execution(), execution(wake_at=NOW + 60_000)
    store.create_executions([due, later], NOW)
    first = store.claim("default", 10, "w1", "t1", NOW, KNOWN)
    assert [r["id"] for r in first] == [due["id"]]
    assert first[0]["status"] == "running" and first[0]["lock_token"] == "t1"
    assert store.claim("default", 10, "w2", "t2", NOW, KNOWN) == []
    assert store.claim("other", 10, "w2", "t2", NOW + 60_000, KNOWN) == []
    assert [r["id"] for r in store.claim("default", 10, "w2", "t2", NOW + 60_000, KNOWN)] == [
        later["id"]
    ]


def test_concurrent_claims_never_overlap(store):
    store.create_executions([execution() for _ in range(60)], NOW)
    seen: list[str] = []
    lock = threading.Lock()

    def grab(worker: str) -> None:
        while True:
            rows = store.claim("default", 3, worker, new_token(), NOW, KNOWN)
            if not rows:
                return
            with lock:
                seen.extend(r["id"] for r in rows)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 60 and len(set(seen)) == 60


def test_save_is_fenced_by_the_lock_token(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    step = {
        "id": new_id(),
        "execution_id": row["id"],
        "step_name": "a",
        "step_type": "step",
        "status": "completed",
        "attempt": 1,
        "result": "2",
        "started_at": NOW,
        "completed_at": NOW,
        "duration_ms": 0,
    }
    assert store.save(
        Checkpoint(save_fields(row, context="2", current_step="b"), NOW, steps=[step])
    )
    stolen = save_fields(row, token="someone-else")
    assert not store.save(Checkpoint(stolen, NOW, steps=[{**step, "id": new_id()}]))
    assert [s["step_name"] for s in store.list_steps(row["id"])] == ["a"]  # nothing half-written
    assert store.get_execution(row["id"])["current_step"] == "b"


def test_release_makes_the_run_claimable_again(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    assert store.save(
        Checkpoint(
            save_fields(row, status="pending", new_token=None, locked_by=None, wake_at=NOW + 5), NOW
        )
    )
    assert store.claim("default", 1, "w1", "x", NOW, KNOWN) == []
    assert len(store.claim("default", 1, "w1", "x", NOW + 5, KNOWN)) == 1


def test_stale_claims_are_recovered_exactly_once(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store, now=NOW)
    results: list[list[dict]] = []

    def recover() -> None:
        results.append(store.recover_stale(NOW + 1, NOW + 100))

    threads = [threading.Thread(target=recover) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 1]
    # the dead worker is named (not the NULL the UPDATE left behind)
    assert [r[0]["locked_by"] for r in results if r] == ["w1"]
    recovered = store.get_execution(row["id"])
    assert recovered["lock_token"] is None and recovered["status"] == "pending"
    assert not store.save(Checkpoint(save_fields(row), NOW))  # the old owner is fenced off


def test_heartbeat_keeps_claims_fresh_and_lists_workers(store):
    store.create_executions([execution(), execution(), execution()], NOW)
    running = [claim_one(store, worker="w1"), claim_one(store, worker="w1")]
    forgotten = claim_one(store, worker="w1")
    worker = {
        "id": "w1",
        "hostname": "h",
        "pid": 1,
        "queues": json.dumps({"default": 2}),
        "running": 1,
    }
    store.heartbeat(worker, NOW + 50, [row["lock_token"] for row in running])
    recovered = store.recover_stale(NOW + 10, NOW + 60)
    # only the claims a thread runs are kept fresh: the forgotten one goes stale; its
    # worker is alive, so it is an orphan, not a death on the run's budget
    assert [(r["id"], r["locked_by"], r["deaths"]) for r in recovered] == [
        (forgotten["id"], "w1", 0)
    ]
    assert [w["id"] for w in store.list_workers()] == ["w1"]
    assert store.delete_dead_workers(NOW + 100) == 1
    assert store.release_worker_claims("w1", NOW + 60) == 2


def test_the_claim_never_takes_a_terminal_run_and_suspects_run_alone(store):
    done, suspect, plain = execution(), execution(wake_at=NOW - 2), execution(wake_at=NOW - 1)
    store.create_executions([done, suspect, plain], NOW)
    rows = store.claim("default", 3, "w1", "t1", NOW, KNOWN)
    assert len(rows) == 3
    by_id = {r["id"]: r for r in rows}
    finished = save_fields(by_id[done["id"]], status="completed", new_token=None, locked_by=None)
    assert store.save(Checkpoint({**finished, "wake_at": NOW}, NOW))  # even with a wake time
    assert len(store.recover_stale(NOW + 1, NOW + 2)) == 2  # the worker died
    # one death isolates nobody: both are claimed (and their second worker dies too)
    assert len(store.claim("default", 3, "w1", "t1", NOW + 2, KNOWN)) == 2
    assert len(store.recover_stale(NOW + 3, NOW + 4)) == 2
    # a plain claim takes neither the finished run nor a suspect (two deaths)
    assert [r["id"] for r in store.claim("default", 3, "w2", "t2", NOW + 4, KNOWN)] == []
    for r in (suspect, plain):
        assert store.get_execution(r["id"])["deaths"] == 2
    assert store.suspect_waiting("default", NOW + 4)
    first = store.claim_suspect("default", "w2", "t3", NOW + 4)
    assert first is not None and first["id"] in (suspect["id"], plain["id"])
    assert store.claim_suspect("default", "w2", "t3", NOW + 4)["id"] != first["id"]
    # a checkpoint clears the suspicion: the run is claimable as usual again
    cleared = save_fields(first, status="pending", new_token=None, locked_by=None, wake_at=NOW)
    assert store.save(Checkpoint(cleared, NOW + 5))
    assert store.get_execution(first["id"])["crashes"] == 0
    assert [r["id"] for r in store.claim("default", 3, "w2", "t4", NOW + 5, KNOWN)] == [first["id"]]


def test_release_claim_keeps_the_stored_state_and_counts_a_crash(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    assert not store.release_claim(row["id"], "not-mine", NOW, NOW + 5, None)
    assert store.release_claim(row["id"], row["lock_token"], NOW, NOW + 5, '{"type":"Boom"}')
    stored = store.get_execution(row["id"])
    assert (stored["status"], stored["lock_token"], stored["wake_at"]) == ("pending", None, NOW + 5)
    assert (stored["crashes"], stored["deaths"], stored["crash_error"]) == (1, 0, '{"type":"Boom"}')
    again = claim_one(store, now=NOW + 5)
    assert store.release_token(again["lock_token"], NOW + 6) == 1
    assert store.get_execution(row["id"])["lock_token"] is None


def test_a_death_is_taken_back_never_below_zero(store):
    store.create_executions([execution()], NOW)
    claim_one(store, worker="gone")
    [recovered] = store.recover_stale(NOW + 1, NOW + 2)
    assert (recovered["crashes"], recovered["deaths"]) == (1, 1)
    store.refund_death(recovered["id"])
    store.refund_death(recovered["id"])  # once only: nothing left to take back
    stored = store.get_execution(recovered["id"])
    assert (stored["crashes"], stored["deaths"]) == (0, 0)


def wait_row(execution_id: str, **extra) -> dict:
    row = {
        "id": new_id(),
        "execution_id": execution_id,
        "step_name": "a",
        "seq": 0,
        "kind": "event",
        "name": "go",
    }
    row.update(extra)
    return row


def test_events_resolve_a_pending_wait_and_wake_the_run(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    group = store.register_waits(row["id"], row["lock_token"], [wait_row(row["id"])], NOW, [])
    assert group[0]["status"] == "pending"
    assert store.save(
        Checkpoint(
            save_fields(
                row, status="waiting", new_token=None, locked_by=None, wake_at=None, suspend=1
            ),
            NOW,
        )
    )
    assert store.claim("default", 1, "w", "t", NOW + 1, KNOWN) == []
    resolved = store.send_event(row["id"], "go", '{"x":1}', NOW + 2)
    assert resolved is not None
    assert store.waits_for_step(row["id"], "a")[0]["value"] == '{"x":1}'
    assert len(store.claim("default", 1, "w", "t", NOW + 2, KNOWN)) == 1


def test_events_sent_early_are_buffered_and_consumed_once(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    assert store.send_event(row["id"], "go", '"first"', NOW) is None
    assert store.send_event(row["id"], "go", '"second"', NOW) is None
    g1 = store.register_waits(row["id"], row["lock_token"], [wait_row(row["id"], seq=0)], NOW, [])
    g2 = store.register_waits(row["id"], row["lock_token"], [wait_row(row["id"], seq=1)], NOW, [])
    g3 = store.register_waits(row["id"], row["lock_token"], [wait_row(row["id"], seq=2)], NOW, [])
    assert (g1[0]["value"], g2[0]["value"], g3[0]["status"]) == ('"first"', '"second"', "pending")
    again = store.register_waits(
        row["id"], row["lock_token"], [wait_row(row["id"], seq=0)], NOW, []
    )
    assert again[0]["value"] == '"first"'  # idempotent: the same call finds the same wait


def test_register_waits_is_fenced(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    with pytest.raises(LostClaimError):
        store.register_waits(row["id"], "not-mine", [wait_row(row["id"])], NOW, [])


def test_wait_any_resolves_one_and_cancels_siblings(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    rows = [wait_row(row["id"], name=n, mode="any") for n in ("a", "b")]
    store.register_waits(row["id"], row["lock_token"], rows, NOW, [])
    store.send_event(row["id"], "b", "2", NOW)
    statuses = {w["name"]: w["status"] for w in store.waits_for_step(row["id"], "a")}
    assert statuses == {"a": "cancelled", "b": "resolved"}


def test_wait_all_wakes_only_when_complete(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    rows = [wait_row(row["id"], name=n, mode="all") for n in ("a", "b")]
    store.register_waits(row["id"], row["lock_token"], rows, NOW, [])
    store.save(
        Checkpoint(
            save_fields(
                row, status="waiting", new_token=None, locked_by=None, wake_at=None, suspend=1
            ),
            NOW,
        )
    )
    store.send_event(row["id"], "a", "1", NOW)
    assert store.claim("default", 1, "w", "t", NOW, KNOWN) == []
    store.send_event(row["id"], "b", "2", NOW)
    assert len(store.claim("default", 1, "w", "t", NOW, KNOWN)) == 1


def test_inputs_exactly_one_answer_wins(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    store.register_waits(
        row["id"],
        row["lock_token"],
        [wait_row(row["id"], kind="input", name="ok", input_type="text")],
        NOW,
        [],
    )
    wait = store.get_pending_input(row["id"], "ok")
    assert wait is not None
    outcomes: list[bool] = []
    threads = [
        threading.Thread(target=lambda v=v: outcomes.append(store.resolve_input(wait, v, NOW)))
        for v in ('"a"', '"b"')
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False, True]
    assert store.get_pending_input(row["id"], "ok") is None
    assert len(store.list_input_waits(row["id"], "ok")) == 1


def test_inputs_buffered_once(store):
    store.create_executions([execution()], NOW)
    ex = store.list_executions(ExecutionFilter(), 1, None)[0]
    assert store.buffer_input(ex["id"], "ok", '"yes"', NOW)
    assert not store.buffer_input(ex["id"], "ok", '"no"', NOW)


def test_expire_waits_only_pending(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    group = store.register_waits(
        row["id"], row["lock_token"], [wait_row(row["id"], timeout_at=NOW + 5)], NOW, []
    )
    assert store.expire_waits([group[0]["id"]], NOW + 5) == [group[0]["id"]]
    assert store.expire_waits([group[0]["id"]], NOW + 6) == []


def test_children_and_cancel_cascade(store):
    parent = execution()
    store.create_executions([parent], NOW)
    row = claim_one(store)
    child = execution(parent_id=row["id"], parent_step="a")
    grandchild = execution(parent_id=child["id"])
    store.register_waits(
        row["id"],
        row["lock_token"],
        [wait_row(row["id"], kind="child", child_id=child["id"], name="wf")],
        NOW,
        [child],
    )
    store.create_executions([grandchild], NOW)
    assert [c["id"] for c in store.list_children(row["id"])] == [child["id"]]
    cancelled = store.cancel_executions(row["id"], '{"type":"Cancelled","message":"x"}', NOW)
    assert {c["id"] for c in cancelled} == {row["id"], child["id"], grandchild["id"]}
    assert all(store.get_execution(c["id"])["status"] == "cancelled" for c in cancelled)
    assert store.waits_for_step(row["id"], "a")[0]["status"] == "cancelled"
    assert store.cancel_executions(row["id"], "{}", NOW) == []


def test_a_finished_child_resolves_its_parents_wait(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    child = execution(parent_id=row["id"], queue="kids")
    store.register_waits(
        row["id"],
        row["lock_token"],
        [wait_row(row["id"], kind="child", child_id=child["id"], name="wf")],
        NOW,
        [child],
    )
    store.save(
        Checkpoint(
            save_fields(
                row, status="waiting", new_token=None, locked_by=None, wake_at=None, suspend=1
            ),
            NOW,
        )
    )
    crow = claim_one(store, queue="kids")
    value = '{"status":"completed","result":5}'
    cp = Checkpoint(
        save_fields(crow, status="completed", new_token=None, locked_by=None, completed_at=NOW),
        NOW,
        notify_parent=(crow["id"], value),
    )
    assert store.save(cp)
    assert store.waits_for_step(row["id"], "a")[0]["value"] == value
    assert len(store.claim("default", 1, "w", "t", NOW, KNOWN)) == 1


def test_retry_only_failed_runs(store):
    store.create_executions([execution()], NOW)
    row = claim_one(store)
    store.save(
        Checkpoint(
            save_fields(
                row,
                status="failed",
                new_token=None,
                locked_by=None,
                error='{"type":"E"}',
                completed_at=NOW,
            ),
            NOW,
        )
    )
    assert store.retry_execution(row["id"], "{}", NOW + 1)
    again = store.get_execution(row["id"])
    assert again["status"] == "pending" and again["error"] is None and again["wake_at"] == NOW + 1
    assert not store.retry_execution(row["id"], "{}", NOW + 2)


def test_pending_waits_are_listed_with_filters(store):
    store.create_executions([execution(workflow_name="orders")], NOW)
    row = claim_one(store)
    store.register_waits(
        row["id"],
        row["lock_token"],
        [wait_row(row["id"], kind="input", name="approve", timeout_at=NOW + 100)],
        NOW,
        [],
    )
    store.register_waits(
        row["id"], row["lock_token"], [wait_row(row["id"], seq=1, name="paid")], NOW, []
    )
    inputs = store.list_pending_waits("input", WaitFilter(), 10)
    assert [(w["name"], w["workflow_name"]) for w in inputs] == [("approve", "orders")]
    assert store.list_pending_waits("input", WaitFilter(expires_before_ms=NOW + 50), 10) == []
    assert [
        w["name"] for w in store.list_pending_waits("event", WaitFilter(workflow="orders"), 10)
    ] == ["paid"]


def test_counts(store):
    store.create_executions([execution(), execution(queue="q2")], NOW)
    claim_one(store)
    counts = {(r["queue"], r["status"]): r["n"] for r in store.queue_counts()}
    assert counts == {("default", "running"): 1, ("q2", "pending"): 1}
    assert {r["status"]: r["n"] for r in store.status_counts(None)} == {"running": 1, "pending": 1}


def test_unmigrated_database_says_what_to_run(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/empty.db")
    assert storage.pending_migrations()[0] == "0001_core"
    with pytest.raises(SchemaError, match="durable migrate"):
        storage.get_execution("x")
    storage.close()


def test_the_commit_that_ends_a_claim_can_claim_the_next_run(store):
    store.create_executions([execution(), execution()], NOW)
    row = claim_one(store)
    done = save_fields(row, status="completed", new_token=None, locked_by=None, completed_at=NOW)
    stolen = Checkpoint(
        {**done, "token": "not-mine"}, NOW, claim_next=("default", "w1", "t9", KNOWN)
    )
    assert not store.save(stolen) and stolen.claimed == []  # fenced: nothing claimed either
    cp = Checkpoint(done, NOW, claim_next=("default", "w1", "t9", KNOWN))
    assert store.save(cp)
    [nxt] = cp.claimed
    assert nxt["id"] != row["id"] and nxt["lock_token"] == "t9" and nxt["status"] == "running"
    assert store.get_execution(nxt["id"])["locked_by"] == "w1"
    assert store.claim("default", 5, "w2", "t", NOW, KNOWN) == []
