"""SIGKILL in the middle of a parallel block and of a compensation: nothing finished runs twice."""

from __future__ import annotations

import collections
import signal

import pytest

from tests.support import apps
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow


def _worker(url, effects, log, sleep="0.3"):
    env = {
        "DURABLE_TEST_URL": url,
        "DURABLE_SIDE_EFFECTS": str(effects),
        "DURABLE_STEP_SLEEP": sleep,
    }
    return spawn(
        ["-m", "durable", "--app", "tests.support.apps:app", "worker", "-q", "default=2"], env, log
    )


def _kill_when(proc, predicate, what):
    try:
        wait_until(predicate, 60, what=what)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_crash_inside_a_parallel_block(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    effects = tmp_path / "effects.log"
    run_id = app.start(apps.PARALLEL, {"id": "par"})
    first = _worker(db_url, effects, tmp_path / "w1.log", sleep="0.4")

    def some_children_done() -> bool:
        return sum(s.status == "completed" for s in app.list_steps(run_id)) >= 1

    _kill_when(first, some_children_done, "a finished parallel child")
    committed = {s.step_name for s in app.list_steps(run_id) if s.status == "completed"}
    assert committed and "parallel_1" not in committed, committed
    second = _worker(db_url, effects, tmp_path / "w2.log", sleep="0")
    try:
        wait_until(lambda: app.get_execution(run_id).is_finished, 60, what="the run to finish")
    finally:
        second.terminate()
        second.wait(30)
    e = app.get_execution(run_id)
    assert e.status == "completed"
    assert set(e.result["__results__"]) == {f"p{i}" for i in range(1, 6)}
    counts = collections.Counter(line.split(":")[1] for line in effects.read_text().split())
    for name in committed:
        assert counts[name] == 1, f"{name} finished before the crash but ran {counts[name]} times"
    app.close()


def test_crash_during_compensation(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    effects = tmp_path / "effects.log"
    run_id = app.start(apps.SAGA, {"id": "saga"})
    first = _worker(db_url, effects, tmp_path / "w1.log", sleep="0.4")

    def compensating_started() -> bool:
        return any(
            s.step_type == "compensation" and s.status == "completed"
            for s in app.list_steps(run_id)
        )

    _kill_when(first, compensating_started, "a finished compensation")
    done_comps = {
        s.step_name
        for s in app.list_steps(run_id)
        if s.step_type == "compensation" and s.status == "completed"
    }
    second = _worker(db_url, effects, tmp_path / "w2.log", sleep="0")
    try:
        wait_until(lambda: app.get_execution(run_id).is_finished, 60, what="compensation to finish")
    finally:
        second.terminate()
        second.wait(30)
    e = app.get_execution(run_id)
    assert e.status == "compensated"
    lines = [line.split(":")[1] for line in effects.read_text().split()]
    counts = collections.Counter(lines)
    assert counts["reserve"] == counts["charge"] == counts["ship"] == 1
    undo_order = [x for x in lines if x in ("unship", "refund", "release")]
    assert undo_order[-1] == "release" and set(undo_order) == {"unship", "refund", "release"}
    names = {
        "ship.compensate": "unship",
        "charge.compensate": "refund",
        "reserve.compensate": "release",
    }
    for comp in done_comps:
        assert counts[names[comp]] == 1, f"{comp} finished before the crash but ran again"
    app.close()
