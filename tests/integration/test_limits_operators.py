"""What operators see of queue limits: `durable status --json`, `inspect`, `doctor`
(CLI subprocesses) and the dashboard's Workers & queues page, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from durable import Durable
from durable.dashboard import create_app
from durable.ids import new_token
from tests.e2e.cli_support import durable
from tests.support import limit_apps

APP = "tests.support.limit_apps:app"


@pytest.fixture
def app(db_url: str, tmp_path, monkeypatch) -> Iterator[Durable]:
    monkeypatch.setenv("DURABLE_STALE_TIMEOUT", "60")  # the hand-made worker rows stay live
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    monkeypatch.setenv("DURABLE_TEST_LIMITS", json.dumps({"concurrency": 1}))
    monkeypatch.setenv("DURABLE_SPANS", str(tmp_path / "spans.log"))
    app = limit_apps.app()
    app.migrate()
    yield app
    app.close()


def _beat(app: Durable, worker_id: str, limited: dict) -> None:
    row = {
        "id": worker_id,
        "hostname": "h",
        "pid": os.getpid(),
        "queues": json.dumps({"limited": 1}),
        "limits": json.dumps({"limited": limited}),
        "running": 0,
    }
    app.storage.heartbeat(row, app.clock.now_ms(), [])


def test_status_inspect_doctor_and_dashboard_show_the_limits(app: Durable) -> None:
    ids = app.start_many(limit_apps.LIMITED, [{"n": i} for i in range(3)])
    mover = app.worker({"default": 3})  # runs the first step: every run moves to "limited"
    assert mover.run_once() == 3
    assert {app.get_execution(i).queue for i in ids} == {"limited"}
    limits = app.engine.limits["limited"]
    held = app.storage.claim(
        "limited", 5, "w-busy", new_token(), app.clock.now_ms(), app.engine.known(), limits
    )
    assert len(held) == 1  # a worker holds the one slot
    _beat(app, "w-same", {"concurrency": 1})

    status = durable(app.url, "status", "--json", app=APP)
    assert status.code == 0, status.err
    view = status.json["queues"]["limited"]["limits"]
    assert view["limits"] == {"concurrency": 1}
    assert view["in_use"] == 1 and view["ready"] == 2 and view["tokens"] is None
    assert view["held_back"] == {"per_key": 0, "concurrency": 2, "rate": 0}
    assert view["mismatch"] is None

    waiting = next(i for i in ids if i != held[0]["id"])
    inspect = durable(app.url, "inspect", waiting, "--json", app=APP)
    assert inspect.code == 0, inspect.err
    assert any(
        "held back by the concurrency limit of queue 'limited': 1 of 1 slots" in note
        for note in inspect.json["diagnosis"]
    ), inspect.json["diagnosis"]

    _beat(app, "w-odd", {"concurrency": 5})
    status = durable(app.url, "status", "--json", app=APP)
    mismatch = status.json["queues"]["limited"]["limits"]["mismatch"]
    assert sorted(w for c in mismatch for w in c["workers"]) == ["w-odd", "w-same"]
    doctor = durable(app.url, "doctor", "--json", app=APP)
    checks = {c["name"]: c for c in doctor.json["checks"]}
    assert checks["limits"]["status"] == "warn" and "limited" in checks["limits"]["message"]

    page = TestClient(create_app(app), base_url="http://localhost").get("/workers").text
    assert "Queue limits" in page and "1 / 1" in page and "2 by concurrency" in page
    assert "workers disagree" in page
    mover.stop(grace_seconds=0)
