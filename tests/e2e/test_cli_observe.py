"""`durable logs`, short ids and `durable worker --log-format json`, as subprocesses."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import Durable
from durable.ids import short_id
from tests.e2e.cli_app import build
from tests.e2e.cli_support import durable
from tests.e2e.test_cli_runs import run_all
from tests.support.procs import spawn, wait_until


@pytest.fixture
def drive(sqlite_url: str) -> Iterator[Durable]:
    app = build(sqlite_url)
    app.migrate()
    yield app
    app.close()


def test_logs_and_short_ids(sqlite_url: str, drive: Durable) -> None:
    run_id = drive.start("greet", "ada")
    other = drive.start("greet", "bob")
    run_all(drive)
    short = short_id(run_id)

    listed = durable(sqlite_url, "list")
    assert listed.code == 0, listed.err
    assert short in listed.out and short_id(other) in listed.out
    assert run_id not in listed.out  # the table shows the short form

    shown = durable(sqlite_url, "inspect", short, "--json")
    assert shown.code == 0, shown.err
    assert shown.json["execution"]["id"] == run_id

    logs = durable(sqlite_url, "logs", short)
    assert logs.code == 0, logs.err
    lines = logs.out.splitlines()
    assert len(lines) == 2
    assert "greet#1" in lines[0] and lines[0].endswith("greeting ada")
    assert "INFO" in lines[1] and lines[1].endswith("greeted ada")
    as_json = durable(sqlite_url, "logs", run_id, "--step", "greet", "--json")
    entries = [json.loads(line) for line in as_json.out.splitlines()]
    assert [(e["step_name"], e["attempt"], e["message"]) for e in entries] == [
        ("greet", 1, "greeting ada"),
        ("greet", 1, "greeted ada"),
    ]
    none = durable(sqlite_url, "logs", run_id, "--step", "nope")
    assert none.code == 0 and none.out == "" and "no step 'nope'" in none.err
    # a finished run: --follow prints and exits at once
    followed = durable(sqlite_url, "logs", short, "--follow", timeout=30)
    assert followed.code == 0 and followed.out == logs.out


def test_worker_logs_failures_as_json(sqlite_url: str, drive: Durable, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = spawn(
        ["-m", "durable", "--app", "tests.e2e.cli_app:app", "worker", "--log-format", "json"],
        env={"DURABLE_CLI_TEST_URL": sqlite_url},
        log=log,
    )
    try:
        run_id = drive.start("explode", None)
        wait_until(lambda: drive.get_execution(run_id).is_finished, 60, what="the run to fail")

        def records() -> list[dict[str, object]]:
            return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

        wait_until(lambda: any(r["level"] == "ERROR" for r in records()), 30, what="the ERROR")
    finally:
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: worker.poll() is not None, 30, what="the worker to stop")
    got = records()  # every line is JSON
    [warning] = [r for r in got if r["level"] == "WARNING"]
    assert warning["execution_id"] == run_id and warning["step_name"] == "explode"
    assert warning["error_type"] == "ValueError" and warning["attempt"] == 1
    [error] = [r for r in got if r["level"] == "ERROR"]
    assert error["status"] == "failed" and error["execution_id"] == run_id
    assert error["logger"] == "durable.executor" and "boom on purpose" in str(error["message"])


def test_schedules_list_labels_times_and_prints_json(sqlite_url: str, drive: Durable) -> None:
    made = durable(
        sqlite_url,
        "schedules",
        "create",
        "paris",
        "greet",
        "--every",
        "5m",
        "--tz",
        "Europe/Paris",
        "--input",
        '{"who": "ada"}',
        "--json",
    )
    assert made.code == 0, made.err
    assert made.json["every_seconds"] == 300 and isinstance(made.json["every_seconds"], int)
    listed = durable(sqlite_url, "schedules", "list")
    assert listed.code == 0, listed.err
    assert "CET" in listed.out or "CEST" in listed.out  # the zone is named beside the time
    shown = durable(sqlite_url, "schedules", "show", "paris")
    assert '{"who": "ada"}' in shown.out  # JSON, not a Python repr
    assert "{'who'" not in shown.out


def test_the_demo_ends_with_commands_that_open_its_database(tmp_path: Path) -> None:
    import os
    import shlex
    import subprocess
    import sys

    from tests.support.procs import ROOT

    url = f"sqlite:///{tmp_path}/demo.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("DURABLE_APP", None)
    demo = subprocess.run(
        [sys.executable, "-m", "durable", "demo", "--db", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    assert "Next steps" in demo.stdout
    hints = [line.strip() for line in demo.stdout.splitlines() if "durable.demo:demo_app" in line]
    assert len(hints) == 3
    for hint in hints[:2]:  # list and inspect, run exactly as printed (minus the comment)
        words = shlex.split(hint.split("#")[0])
        assign, command = words[0], words[1:]
        name, _, value = assign.partition("=")
        assert name == "DURABLE_DEMO_DB" and command[0] == "durable"
        done = subprocess.run(
            [sys.executable, "-m", "durable", *command[1:]],
            env={**env, name: value},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "process_order" in done.stdout


def test_cleanup_refuses_an_age_under_an_hour_without_yes(sqlite_url: str, drive: Durable) -> None:
    refused = durable(sqlite_url, "cleanup", "--older-than", "1m")
    assert refused.code == 2 and "minutes, not months" in refused.err
    assert durable(sqlite_url, "cleanup", "--older-than", "1m", "--dry-run").code == 0
    assert durable(sqlite_url, "cleanup", "--older-than", "1m", "--yes").code == 0
    assert durable(sqlite_url, "cleanup", "--older-than", "2h").code == 0
