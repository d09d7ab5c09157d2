"""PostgreSQL faults under load: connections killed over and over, the server stopped
and started. After each, every invariant of DESIGN.md holds (see tests/support/faults.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from durable import Durable
from durable.errors import StorageError
from tests.support.faults import ConnectionKiller, PrivateCluster, completed, run_under
from tests.support.procs import wait_until

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_connections_killed_over_and_over_lose_and_repeat_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    admin, database = pg_url.rsplit("/", 1)
    killer = ConnectionKiller(f"{admin}/postgres", database, every_seconds=0.2)

    def fault(app: Durable) -> None:
        with killer:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and killer.kills < 40:
                time.sleep(0.2)

    report = run_under(pg_url, tmp_path, 300, fault)
    assert killer.kills >= 10  # the fault really happened, many times
    print("killed connections:", killer.kills, report)


@pytest.mark.timeout(300)
def test_a_postgres_server_stopped_and_started_under_load(tmp_path: Path) -> None:
    cluster = PrivateCluster().init()
    try:

        def fault(app: Durable) -> None:
            wait_until(lambda: completed(app) > 0, 60, 0.05, "the first completion")
            cluster.stop()
            time.sleep(4)  # the server is away for longer than the stale timeout
            cluster.start()

        report = run_under(cluster.url, tmp_path, 300, fault)
        print("server stop/start:", report)
    finally:
        cluster.destroy()


def test_a_missing_database_is_named_at_once(pg_url: str) -> None:
    # PostgreSQL's own words on first use (not a pool timeout's "couldn't get a
    # connection" after waiting it out)
    missing = pg_url.rsplit("/", 1)[0] + "/durable_no_such_database"
    app = Durable(missing, auto_migrate=False)
    try:
        with pytest.raises(StorageError, match='"durable_no_such_database" does not exist'):
            app.list_executions()
    finally:
        app.close()
