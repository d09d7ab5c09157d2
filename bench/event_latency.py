"""Cross-process PubSub latency: broadcast in a worker process to receipt in another.

Run by hand:

    .venv/bin/python bench/event_latency.py --backend postgres --events 2000 --rate 500
    .venv/bin/python bench/event_latency.py --backend sqlite
    .venv/bin/python bench/event_latency.py --backend redis

A publisher process (a Durable app with the chosen bus, as a worker has)
calls ``app.pubsub.broadcast_workflow`` - the very path the runner uses - at
``--rate`` events per second, each stamped with ``time.time_ns()``. This
process subscribes to the workflows topic and records receipt time minus the
stamp. Printed: p50, p99 and max in milliseconds, and how many arrived.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from durable import Durable  # noqa: E402

PG = os.environ.get("DURABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DURABLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _app(backend: str, db: str) -> Durable:
    if backend == "postgres":
        return Durable(PG, pubsub="postgres")
    return Durable(f"sqlite:///{db}", pubsub="sqlite" if backend == "sqlite" else REDIS)


def publisher(backend: str, db: str, events: str, rate: str) -> None:
    app = _app(backend, db)
    app.migrate()
    gap = 1 / float(rate)
    next_at = time.monotonic()
    for i in range(int(events)):
        payload = {"id": f"run-{i}", "status": "completed", "sent_ns": time.time_ns()}
        app.pubsub.broadcast_workflow("workflow_completed", payload)
        next_at += gap
        time.sleep(max(0.0, next_at - time.monotonic()))
    server = app.pubsub.server
    if server is not None and hasattr(server, "flush"):
        server.flush()
    app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="postgres", choices=["postgres", "sqlite", "redis"])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500)
    args = parser.parse_args()
    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    app = _app(args.backend, db)
    app.migrate()
    sub = app.subscribe(app.pubsub.workflows_topic(), buffer=args.events * 2)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--publish", args.backend, db, str(args.events), str(args.rate)]
    )
    latencies: list[float] = []
    while len(latencies) < args.events:
        event = sub.get(5)
        if event is None:
            break
        latencies.append((time.time_ns() - event.payload["sent_ns"]) / 1e6)
    proc.wait()
    app.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{args.backend}: {len(latencies)}/{args.events} events at {args.rate:g}/s, "
        f"p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, max {latencies[-1]:.2f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher(*sys.argv[2:6])
    else:
        main()
