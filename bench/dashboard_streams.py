"""Worker throughput with the dashboard in its own process and N open event streams.

The realistic setup: a worker process, a dashboard process (``durable dashboard``)
following it through the cross-process bus, and N browsers' event streams open on
the dashboard (simulated here). Phases alternate 0 and N streams; the worker's
throughput on 3-step workflows is printed for each, then the mean drop.

    .venv/bin/python bench/dashboard_streams.py --db sqlite --streams 100
    .venv/bin/python bench/dashboard_streams.py --db postgres --streams 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database_url  # noqa: E402
from bench.dashboard import _streams  # noqa: E402
from bench.throughput import THREE  # noqa: E402
from durable import Durable  # noqa: E402


def make_app() -> Durable:
    """The app both processes load (``--app bench.dashboard_streams:make_app``)."""
    url = os.environ["BENCH_DB_URL"]
    bus = "postgres" if url.startswith("postgresql") else "sqlite"
    return Durable(url, workflows=[THREE], name="bench", pubsub=bus, poll_interval_seconds=0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "durable", "--app", "bench.dashboard_streams:make_app", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def phase(app: Durable, port: int, runs: int, streams: int) -> float:
    stop, opened = threading.Event(), threading.Event()
    clients = None
    if streams:
        clients = threading.Thread(
            target=lambda: asyncio.run(_streams(port, streams, stop, opened)), daemon=True
        )
        clients.start()
        opened.wait(30)
    done_before = app.query.status_counts().get("completed", 0)
    t0 = time.perf_counter()
    for i in range(0, runs, 200):
        app.start_many(THREE, list(range(i, min(i + 200, runs))))
    while app.query.status_counts().get("completed", 0) < done_before + runs:
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    stop.set()
    if clients is not None:
        clients.join(10)
    return runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    url = fresh_database_url(args.db, "durable_bench_streams")
    os.environ["BENCH_DB_URL"] = url
    app = make_app()
    app.migrate()
    port = _free_port()
    worker = _spawn(["worker", "-q", "default=8", "--log-level", "WARNING"])
    dashboard = _spawn(["dashboard", "--port", str(port), "--host", "127.0.0.1"])
    try:
        _wait_port(port)
        time.sleep(1)
        results: dict[int, list[float]] = {0: [], args.streams: []}
        for streams in (0, args.streams, 0, args.streams):
            rate = phase(app, port, args.runs, streams)
            results[streams].append(rate)
            print(
                f"worker throughput with {streams:>3} open streams on the dashboard: {rate:7.1f} runs/s"
            )
        base = statistics.mean(results[0])
        loaded = statistics.mean(results[args.streams])
        print(
            f"backend={args.db} (bus {args.db}), worker and dashboard in their own processes, "
            f"{args.runs} runs per phase: mean drop with {args.streams} streams "
            f"{(base - loaded) / base * 100:.1f}%"
        )
    finally:
        for proc in (worker, dashboard):
            proc.terminate()
        for proc in (worker, dashboard):
            proc.wait(30)
        app.close()


if __name__ == "__main__":
    main()
