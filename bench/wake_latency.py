"""Wake latency: send_event in one process to the waiting step resuming in another.

Run by hand:

    .venv/bin/python bench/wake_latency.py --db postgres --n 100
    .venv/bin/python bench/wake_latency.py --db sqlite --n 100

A worker process polls only every 60 s, so what is measured is the
notification path (PostgreSQL LISTEN/NOTIFY, SQLite's data_version poller).
For each of N runs, one after the other: start it, wait until it waits for
its event, stamp ``time.time_ns()``, ``send_event``; the resumed step records
its own ``time.time_ns()`` in its result. Printed: p50, p99 and max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from durable import Durable, Workflow, step  # noqa: E402
from durable.wait import wait_for_event  # noqa: E402

PG = os.environ.get("DURABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def wait(n: int) -> dict[str, Any]:
    wait_for_event("go")
    return {"resumed_ns": time.time_ns()}


WF = Workflow("wake", [step(wait)])


def worker(url: str) -> None:
    Durable(url, [WF], pubsub=False, poll_interval_seconds=60).run_worker({"default": 4})


def _url(db: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'wake.db')}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "durable_bench_wake" WITH (FORCE)')
        conn.execute('CREATE DATABASE "durable_bench_wake"')
    return PG.rsplit("/", 1)[0] + "/durable_bench_wake"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="postgres", choices=["postgres", "sqlite"])
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    url = _url(args.db)
    app = Durable(url, [WF], pubsub=False)
    app.migrate()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", url])
    latencies = []
    try:
        for i in range(args.n):
            run_id = app.start(WF, i)
            while app.get_execution(run_id).status.value != "waiting":
                time.sleep(0.002)
            sent = time.time_ns()
            app.send_event(run_id, "go")
            while not app.get_execution(run_id).is_finished:
                time.sleep(0.001)
            latencies.append((app.get_execution(run_id).result["resumed_ns"] - sent) / 1e6)
    finally:
        proc.terminate()
        proc.wait()
        app.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{args.db}: {len(latencies)} wake-ups, p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, "
        f"max {latencies[-1]:.2f} ms (worker polls every 60 s)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
