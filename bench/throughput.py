"""Throughput of 3-step no-op workflows with one worker process.

Run by hand (not a test):

    .venv/bin/python bench/throughput.py --db sqlite --n 5000
    .venv/bin/python bench/throughput.py --db postgres --n 5000

It starts a worker process, then starts N workflows from this process in
batches (``start_many``), waits until all completed, and prints workflows/s,
per-step overhead and p50/p99 latency from ``start`` to completion (stored
created_at -> completed_at). Settings used are printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database_url  # noqa: E402
from durable import Durable, Workflow, step  # noqa: E402


def one(x: int) -> int:
    return x


def two(x: int) -> int:
    return x


def three(x: int) -> int:
    return x


THREE = Workflow("three_steps", [step(one), step(two), step(three)])


def make_app() -> Durable:
    """The app the worker process loads (``--app bench.throughput:make_app``)."""
    return Durable(os.environ["BENCH_DB_URL"], workflows=[THREE], name="bench", pubsub=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    url = fresh_database_url(args.db, "durable_bench")
    os.environ["BENCH_DB_URL"] = url
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = make_app()
    app.migrate()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durable",
                "--app",
                "bench.throughput:make_app",
                "worker",
                "-q",
                f"default={args.concurrency}",
                "--log-level",
                "WARNING",
            ],
            env=env,
        )
        for _ in range(args.workers)
    ]
    time.sleep(1.0)  # let the worker start and register
    t0 = time.perf_counter()
    started = 0
    while started < args.n:
        size = min(args.batch, args.n - started)
        app.start_many(THREE, list(range(started, started + size)))
        started += size
    t_started = time.perf_counter()
    while True:
        counts = app.query.status_counts()
        if counts.get("completed", 0) >= args.n:
            break
        time.sleep(0.02)
    t1 = time.perf_counter()
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)
    rows = app.list_executions(limit=1)
    lat = []
    cursor = None
    while True:
        page = app.list_executions(status="completed", limit=1000, cursor=cursor)
        lat += [(e.completed_at - e.created_at).total_seconds() * 1000 for e in page.items]  # type: ignore[operator]
        cursor = page.next_cursor
        if cursor is None:
            break
    del rows
    app.close()
    elapsed = t1 - t0
    lat.sort()
    print(
        f"backend={args.db} n={args.n} steps/workflow=3 worker_processes={args.workers} "
        f"concurrency={args.concurrency} start_batch={args.batch} pubsub=in-process"
    )
    print(f"  all started after {t_started - t0:.2f}s; all completed after {elapsed:.2f}s")
    print(
        f"  throughput: {args.n / elapsed:,.0f} workflows/s ({3 * args.n / elapsed:,.0f} steps/s)"
    )
    print(f"  per-step overhead: {elapsed / (3 * args.n) * 1e6:,.0f} us (wall time / steps)")
    print(
        f"  latency start->completed: p50 {statistics.median(lat):.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
