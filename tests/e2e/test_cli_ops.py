"""`durable migrate --check`, `doctor`, `cleanup`, `graph` and `events` as subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from durable import Durable
from durable.cli import cli
from durable.ids import short_id
from durable.testing import FakeClock
from tests.e2e.cli_app import build
from tests.e2e.cli_support import durable
from tests.e2e.test_cli_runs import run_all


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Change the database behind Durable's back (to make it unhealthy on purpose)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement, params)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("SET search_path TO durable")  # Durable's own schema
            pg.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]


@pytest.fixture
def drive(db_url: str) -> Iterator[Durable]:
    app = build(db_url)
    app.migrate()
    yield app
    app.close()


def test_migrate_check_current_and_outdated(db_url: str) -> None:
    assert durable(db_url, "migrate").code == 0
    current = durable(db_url, "migrate", "--check", "--json")
    assert current.code == 0 and current.json == {"current": True, "pending": []}
    sql(db_url, "DELETE FROM durable_schema_migrations WHERE version = 4")
    sql(db_url, "DROP INDEX executions_finished")
    outdated = durable(db_url, "migrate", "--check", "--json")
    assert outdated.code == 1 and outdated.json == {"current": False, "pending": ["0004_ops"]}
    text = durable(db_url, "migrate", "--check")
    assert text.code == 1 and "0004_ops" in text.out
    applied = durable(db_url, "migrate", "--json")
    assert applied.code == 0 and applied.json == {"applied": ["0004_ops"]}
    assert durable(db_url, "migrate", "--check").code == 0


def test_migrate_check_on_an_empty_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    result = durable(url, "migrate", "--check", "--json")
    assert result.code == 1 and "0001_core" in result.json["pending"]


def test_doctor_finds_and_fixes(db_url: str, drive: Durable) -> None:
    healthy = durable(db_url, "doctor", "--json")
    assert healthy.code == 0, healthy.err
    checks = {c["name"]: c for c in healthy.json["checks"]}
    assert healthy.json["ok"] is True
    assert {"database", "schema", "stale_claims", "unwakeable_runs", "clock_skew"} <= set(checks)
    assert checks["schema"]["status"] == "ok"

    stuck = durable(db_url, "run", "greet", "--json").json["id"]
    stale = durable(db_url, "run", "greet", "--json").json["id"]
    sql(db_url, "UPDATE executions SET status = 'waiting', wake_at = NULL WHERE id = ?", (stuck,))
    sql(
        db_url,
        "UPDATE executions SET status = 'running', lock_token = 't', locked_by = 'gone:1', "
        "heartbeat_at = 1000 WHERE id = ?",
        (stale,),
    )
    sick = durable(db_url, "doctor", "--json")
    assert sick.code == 1
    checks = {c["name"]: c for c in sick.json["checks"]}
    assert [i["id"] for i in checks["unwakeable_runs"]["items"]] == [stuck]
    assert checks["unwakeable_runs"]["status"] == "fail"
    assert [i["id"] for i in checks["stale_claims"]["items"]] == [stale]
    inspected = durable(db_url, "inspect", stuck, "--json").json
    assert any("nothing will wake it" in n for n in inspected["diagnosis"])

    fixed = durable(db_url, "doctor", "--fix", "--json")
    assert fixed.code == 0, fixed.out
    checks = {c["name"]: c for c in fixed.json["checks"]}
    assert checks["unwakeable_runs"]["fixed"] == 1 and checks["stale_claims"]["fixed"] == 1
    run_all(drive)
    assert drive.get_execution(stuck).status.value == "completed"
    assert drive.get_execution(stale).status.value == "completed"
    again = durable(db_url, "doctor", "--json").json
    assert again["ok"] is True


def test_cleanup_by_hand(db_url: str) -> None:
    clock = FakeClock(datetime(2020, 1, 1, tzinfo=UTC))
    old = build(db_url, clock=clock)
    try:
        done = [old.start("greet", "a"), old.start("greet", "b")]
        failed = old.start("explode")
        parent = old.start("parent")
        run_all(old)
        kept_root = old.start("greet", "root")
        run_all(old)
        late = old.engine.execution_row("greet", "late", parent_id=kept_root)
        old.engine.insert([late])  # a finished root with a child still pending
        for run_id in [*done, failed, parent]:
            assert old.get_execution(run_id).is_finished
        children = old.list_children(parent)
        assert len(children) == 1
    finally:
        old.close()

    dry = durable(db_url, "cleanup", "--older-than", "30d", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert dry.json["dry_run"] is True
    assert dry.json["executions"] == 5 and dry.json["skipped_active"] == 1
    assert dry.json["steps"] >= 5
    assert len(durable(db_url, "list", "--json").json["items"]) == 7

    only_failed = durable(db_url, "cleanup", "--older-than", "30d", "-s", "failed", "--json")
    assert only_failed.json["executions"] == 1 and only_failed.json["by_status"] == {"failed": 1}
    gone = durable(db_url, "inspect", failed)
    assert gone.code == 1 and "no execution" in gone.err

    rest = durable(db_url, "cleanup", "--older-than", "30d", "--batch-size", "1", "--json")
    assert rest.json["executions"] == 4 and rest.json["skipped_active"] == 1
    left = {e["id"] for e in durable(db_url, "list", "--json").json["items"]}
    assert left == {kept_root, late["id"]}
    text = durable(db_url, "cleanup", "--older-than", "30d")
    assert text.code == 0 and "deleted 0 runs" in text.out and "kept 1" in text.out


def test_graph_formats(db_url: str) -> None:
    text = durable(db_url, "graph", "parent")
    assert text.code == 0 and "parent_step" in text.out and "starts children" in text.out
    mermaid = durable(db_url, "graph", "greet", "--format", "mermaid").out
    assert mermaid.startswith("flowchart TD") and "n_greet" in mermaid
    dot = durable(db_url, "graph", "greet", "-f", "dot").out
    assert dot.startswith('digraph "greet"') and '"greet" -> "__end__"' in dot
    data = durable(db_url, "graph", "greet", "-f", "json").json
    assert data["workflow"] == "greet" and any(n["id"] == "greet" for n in data["nodes"])


def test_events_subprocess_stops_on_timeout(db_url: str) -> None:
    result = durable(db_url, "events", "--timeout", "0.5", "--json")
    assert result.code == 0 and result.out == ""


def test_events_prints_the_history_then_follows_live_until_the_run_ends(sqlite_url: str) -> None:
    app = build(sqlite_url)
    # CliRunner swaps sys.stdout/sys.stderr from its thread while steps run (and capture
    # their output) in this one: put the process's streams back whatever the interleaving
    streams = (sys.stdout, sys.stderr)
    try:
        run_id = app.start("greet", "live")
        out: dict[str, Any] = {}

        def follow() -> None:
            runner = CliRunner()
            out["result"] = runner.invoke(
                cli, ["events", run_id, "--timeout", "60", "--json"], obj={"app": app}
            )

        thread = threading.Thread(target=follow)
        thread.start()
        from tests.support.procs import wait_until

        topic = app.pubsub.workflow_topic(run_id)
        bus: Any = app.pubsub.server
        wait_until(lambda: bool(bus._subs.get(topic)), 10, what="the subscription")
        run_all(app)
        thread.join(60)
        assert not thread.is_alive(), "events did not exit when the run ended"
        result = out["result"]
        assert result.exit_code == 0, result.output
        kinds = [json.loads(line)["kind"] for line in result.stdout.splitlines()]
        assert kinds == [
            "workflow_started",  # from storage: it was published before the command started
            "workflow_resumed",
            "step_started",
            "step_completed",
            "workflow_completed",
        ]
    finally:
        app.close()
        sys.stdout, sys.stderr = streams


def test_events_of_a_finished_run_prints_its_history_and_exits_at_once(
    db_url: str, drive: Durable
) -> None:
    ok, bad = drive.start("greet", "x"), drive.start("explode", None)
    run_all(drive)
    result = durable(db_url, "events", ok, "--json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["kind"] for e in events] == [
        "workflow_started",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert {e["payload"].get("workflow_id", e["payload"]["id"]) for e in events} == {ok}
    assert events[-1]["payload"]["status"] == "completed"
    failed = durable(db_url, "events", short_id(bad))  # the short id, human output
    assert failed.code == 0, failed.err
    lines = failed.out.splitlines()
    assert lines[0].startswith(f"workflow_started {bad}")
    assert lines[-1].startswith(f"workflow_failed {bad}")
    assert "error=ValueError: boom on purpose" in lines[-1]


def test_events_follows_a_run_finished_by_a_worker_in_another_process(
    db_url: str, drive: Durable
) -> None:
    """The app's bus is in-process, so the command sees the other process's progress
    by reading the database again; it still exits when the run ends."""
    from tests.support.procs import ROOT, wait_until

    run_id = drive.start("listen", None)
    run_all(drive)
    env = {**os.environ, "DURABLE_CLI_TEST_URL": db_url, "NO_COLOR": "1"}
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'tests'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable", "--app", "tests.e2e.cli_app:app", "events", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"workflow_started {run_id}")
        assert proc.poll() is None  # the run waits for "go": the command keeps following
        drive.send_event(run_id, "go", 1)
        run_all(drive)
        wait_until(lambda: proc.poll() is not None, 30, what="events to exit")
        rest = proc.stdout.read()
        assert proc.returncode == 0
        assert rest.splitlines()[-1].startswith(f"workflow_completed {run_id}")
    finally:
        proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
