"""A worker killed with SIGKILL mid-workflow: another worker resumes; committed steps never rerun."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import pytest

from tests.support import apps
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow


def _worker(url: str, effects: Path, log: Path, sleep: str = "0.15"):
    env = {
        "DURABLE_TEST_URL": url,
        "DURABLE_SIDE_EFFECTS": str(effects),
        "DURABLE_STEP_SLEEP": sleep,
    }
    return spawn(
        ["-m", "durable", "--app", "tests.support.apps:app", "worker", "-q", "default=4"], env, log
    )


def test_sigkill_mid_workflow_resumes_without_rerunning_committed_steps(
    db_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    effects = tmp_path / "effects.log"
    ids = [app.start(apps.FIVE, {"id": f"run{i}"}) for i in range(4)]

    first = _worker(db_url, effects, tmp_path / "w1.log")
    try:

        def some_committed() -> bool:
            return (
                sum(len([s for s in app.list_steps(i) if s.status == "completed"]) for i in ids)
                >= 4
            )

        wait_until(some_committed, 60, what="a few committed steps")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    committed = {
        (app.get_execution(i).input["id"], s.step_name)
        for i in ids
        for s in app.list_steps(i)
        if s.status == "completed"
    }
    assert committed, "the kill came before any commit"
    assert any(not app.get_execution(i).is_finished for i in ids), "nothing left to resume"

    second = _worker(db_url, effects, tmp_path / "w2.log")
    try:
        wait_until(
            lambda: all(app.get_execution(i).is_finished for i in ids), 90, what="all runs finished"
        )
    finally:
        second.terminate()
        second.wait(30)
    assert all(app.get_execution(i).status == "completed" for i in ids)
    counts = collections.Counter(tuple(line.split(":")) for line in effects.read_text().split())
    for key in committed:
        assert counts[key] == 1, f"committed step {key} ran {counts[key]} times"
    for i in ids:
        run = app.get_execution(i).input["id"]
        for n in range(1, 6):
            assert (
                1 <= counts[(run, f"s{n}")] <= 2
            )  # at least once; twice only if in flight at the kill
        assert app.get_execution(i).result["done"] == ["s1", "s2", "s3", "s4", "s5"]
    app.close()


def test_sigterm_is_graceful_and_loses_nothing(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    monkeypatch.setenv("DURABLE_STALE_TIMEOUT", "300")  # recovery must not be needed
    app = apps.app()
    effects = tmp_path / "effects.log"
    ids = [app.start(apps.FIVE, {"id": f"g{i}"}) for i in range(3)]
    first = _worker(db_url, effects, tmp_path / "w1.log")
    wait_until(
        lambda: effects.exists() and len(effects.read_text().split()) >= 2, 60, what="steps running"
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    second = _worker(db_url, effects, tmp_path / "w2.log")
    try:
        wait_until(
            lambda: all(app.get_execution(i).is_finished for i in ids), 60, what="runs finished"
        )
    finally:
        second.terminate()
        second.wait(30)
    counts = collections.Counter(effects.read_text().split())
    assert all(app.get_execution(i).status == "completed" for i in ids)
    assert set(counts.values()) == {1}  # a graceful stop reruns nothing
    app.close()
