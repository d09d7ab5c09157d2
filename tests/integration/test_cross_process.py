"""Several processes on one database: wake-ups and PubSub events cross process lines.

The worker runs in a subprocess (this file, run as a script) with a poll
interval of 120 s, so a run that finishes within the test's bound was woken by
a notification (PostgreSQL LISTEN/NOTIFY or SQLite's data_version), not by
polling.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from durable import Durable, Workflow, step
from durable.wait import wait_for_event
from tests.integration.test_pubsub_backends import redis_url
from tests.support.procs import spawn, wait_until

SLOW_POLL_SECONDS = 120.0


def _first(n: Any) -> dict[str, Any]:
    return {"n": n}


def _await_go(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "got": wait_for_event("go", timeout=600)}


def _last(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "done": True}


XPROC = Workflow("xproc", [step(_first), step(_await_go), step(_last)])


def _pubsub_option(kind: str) -> str | bool:
    return {"none": True, "redis": os.environ.get("DURABLE_TEST_REDIS_URL", "")}.get(kind, kind)


def worker_main(url: str, pubsub: str, ready: str, record: str) -> None:
    """A worker process: signals readiness, records the events it sees, stops on SIGTERM."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # before any thread starts
    app = Durable(
        url, [XPROC], pubsub=_pubsub_option(pubsub), poll_interval_seconds=SLOW_POLL_SECONDS
    )
    local = app.subscribe(app.pubsub.workflows_topic(), buffer=10_000)
    worker = app.worker()
    notifier: Any = app.engine.notifier
    assert notifier.wait_listening(30), "the notifier never started listening"
    worker.start()
    Path(ready).write_text(worker.id)
    signal.sigwait({signal.SIGTERM})
    worker.stop(5)
    with open(record, "w") as out:
        for event in local.drain():
            out.write(json.dumps(event.to_dict()) + "\n")
    app.close()


@pytest.fixture(params=["postgres", "sqlite", "redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(database URL, pubsub) for each cross-process bus."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url")), "postgres"
    if request.param == "redis":
        redis_url()
        return f"sqlite:///{tmp_path}/x.db", "redis"
    return f"sqlite:///{tmp_path}/x.db", "sqlite"


def _start_worker(url: str, pubsub: str, tmp_path: Path) -> tuple[Any, Path]:
    ready, record = tmp_path / "ready", tmp_path / "record.jsonl"
    proc = spawn(
        ["-m", "tests.integration.test_cross_process", url, pubsub, str(ready), str(record)],
        log=tmp_path / "worker.log",
    )
    wait_until(lambda: ready.exists() or proc.poll() is not None, 60, what="the worker to listen")
    assert proc.poll() is None, (tmp_path / "worker.log").read_text()
    return proc, record


class Collector:
    """Accumulates what a subscription received."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub
        self.events: list[Any] = []

    def kinds(self, run_id: str) -> list[str]:
        self.events.extend(self.sub.drain())
        return [
            e.kind
            for e in self.events
            if e.payload.get("id", e.payload.get("workflow_id")) == run_id
            or e.topic.endswith(run_id)
        ]


def test_runs_events_and_pubsub_cross_processes(setup: tuple[str, str], tmp_path: Path) -> None:
    url, pubsub = setup
    app = Durable(url, [XPROC], pubsub=_pubsub_option(pubsub))
    app.migrate()
    proc, record = _start_worker(url, pubsub, tmp_path)
    try:
        everything = Collector(app.subscribe(app.pubsub.workflows_topic(), buffer=10_000))
        run_id = app.start(XPROC, 7)
        mine = Collector(app.subscribe(app.pubsub.workflow_topic(run_id), buffer=10_000))
        # the start notification wakes the worker (it polls every 120 s): the run waits
        wait_until(lambda: "workflow_waiting" in mine.kinds(run_id), 30, what="the wait")
        assert app.send_event(run_id, "go", {"from": "test"}) is True
        # the event's notification wakes it again: it completes
        wait_until(lambda: "workflow_completed" in everything.kinds(run_id), 30, what="completion")
        execution = app.get_execution(run_id)
        assert execution.status.value == "completed"
        assert execution.result == {"n": 7, "got": {"from": "test"}, "done": True}
        assert everything.kinds(run_id) == [
            "workflow_started",  # published here
            "workflow_resumed",  # the rest by the worker process
            "workflow_waiting",
            "workflow_resumed",
            "workflow_completed",
        ]
        wait_until(lambda: mine.kinds(run_id)[-1] == "workflow_completed", 30, what="tail")
        kinds = mine.kinds(run_id)
        assert kinds[kinds.index("workflow_waiting") - 1 :] == [
            "step_waiting",
            "workflow_waiting",
            "workflow_resumed",
            "step_started",
            "step_completed",
            "step_started",
            "step_completed",
            "workflow_completed",
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "worker.log").read_text()
    # the worker saw the same event values (its own locally, ours through the backend)
    theirs = [json.loads(line) for line in record.read_text().splitlines()]
    ours = [e.to_dict() for e in everything.events]
    assert sorted(map(json.dumps, theirs)) == sorted(map(json.dumps, ours))
    app.close()


if __name__ == "__main__":
    worker_main(*sys.argv[1:5])
