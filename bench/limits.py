"""Fleet-wide queue limits: their cost, and how closely they hold under load.

Run by hand (not a test):

    .venv/bin/python bench/limits.py overhead --db postgres --n 3000 --workers 3
    .venv/bin/python bench/limits.py adherence --db postgres --n 2000 --workers 3

``overhead``: throughput of 3-step no-op workflows on ``default`` with no limit,
then with a global limit that never binds (``concurrency=100000``), alternating
``--rounds`` times; prints each round and the median of each.

``adherence``: N workflows whose middle step runs on queue ``limited`` (a
``--sleep`` ms step recording its own span), with ``--concurrency`` and
``--rate``/s (burst 1) on that queue; prints the peak overlap of the recorded
spans and the peak number of step starts in any one-second window, against the
configured limits.
"""

from __future__ import annotations

import argparse
import json
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

from bench.common import fresh_database_url  # noqa: E402
from durable import Durable, QueueLimits, Workflow, step  # noqa: E402


def _noop(x: Any) -> Any:
    return x


def _work(x: Any) -> Any:
    started = time.time()
    time.sleep(float(os.environ.get("BENCH_SLEEP_MS", "0")) / 1000)
    ended = time.time()
    fd = os.open(os.environ["BENCH_SPANS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{started:.6f} {ended:.6f}\n".encode())
    finally:
        os.close(fd)
    return x


THREE = Workflow(
    "three_steps", [step(_noop, name="one"), step(_noop, name="two"), step(_noop, name="three")]
)
ROUTED = Workflow(
    "routed",
    [
        step(_noop, name="before"),
        step(_work, name="work", queue="limited"),
        step(_noop, name="after"),
    ],
)


def make_app() -> Durable:
    """The app worker processes load (``--app bench.limits:make_app``)."""
    described = json.loads(os.environ.get("BENCH_LIMITS", "{}"))
    limits = {q: QueueLimits(**opts) for q, opts in described.items()}
    return Durable(
        os.environ["BENCH_DB_URL"],
        workflows=[THREE, ROUTED],
        name="bench",
        limits=limits,
        poll_interval_seconds=0.1,
    )


def _run(
    db: str, n: int, workers: int, limits: dict[str, Any], wf: Workflow, sleep_ms: int
) -> float:
    url = fresh_database_url(db, "durable_bench_limits")
    os.environ["BENCH_DB_URL"] = url
    os.environ["BENCH_LIMITS"] = json.dumps(limits)
    os.environ["BENCH_SLEEP_MS"] = str(sleep_ms)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = make_app()
    app.migrate()
    queues = ["-q", "default=8", "-q", "limited=8"]
    cmd = [sys.executable, "-m", "durable", "--app", "bench.limits:make_app", "worker", *queues]
    procs = [subprocess.Popen([*cmd, "--log-level", "WARNING"], env=env) for _ in range(workers)]
    time.sleep(2.0)  # let the workers start and register
    t0 = time.perf_counter()
    for first in range(0, n, 200):
        app.start_many(wf, list(range(first, min(n, first + 200))))
    while app.query.status_counts().get("completed", 0) < n:
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)
    app.close()
    return elapsed


def overhead(args: argparse.Namespace) -> None:
    os.environ["BENCH_SPANS"] = os.devnull
    results: dict[str, list[float]] = {"none": [], "non-binding": []}
    variants = {"none": {}, "non-binding": {"default": {"concurrency": 100_000}}}
    for r in range(args.rounds):
        for name, limits in variants.items():
            rate = args.n / _run(args.db, args.n, args.workers, limits, THREE, 0)
            results[name].append(rate)
            print(f"  round {r + 1} {name:>11}: {rate:,.0f} workflows/s", flush=True)
    none, limited = (statistics.median(results[k]) for k in ("none", "non-binding"))
    print(
        f"backend={args.db} n={args.n} steps/workflow=3 worker_processes={args.workers} "
        f"per-worker concurrency=8 rounds={args.rounds}"
    )
    print(
        f"  median: no limit {none:,.0f} workflows/s; non-binding global limit "
        f"{limited:,.0f} workflows/s ({(limited / none - 1) * 100:+.1f} %)"
    )


def _peak_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = level = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def _peak_per_second(starts: list[float]) -> int:
    starts = sorted(starts)
    best = lo = 0
    for hi, t in enumerate(starts):
        while t - starts[lo] > 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def adherence(args: argparse.Namespace) -> None:
    spans_file = Path(tempfile.mkdtemp()) / "spans.log"
    os.environ["BENCH_SPANS"] = str(spans_file)
    limits = {"limited": {"concurrency": args.concurrency, "rate": args.rate, "burst": 1}}
    elapsed = _run(args.db, args.n, args.workers, limits, ROUTED, args.sleep)
    spans = [tuple(map(float, line.split())) for line in spans_file.read_text().splitlines()]
    overlap = _peak_overlap([(s, e) for s, e in spans])
    per_second = _peak_per_second([s for s, _ in spans])
    print(
        f"backend={args.db} n={args.n} worker_processes={args.workers} step={args.sleep} ms "
        f"limits: concurrency={args.concurrency}, rate={args.rate}/s burst 1"
    )
    print(f"  {len(spans)} spans in {elapsed:.1f}s ({len(spans) / elapsed:,.1f} runs/s)")
    print(f"  peak overlap {overlap} (limit {args.concurrency})")
    print(f"  peak starts in any 1 s window {per_second} (bound rate + burst = {args.rate + 1:g})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["overhead", "adherence"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--sleep", type=int, default=20, help="ms the limited step works")
    args = parser.parse_args()
    (overhead if args.mode == "overhead" else adherence)(args)


if __name__ == "__main__":
    main()
