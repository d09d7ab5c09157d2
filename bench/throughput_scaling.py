"""Throughput of 3-step workflows on PostgreSQL with 1, 2 and 4 worker processes.

Run by hand:

    .venv/bin/python bench/throughput_scaling.py --runs 3000 --processes 1 2 4

For each process count: a fresh database, N runs inserted up front, then the
worker processes are started (each one queue, ``--concurrency`` threads). The
rate is N / (last completion - first step start), both read from the
database. Also printed: the CPU time PostgreSQL's backends and the workers
used, which shows where the time goes on this machine.
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

import psycopg  # noqa: E402

from durable import Durable, Workflow, step  # noqa: E402

BASE = os.environ.get("DURABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def s1(x: int) -> dict:
    return {"x": x}


def s2(ctx: dict) -> dict:
    return {**ctx, "y": ctx["x"] + 1}


def s3(ctx: dict) -> dict:
    return {**ctx, "z": ctx["y"] * 2}


WF = Workflow("three", [step(s1), step(s2), step(s3)])


def worker(url: str, concurrency: str, pubsub: str) -> None:
    app = Durable(url, [WF], pubsub={"memory": True, "none": False}.get(pubsub, pubsub))
    app.run_worker({"default": int(concurrency)})


def _db(name: str) -> str:
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return BASE.rsplit("/", 1)[0] + "/" + name


def _pg_cpu_seconds() -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if "(postgres)" in stat:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(processes: int, runs: int, concurrency: int, pubsub: str) -> dict[str, float]:
    url = _db("durable_bench_scaling")
    app = Durable(url, [WF], pubsub=False)
    app.migrate()
    rows = [app.engine.execution_row(WF, i) for i in range(runs)]
    for i in range(0, runs, 500):
        app.engine.insert(rows[i : i + 500])
    pg_before = _pg_cpu_seconds()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, str(concurrency), pubsub],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        while True:
            counts = {r["status"]: r["n"] for r in app.storage.status_counts(None)}
            if counts.get("completed", 0) == runs:
                break
            time.sleep(0.1)
        pg_cpu = _pg_cpu_seconds() - pg_before
        worker_cpu = 0.0
        for proc in procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            worker_cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
    with app.storage.connection() as conn:
        row = conn.execute(
            "SELECT min(started_at) AS a, max(completed_at) AS b FROM executions"
        ).fetchone()
    app.close()
    seconds = (row["b"] - row["a"]) / 1000
    return {
        "seconds": seconds,
        "runs_per_s": runs / seconds,
        "steps_per_s": 3 * runs / seconds,
        "pg_cpu_s": pg_cpu,
        "workers_cpu_s": worker_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pubsub", default="postgres", help="postgres, memory or none")
    args = parser.parse_args()
    print(
        f"3-step workflows on PostgreSQL, {args.runs} runs, concurrency {args.concurrency} per "
        f"process, pubsub={args.pubsub}, {os.cpu_count()} CPUs"
    )
    base = None
    for n in args.processes:
        r = measure(n, args.runs, args.concurrency, args.pubsub)
        base = base or r["runs_per_s"]
        print(
            f"{n} process(es): {r['runs_per_s']:7.0f} runs/s  {r['steps_per_s']:7.0f} steps/s  "
            f"x{r['runs_per_s'] / base:.2f}  (PostgreSQL CPU {r['pg_cpu_s']:.1f}s, "
            f"workers CPU {r['workers_cpu_s']:.1f}s over {r['seconds']:.1f}s)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        main()
