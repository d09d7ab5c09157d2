"""Several worker processes on one database: 500 workflows, each completes exactly once."""

from __future__ import annotations

import collections

import pytest

from tests.support import apps
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow


def test_three_worker_processes_share_500_runs(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_TEST_URL", db_url)
    app = apps.app()
    effects = tmp_path / "effects.log"
    env = {"DURABLE_TEST_URL": db_url, "DURABLE_SIDE_EFFECTS": str(effects)}
    workers = [
        spawn(
            ["-m", "durable", "--app", "tests.support.apps:app", "worker", "-q", "default=4"],
            env,
            tmp_path / f"w{i}.log",
        )
        for i in range(3)
    ]
    try:
        ids = app.start_many(apps.THREE, [{"id": f"m{i}"} for i in range(500)])

        def done() -> bool:
            return app.query.status_counts().get("completed", 0) == 500

        wait_until(done, 120, interval=0.25, what="500 completed runs")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
    counts = collections.Counter(effects.read_text().split())
    assert len(counts) == 1500 and set(counts.values()) == {1}
    owners = {s.step_name for i in ids[:5] for s in app.list_steps(i)}
    assert owners == {"s1", "s2", "s3"}
    claims = [app.get_execution(i).attempt for i in ids]
    assert max(claims) == 1  # every run was claimed once, by one worker
    app.close()
