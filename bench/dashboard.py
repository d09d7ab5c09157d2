"""Dashboard benchmark (run by hand; prints figures, asserts nothing).

1. Server time (p50, p95) of the Executions page (plain, filtered, JSON search,
   deep page) and of a run's page with ``--runs`` executions stored.
2. Worker throughput on 3-step workflows with 0 and then ``--streams`` open
   event streams (the dashboard in the same process, so every stream follows
   the in-process bus: the worst case for the worker).

    .venv/bin/python bench/dashboard.py --runs 100000 --streams 100
    .venv/bin/python bench/dashboard.py --url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from typing import Any

from starlette.testclient import TestClient

from durable import Durable, Workflow, step
from durable.dashboard import create_app


def _s1(x: Any) -> Any:
    return {"n": x, "a": 1}


def _s2(ctx: Any) -> Any:
    return {**ctx, "b": 2}


def _s3(ctx: Any) -> Any:
    return {**ctx, "c": 3}


THREE = Workflow("three_steps", [step(_s1), step(_s2), step(_s3)])


def seed(app: Durable, n: int) -> list[str]:
    app.migrate()
    storage = app.storage
    ids: list[str] = []
    batch: list[dict[str, Any]] = []
    statuses = ["completed"] * 8 + ["failed", "waiting"]
    for i in range(n):
        row = app.engine.execution_row(THREE, {"order": {"id": f"o-{i}"}, "i": i})
        row["status"] = statuses[i % len(statuses)]
        row["wake_at"] = None
        batch.append(row)
        ids.append(str(row["id"]))
        if len(batch) == 2000:
            storage.create_executions(batch, app.clock.now_ms())
            batch = []
    if batch:
        storage.create_executions(batch, app.clock.now_ms())
    return ids


def timed(client: TestClient, path: str, rounds: int) -> tuple[float, float]:
    samples = []
    client.get(path)  # warm caches
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def page_times(app: Durable, n: int, rounds: int) -> None:
    t0 = time.perf_counter()
    ids = seed(app, n)
    print(f"seeded {n} executions in {time.perf_counter() - t0:.1f} s ({app.storage.dialect})")
    client = TestClient(create_app(app), base_url="http://localhost")
    deep = client.get("/executions")
    cursor_page = "/executions?cursor=" + deep.text.split("cursor=")[1].split('"')[0]
    paths = {
        "executions (newest 50)": "/executions",
        "executions status=failed": "/executions?status=failed",
        "executions failed+waiting, workflow": (
            "/executions?workflow=three_steps&status=failed&status=waiting"
        ),
        "executions search input.order.id": f"/executions?q=input.order.id+%3D+o-{n // 2}",
        "executions second page (cursor)": cursor_page.replace("&amp;", "&"),
        "run page (summary)": f"/executions/{ids[n // 2]}",
        "run page (flow)": f"/executions/{ids[n // 2]}?tab=flow",
        "overview (24h)": "/",
        "workflows": "/workflows",
    }
    print(f"server time over {rounds} requests (ms, in-process ASGI, includes rendering):")
    for label, path in paths.items():
        p50, p95 = timed(client, path, rounds)
        print(f"  {label:<40} p50 {p50:7.1f}   p95 {p95:7.1f}")


def throughput(url: str, runs: int, streams: int) -> float:
    app = Durable(url, [THREE], poll_interval_seconds=0.05)
    try:
        stop = threading.Event()
        opened = threading.Event()
        server = None
        thread = None
        if streams:
            import uvicorn

            config = uvicorn.Config(create_app(app), host="127.0.0.1", port=0, log_level="warning")
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            port = server.servers[0].sockets[0].getsockname()[1]
            clients = threading.Thread(
                target=lambda: asyncio.run(_streams(port, streams, stop, opened)), daemon=True
            )
            clients.start()
            opened.wait(30)
        since = app.clock.now_ms()
        ids = [app.start(THREE, i) for i in range(runs)]
        t0 = time.perf_counter()
        app.start_worker({"default": 10})
        while app.query.count_executions(_unfinished(since), cap=runs + 1):
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        app.stop_worker()
        assert all(app.get_execution(i).status == "completed" for i in ids[:5])
        stop.set()
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(10)
        return runs / elapsed
    finally:
        app.close()


def _unfinished(since_ms: int) -> Any:
    from durable.storage import ExecutionFilter

    return ExecutionFilter(statuses=("pending", "running", "waiting"), since_ms=since_ms)


async def _streams(port: int, n: int, stop: threading.Event, opened: threading.Event) -> None:
    import httpx2

    received = 0

    async def one(client: Any) -> None:
        nonlocal received
        async with client.stream("GET", f"http://127.0.0.1:{port}/stream?channels=runs") as r:
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    received += 1
                if stop.is_set():
                    return

    limits = httpx2.Limits(max_connections=n + 10)
    async with httpx2.AsyncClient(timeout=None, limits=limits) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(n)]
        while received < n:  # every stream said hello
            await asyncio.sleep(0.05)
        opened.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
    print(f"  ({n} streams received {received} SSE events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument("--runs", type=int, default=100_000, help="executions stored")
    parser.add_argument("--rounds", type=int, default=30, help="requests per page")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--workflows", type=int, default=400, help="3-step runs per phase")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="durable-bench-")
    url = args.url or f"sqlite:///{os.path.join(folder, 'pages.db')}"
    with Durable(url, [THREE]) as app:
        page_times(app, args.runs, args.rounds)
    results: dict[int, list[float]] = {0: [], args.streams: []}
    for phase, streams in enumerate((0, args.streams, 0, args.streams)):
        phase_url = args.url or f"sqlite:///{os.path.join(folder, f'tp{phase}.db')}"
        rate = throughput(phase_url, args.workflows, streams)
        results[streams].append(rate)
        print(f"worker throughput with {streams:>3} open streams: {rate:7.1f} runs/s")
    base, loaded = statistics.mean(results[0]), statistics.mean(results[args.streams])
    drop = 100 * (1 - loaded / base)
    print(f"mean throughput drop with {args.streams} streams: {drop:.1f}%")


if __name__ == "__main__":
    main()
