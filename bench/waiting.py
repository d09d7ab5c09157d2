"""10,000 workflows asleep or waiting: worker memory and CPU stay flat; all resume.

Run by hand:

    .venv/bin/python bench/waiting.py --db sqlite --n 10000
    .venv/bin/python bench/waiting.py --db postgres --n 10000

A worker process is started; N workflows are started, half sleeping one hour,
half waiting for an event. Reported: the worker's RSS before and after the
runs were parked, its CPU time over 10 idle seconds, then the time for every
run to resume once the events are sent and the clock of the sleepers is due
(the sleepers use a short sleep so the bench ends).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database_url  # noqa: E402
from durable import Durable, Workflow, step  # noqa: E402
from durable.wait import sleep, wait_for_event  # noqa: E402


def nap(ctx: dict) -> dict:
    sleep(ctx["nap"])
    return ctx


def wait(ctx: dict) -> dict:
    return {**ctx, "event": wait_for_event("go")}


NAP = Workflow("bench_nap", [step(nap)])
WAIT = Workflow("bench_wait", [step(wait)])


def make_app() -> Durable:
    return Durable(os.environ["BENCH_DB_URL"], workflows=[NAP, WAIT], name="bench")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=10000)
    args = parser.parse_args()
    url = fresh_database_url(args.db, "durable_bench_wait")
    os.environ["BENCH_DB_URL"] = url
    app = make_app()
    app.migrate()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable",
            "--app",
            "bench.waiting:make_app",
            "worker",
            "-q",
            "default=16",
            "--log-level",
            "WARNING",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    time.sleep(2)
    rss_before = rss_mb(worker.pid)
    half = args.n // 2
    nap_s = 30.0
    t0 = time.perf_counter()
    app.start_many(NAP, [{"nap": nap_s} for _ in range(half)])
    waiters = []
    for i in range(0, args.n - half, 500):
        waiters += app.start_many(WAIT, [{"i": j} for j in range(i, min(i + 500, args.n - half))])
    while app.query.status_counts().get("waiting", 0) < args.n:
        time.sleep(0.2)
    parked = time.perf_counter() - t0
    rss_parked = rss_mb(worker.pid)
    cpu0 = cpu_seconds(worker.pid)
    time.sleep(10)
    idle_cpu = (cpu_seconds(worker.pid) - cpu0) / 10
    t1 = time.perf_counter()
    for run_id in waiters:
        app.send_event(run_id, "go", 1)
    while app.query.status_counts().get("completed", 0) < args.n:
        time.sleep(0.2)
    resumed = time.perf_counter() - t1
    rss_after = rss_mb(worker.pid)
    worker.terminate()
    worker.wait(30)
    app.close()
    print(
        f"backend={args.db} n={args.n} (half sleeping {nap_s:g}s, half waiting for an event) worker concurrency=16"
    )
    print(f"  all {args.n} parked (status waiting) after {parked:.1f}s")
    print(
        f"  worker RSS: {rss_before:.0f} MB before, {rss_parked:.0f} MB with all parked, {rss_after:.0f} MB after all resumed"
    )
    print(f"  worker CPU while {args.n} runs wait: {idle_cpu * 100:.1f}% of one core")
    print(
        f"  all resumed and completed {resumed:.1f}s after the events were sent (sleepers due at {nap_s:g}s)"
    )


if __name__ == "__main__":
    main()
