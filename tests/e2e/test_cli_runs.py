"""`durable` commands on runs, as real subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from durable import Durable
from tests.e2e.cli_app import build
from tests.e2e.cli_support import durable
from tests.support.procs import spawn, wait_until


@pytest.fixture
def drive(db_url: str) -> Iterator[Durable]:
    app = build(db_url)
    app.migrate()
    yield app
    app.close()


def run_all(app: Durable) -> None:
    worker = app.worker()
    try:
        while worker.run_once():
            pass
    finally:
        worker.stop(grace_seconds=0)


def test_run_list_status_inspect(db_url: str, drive: Durable) -> None:
    started = durable(db_url, "run", "greet", "--input", '"ada"', "--json")
    assert started.code == 0, started.err
    run_id = started.json["id"]
    listed = durable(db_url, "list", "--json").json
    assert [e["id"] for e in listed["items"]] == [run_id]
    assert listed["items"][0]["status"] == "pending"
    assert listed["next_cursor"] is None
    status = durable(db_url, "status", "--json").json
    assert status["queues"]["default"]["pending"] == 1
    assert status["statuses"]["pending"] == 1
    assert status["workers"] == []

    run_all(drive)
    shown = durable(db_url, "inspect", run_id[:20], "--json")
    assert shown.code == 0, shown.err
    data = shown.json
    assert data["execution"]["status"] == "completed"
    assert data["execution"]["result"] == "hello ada"
    [greet] = data["steps"]
    assert greet["step_name"] == "greet" and greet["status"] == "completed"
    assert [(e["source"], e["message"]) for e in greet["logs"]] == [
        ("stdout", "greeting ada"),
        ("logging", "greeted ada"),
    ]
    assert data["diagnosis"] == [] and data["children"] == [] and data["parent"] is None
    text = durable(db_url, "inspect", run_id)
    assert text.code == 0 and "greeting ada" in text.out and "completed" in text.out

    for _ in range(2):
        durable(db_url, "run", "greet", "-i", '"x"')
    first = durable(db_url, "list", "-n", "2", "--json").json
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = durable(db_url, "list", "-n", "2", "--cursor", first["next_cursor"], "--json").json
    assert [e["id"] for e in rest["items"]] == [run_id]
    done = durable(db_url, "list", "--status", "completed", "--workflow", "greet", "--json").json
    assert [e["id"] for e in done["items"]] == [run_id]
    since = durable(db_url, "list", "--since", "1h", "--json").json
    assert len(since["items"]) == 3


def test_failure_retry_cancel(db_url: str, drive: Durable) -> None:
    run_id = durable(db_url, "run", "explode", "--json").json["id"]
    run_all(drive)
    data = durable(db_url, "inspect", run_id, "--json").json
    assert data["execution"]["status"] == "failed"
    assert data["execution"]["error"]["type"] == "ValueError"
    assert "boom on purpose" in data["execution"]["error"]["message"]
    assert data["steps"][0]["error"]["type"] == "ValueError"
    assert any("retry" in note for note in data["diagnosis"])
    text = durable(db_url, "inspect", run_id).out
    assert "Traceback" in text or "traceback" in text.lower() or "boom on purpose" in text

    retried = durable(db_url, "retry", run_id, "--json")
    assert retried.code == 0 and retried.json["status"] == "pending"
    again = durable(db_url, "retry", run_id)
    assert again.code == 1 and again.err.count("\n") == 1 and "only failed" in again.err
    cancelled = durable(db_url, "cancel", run_id, "--json")
    assert cancelled.code == 0 and cancelled.json["status"] == "cancelled"
    twice = durable(db_url, "cancel", run_id)
    assert twice.code == 1 and "nothing to cancel" in twice.err


def test_inputs_and_events(db_url: str, drive: Durable) -> None:
    choose = durable(db_url, "run", "choose", "--json").json["id"]
    listen = durable(db_url, "run", "listen", "--json").json["id"]
    run_all(drive)
    waiting = durable(db_url, "pending", "--json").json
    [size] = waiting["inputs"]
    assert size["execution_id"] == choose and size["input_name"] == "size"
    assert size["input_type"] == "choice" and size["prompt"] == "Which size?"
    [go] = waiting["events"]
    assert go["execution_id"] == listen and go["event_name"] == "go"
    assert durable(db_url, "pending", "--expiring-in", "1h", "--json").json == {
        "inputs": [],
        "events": [],
    }

    bad = durable(db_url, "provide-input", choose, "size", "medium")
    assert bad.code == 1 and "rejected" in bad.err and bad.err.count("\n") == 1
    assert durable(db_url, "inspect", choose, "--json").json["execution"]["status"] == "waiting"
    ok = durable(db_url, "provide-input", choose, "size", "large", "--json")
    assert ok.code == 0 and ok.json == {"id": choose, "input_name": "size", "provided": True}
    sent = durable(db_url, "send-event", listen, "go", "--payload", '{"n": 1}', "--json")
    assert sent.code == 0 and sent.json == {"id": listen, "event_name": "go", "delivered": True}
    run_all(drive)
    assert drive.get_execution(choose).result == {"size": "large"}
    assert drive.get_execution(listen).result == {"got": {"n": 1}}


def test_bad_input_is_one_line_and_changes_nothing(db_url: str, drive: Durable) -> None:
    a = durable(db_url, "run", "greet", "--json").json["id"]
    b = durable(db_url, "run", "greet", "--json").json["id"]
    common = next(i for i in range(len(a)) if a[i] != b[i])
    cases = [
        (("inspect", "ffffffff-0000"), 1, "no execution id starts with"),
        (("cancel", a[:common]), 1, "ambiguous"),
        (("run", "greet", "--input", '{"a": }'), 2, "line 1 column 7"),
        (("run", "nope"), 1, "unknown workflow 'nope'"),
        (("cleanup", "--older-than", "soon"), 2, "not a duration"),
        (("list", "--since", "yesterday-ish"), 2, "neither an ISO 8601 time"),
        (("send-event", a, "go", "--payload", "{"), 2, "not valid JSON"),
        (("graph", "nope"), 1, "unknown workflow"),
    ]
    for args, code, message in cases:
        result = durable(db_url, *args)
        assert result.code == code, (args, result.err)
        assert message in result.err, (args, result.err)
        assert "Traceback" not in result.err
        if code == 1:
            assert result.err.count("\n") == 1, result.err
    ambiguous = durable(db_url, "cancel", a[:common]).err
    assert a in ambiguous and b in ambiguous
    assert len(durable(db_url, "list", "--status", "pending", "--json").json["items"]) == 2
    no_app = durable(db_url, "list", app=None)
    assert no_app.code == 2 and "DURABLE_APP" in no_app.err


def test_unreachable_database(tmp_path: object) -> None:
    for url in ("postgresql://nobody@127.0.0.1:1/none", f"sqlite:///{tmp_path}/missing/x.db"):
        result = durable(url, "list")
        assert result.code == 1, result.err
        assert result.err.startswith("error: ") and result.err.count("\n") == 1
        assert "Traceback" not in result.err


def test_run_wait_follows_a_worker_process(db_url: str, tmp_path: object) -> None:
    worker = spawn(
        ["-m", "durable", "--app", "tests.e2e.cli_app:app", "worker", "-c", "2"],
        env={"DURABLE_CLI_TEST_URL": db_url},
    )
    try:
        done = durable(db_url, "run", "parent", "--wait", "--timeout", "40", "--json")
        assert done.code == 0, done.err
        assert done.json["status"] == "completed"
        assert done.json["result"] == {"child": "hello kid"}
        failed = durable(db_url, "run", "explode", "--wait", "--timeout", "40")
        assert failed.code == 1
        assert failed.out.startswith("failed:") and "boom on purpose" in failed.err
        status = durable(db_url, "status", "--json").json
        [live] = status["workers"]
        assert live["pid"] == worker.pid and live["heartbeat_age_seconds"] < 60
        assert status["queues"]["default"]["concurrency"] == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: worker.poll() is not None, 30, what="the worker to stop")
