"""Production estate: services sharing one database, rolling deploys, runs nobody knows."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from durable import Durable
from tests.support import estate_apps
from tests.support.procs import ROOT, spawn, wait_until

pytestmark = pytest.mark.slow


@contextmanager
def workers(
    url: str, tmp_path: Path, *specs: str, env: dict[str, str] | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One `durable worker` process per app spec (tests.support.estate_apps:<spec>)."""
    procs = [
        spawn(
            ["-m", "durable", "worker", "--app", f"tests.support.estate_apps:{spec}"],
            {"DURABLE_TEST_URL": url, **(env or {})},
            tmp_path / f"{spec}-{i}.log",
        )
        for i, spec in enumerate(specs)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def _all_finished(app: Durable, n: int) -> bool:
    counts = app.query.status_counts()
    return sum(counts.get(s, 0) for s in ("completed", "failed")) >= n


def test_two_services_on_one_database_each_run_their_own(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    shop, billing = estate_apps.shop, estate_apps.billing
    shop.migrate()
    with workers(db_url, tmp_path, "shop", "billing"):
        orders = shop.start_many("order", list(range(20)))
        refunds = shop.start_many("refund", list(range(5)))
        invoices = billing.start_many("invoice", list(range(20)))
        payouts = billing.start_many("payout", list(range(5)))
        wait_until(lambda: _all_finished(shop, 50), 90, interval=0.2, what="50 finished runs")
    for ids, who in ((orders + refunds, "shop"), (invoices + payouts, "billing")):
        for run_id in ids:
            e = shop.get_execution(run_id)
            assert e.status == "completed", (e.workflow_name, e.error)
            assert e.result["ran_by"] == who
    assert shop.query.status_counts().get("failed", 0) == 0
    shop.close()
    billing.close()


def test_rolling_deploy_v1_and_v2_workers_side_by_side(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    v1, v2 = estate_apps.v1, estate_apps.v2
    v1.migrate()
    with workers(db_url, tmp_path, "v1", "v2"):
        old = v1.start_many("deploy", list(range(15)))
        new = v2.start_many("deploy", list(range(15)))
        wait_until(lambda: _all_finished(v1, 30), 90, interval=0.2, what="30 finished runs")
    for ids, version in ((old, "1"), (new, "2")):
        for run_id in ids:
            e = v1.get_execution(run_id)
            assert e.status == "completed" and e.workflow_version == version
            assert e.result["ran_by"] == f"v{version}"
    v1.close()
    v2.close()


def test_a_run_no_worker_knows_stays_pending(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    shop, billing = estate_apps.shop, estate_apps.billing
    shop.migrate()
    with workers(db_url, tmp_path, "shop"):
        invoice = billing.start("invoice", 1)
        order = shop.start("order", 1)
        wait_until(lambda: shop.get_execution(order).is_finished, 60, what="the order")
        e = billing.get_execution(invoice)
        assert e.status == "pending" and e.attempt == 0 and e.error is None
        wait_until(lambda: len(shop.query.workers()) == 1, 30, what="the worker's heartbeat")
        # named, with how long, by status, doctor and the dashboard
        status = _cli(db_url, "status", "--json")
        (unserved,) = status["waiting_for_worker"]
        assert unserved["workflow"] == "invoice" and unserved["runs"] == 1
        assert "no live worker has the code of invoice" in unserved["reason"]
        assert unserved["waiting_seconds"] >= 0
        doctor = _cli(db_url, "doctor", "--json", code=1)
        (queues,) = [c for c in doctor["checks"] if c["name"] == "queues"]
        assert queues["status"] == "warn" and "1 run(s) of invoice" in queues["message"]
        from starlette.testclient import TestClient

        from durable.dashboard import create_app

        page = TestClient(create_app(shop), base_url="http://localhost").get("/").text
        assert 'data-unserved="invoice"' in page and "no live worker has the code" in page
        assert billing.get_execution(invoice).status == "pending"  # still never failed
    shop.close()
    billing.close()


def _cli(url: str, *args: str, code: int = 0) -> dict:
    import json
    import os
    import sys

    env = {**os.environ, "DURABLE_TEST_URL": url}
    proc = subprocess.run(
        [sys.executable, "-m", "durable", *args, "--app", "tests.support.estate_apps:shop"],
        env={**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )
    assert proc.returncode in (0, code), proc.stderr
    return json.loads(proc.stdout)


_RACER = """
import os, sys, time
from tests.support import estate_apps
app = getattr(estate_apps, sys.argv[1])
app.migrate()
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.005)
run_id = app.start("order", {"id": "o-1"}, id="order-o-1")
print(run_id, flush=True)
app.close()
"""


@pytest.mark.parametrize("who", ["shop", "client"])
def test_eight_processes_racing_a_keyed_start_make_one_run(db_url, tmp_path, monkeypatch, who):
    """Eight processes (services with the code, or clients without it) start the same
    id at the same moment: one run, and every caller gets its id."""
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    go = tmp_path / "go"
    logs = [tmp_path / f"racer{i}.log" for i in range(8)]
    procs = [spawn(["-c", _RACER, who, str(go)], {"DURABLE_TEST_URL": db_url}, log) for log in logs]
    ready = estate_apps.shop
    ready.migrate()
    go.touch()
    for p in procs:
        assert p.wait(60) == 0
    answers = [log.read_text().split() for log in logs]
    assert answers == [["order-o-1"]] * 8, answers
    runs = ready.list_executions(limit=100).items
    assert [r.id for r in runs] == ["order-o-1"]
    ready.close()


def test_a_client_process_without_the_code_starts_runs_by_name(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    client = estate_apps.client  # no workflows registered
    client.migrate()
    with workers(db_url, tmp_path, "shop", "billing"):
        order = client.start("order", {"n": 1}, id="order-1")
        invoice = client.start("invoice", {"n": 2})
        payout = client.start("payout", {"n": 3}, queue="payouts")
        for run_id in (order, invoice, payout):
            done = client.wait_for_completion(run_id, timeout=60)
            assert done.status == "completed"
        assert client.get_execution(order).result["ran_by"] == "shop"
        assert client.get_execution(payout).result["ran_by"] == "billing"
    client.close()


def test_cancel_with_compensation_after_a_charged_step(db_url):
    from durable.testing import TestApp
    from tests.unit.test_cancel_compensate import ORDER, cancel_and_compensate

    with TestApp([ORDER], url=db_url) as t:
        cancel_and_compensate(t)


def test_dashboard_cancel_with_the_compensate_option(db_url):
    import re

    from starlette.testclient import TestClient

    from durable.dashboard import create_app
    from durable.testing import TestApp
    from tests.unit.test_cancel_compensate import ORDER, ledger

    with TestApp([ORDER], url=db_url) as t:
        ledger.clear()
        run_id = t.app.start(ORDER, {"id": "o-9"})
        t.run_until_idle()
        c = TestClient(create_app(t.app), base_url="http://localhost")
        page = c.get(f"/executions/{run_id}").text
        assert 'name="compensate"' in page
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page)
        assert csrf is not None
        data = {"csrf_token": csrf.group(1), "compensate": "1", "reason": "duplicate"}
        assert c.post(f"/executions/{run_id}/cancel", data=data).status_code == 200
        assert t.app.get_execution(run_id).status == "compensating"
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "compensated"
        assert ledger[-2:] == ["refunded", "released"]
