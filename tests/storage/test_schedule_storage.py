"""The ScheduleStorage contract, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from durable.storage import StorageBackend
from durable.storage.protocols import FirePass, TickPlan

from .rows import NOW, execution, finish, schedule


def every_minute(row: dict) -> TickPlan:
    """Start one run for the due tick and move the schedule a minute on."""
    tick = row["next_run_at"]
    run = execution(schedule_name=row["name"], schedule_tick_at=tick)
    return TickPlan(tick + 60_000, [(tick, run)])


def test_names_are_unique_and_schedules_are_listed_by_name(backend: StorageBackend) -> None:
    assert backend.insert_schedule(schedule("b"), NOW)
    assert backend.insert_schedule(schedule("a", workflow_name="other", enabled=0), NOW)
    assert not backend.insert_schedule(schedule("b", every_ms=5), NOW)
    assert backend.get_schedule("b")["every_ms"] == 60_000
    assert backend.get_schedule("missing") is None
    assert [r["name"] for r in backend.list_schedules(None, None)] == ["a", "b"]
    assert [r["name"] for r in backend.list_schedules("other", None)] == ["a"]
    assert [r["name"] for r in backend.list_schedules(None, True)] == ["b"]
    assert [r["name"] for r in backend.list_schedules(None, False)] == ["a"]


def test_update_moves_the_next_run_only_when_asked_and_enabled(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    assert backend.update_schedule(schedule("s", every_ms=5_000, next_run_at=NOW + 5), False, NOW)
    row = backend.get_schedule("s")
    assert row["every_ms"] == 5_000 and row["next_run_at"] == NOW
    assert backend.update_schedule(schedule("s", next_run_at=NOW + 5), True, NOW)
    assert backend.get_schedule("s")["next_run_at"] == NOW + 5
    backend.set_schedule_enabled("s", False, None, NOW)
    assert backend.update_schedule(schedule("s", next_run_at=NOW + 9), True, NOW)
    assert backend.get_schedule("s")["next_run_at"] is None
    assert not backend.update_schedule(schedule("missing"), True, NOW)


def test_enable_and_disable_report_a_change_only_once(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    assert backend.set_schedule_enabled("s", False, None, NOW)
    assert not backend.set_schedule_enabled("s", False, None, NOW)
    assert backend.set_schedule_enabled("s", True, NOW + 7, NOW)
    assert backend.get_schedule("s")["next_run_at"] == NOW + 7
    assert not backend.set_schedule_enabled("missing", True, NOW, NOW)


def test_a_due_tick_fires_once_and_the_schedule_moves_on(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    assert backend.next_schedule_due(["wf"]) == NOW
    assert backend.next_schedule_due(["other"]) is None
    first = backend.fire_due_schedules(NOW, ["wf"], 10, every_minute)
    assert first.due == 1 and len(first.fired) == 1
    fired = first.fired[0]
    assert fired.tick_at == NOW and fired.execution is not None
    stored = backend.get_execution(fired.execution["id"])
    assert stored["schedule_name"] == "s" and stored["schedule_tick_at"] == NOW
    assert backend.get_schedule("s")["next_run_at"] == NOW + 60_000
    assert backend.get_schedule("s")["last_execution_id"] == stored["id"]
    assert backend.fire_due_schedules(NOW, ["wf"], 10, every_minute).fired == []
    assert backend.fire_due_schedules(NOW, ["other"], 10, every_minute).due == 0


def test_concurrent_schedulers_fire_each_tick_once(backend: StorageBackend) -> None:
    for i in range(5):
        backend.insert_schedule(schedule(f"s{i}"), NOW)
    passes: list[FirePass] = []
    lock = threading.Lock()

    def scheduler() -> None:
        result = backend.fire_due_schedules(NOW, ["wf"], 10, every_minute)
        with lock:
            passes.append(result)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fired = [(f.schedule["name"], f.tick_at) for p in passes for f in p.fired]
    assert sorted(fired) == [(f"s{i}", NOW) for i in range(5)]
    assert len(backend.list_executions(_all(), 100, None)) == 5


def test_a_plan_of_none_leaves_the_schedule_due(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    assert backend.fire_due_schedules(NOW, ["wf"], 10, lambda row: None).fired == []
    assert backend.get_schedule("s")["next_run_at"] == NOW


def test_overlap_skip_records_a_skipped_tick_while_a_run_is_active(
    backend: StorageBackend,
) -> None:
    backend.insert_schedule(schedule("s", overlap="skip"), NOW)
    [started] = backend.fire_due_schedules(NOW, ["wf"], 10, every_minute).fired
    [skipped] = backend.fire_due_schedules(NOW + 60_000, ["wf"], 10, every_minute).fired
    assert skipped.execution is None and skipped.tick_at == NOW + 60_000
    assert backend.get_schedule("s")["skipped_count"] == 1
    assert started.execution is not None
    finish(backend, started.execution, "completed", NOW + 61_000)
    [again] = backend.fire_due_schedules(NOW + 120_000, ["wf"], 10, every_minute).fired
    assert again.execution is not None


def test_trigger_stores_a_manual_run_of_a_known_schedule(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    run = execution(schedule_name="s", schedule_tick_at=NOW + 5)
    assert backend.trigger_schedule("s", run, NOW)
    assert backend.get_execution(run["id"])["schedule_name"] == "s"
    assert backend.get_schedule("s")["last_execution_id"] == run["id"]
    assert backend.get_schedule("s")["next_run_at"] == NOW
    other = execution(schedule_name="missing")
    assert not backend.trigger_schedule("missing", other, NOW)
    assert backend.get_execution(other["id"]) is None


def test_delete_forgets_fires_and_keeps_past_runs(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    [fired] = backend.fire_due_schedules(NOW, ["wf"], 10, every_minute).fired
    assert backend.delete_schedule("s")
    assert not backend.delete_schedule("s")
    assert backend.get_schedule("s") is None
    assert fired.execution is not None
    assert backend.get_execution(fired.execution["id"]) is not None
    backend.insert_schedule(schedule("s"), NOW)  # a new schedule of that name fires that tick
    assert len(backend.fire_due_schedules(NOW, ["wf"], 10, every_minute).fired) == 1


def test_pruned_fire_records_no_longer_guard_their_tick(backend: StorageBackend) -> None:
    backend.insert_schedule(schedule("s"), NOW)
    backend.fire_due_schedules(NOW, ["wf"], 10, every_minute)
    assert backend.prune_schedule_fires(NOW) == 0
    assert backend.prune_schedule_fires(NOW + 1) == 1
    assert backend.prune_schedule_fires(NOW + 1) == 0


def _all():  # every execution
    from durable.storage import ExecutionFilter

    return ExecutionFilter()
