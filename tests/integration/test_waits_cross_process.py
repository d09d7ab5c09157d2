"""Events and inputs sent from another process than the worker; a worker restart while runs wait."""

from __future__ import annotations

import signal

import pytest

from durable.errors import InputValidationError
from tests.support import apps
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow


def _worker(url, log):
    env = {"DURABLE_TEST_URL": url}
    return spawn(
        ["-m", "durable", "--app", "tests.support.apps:app", "worker", "-q", "default=8"], env, log
    )


def test_events_and_inputs_from_this_process_reach_a_worker_process(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    ids = app.start_many(apps.WAITS, [{"id": f"w{i}"} for i in range(50)])
    early = app.start(apps.WAITS, {"id": "early"})
    app.send_event(early, "go", "sent before the wait")
    worker = _worker(db_url, tmp_path / "w1.log")
    try:
        wait_until(
            lambda: len(app.list_pending_events(limit=500)) == 50,
            60,
            what="50 runs waiting for events",
        )
        for i in ids:
            app.send_event(i, "go", {"for": i})
        wait_until(
            lambda: len(app.list_pending_inputs(limit=500)) == 51,
            60,
            what="51 runs asking for input",
        )
        with pytest.raises(InputValidationError):
            app.provide_input(ids[0], "answer", 42)  # a text input: refused, keeps waiting
        for i in [*ids, early]:
            app.provide_input(i, "answer", f"hi {i[-4:]}")
        wait_until(
            lambda: all(app.get_execution(i).is_finished for i in [*ids, early]),
            60,
            what="all done",
        )
    finally:
        worker.terminate()
        worker.wait(30)
    assert app.get_execution(early).result["payload"] == "sent before the wait"
    for i in ids:
        e = app.get_execution(i)
        assert e.status == "completed" and e.result["payload"] == {"for": i}
        assert e.result["answer"] == f"hi {i[-4:]}"
    app.close()


def test_runs_still_resume_after_the_worker_restarts(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    sleepers = app.start_many(apps.NAP, [{"id": f"n{i}", "nap": 2} for i in range(20)])
    waiters = app.start_many(apps.WAITS, [{"id": f"e{i}"} for i in range(20)])
    first = _worker(db_url, tmp_path / "w1.log")
    wait_until(
        lambda: app.query.status_counts().get("waiting", 0) == 40, 60, what="40 waiting runs"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    for i in waiters:
        app.send_event(i, "go", 1)  # nobody runs now: the events wait in the database
    second = _worker(db_url, tmp_path / "w2.log")
    try:
        wait_until(
            lambda: len(app.list_pending_inputs(limit=100)) == 20, 60, what="events consumed"
        )
        for i in waiters:
            app.provide_input(i, "answer", "ok")
        wait_until(
            lambda: all(app.get_execution(i).is_finished for i in sleepers + waiters),
            60,
            what="resume",
        )
    finally:
        second.terminate()
        second.wait(30)
    assert all(app.get_execution(i).status == "completed" for i in sleepers + waiters)
    app.close()
