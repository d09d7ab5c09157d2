"""Schedule benchmarks (run by hand; prints figures, asserts nothing).

1. 1,000 schedules due at the same instant: wall time until all 1,000 runs are
   stored (one scheduler pass), on SQLite and PostgreSQL.
2. An idle scheduler holding 10,000 enabled schedules (none due for a year):
   CPU share and queries per second of its loop over a few seconds.

    .venv/bin/python bench/schedules.py [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from durable import Durable, Workflow, step
from durable.testing import FakeClock

WF = Workflow("bench_tick", [step(lambda x: x, name="noop")])


class _CountingTx:
    def __init__(self, tx: Any, counter: list[int]) -> None:
        self._tx = tx
        self._counter = counter

    def run(self, name: str, params: dict[str, Any]) -> int:
        self._counter[0] += 1
        return int(self._tx.run(name, params))

    def all(self, name: str, params: dict[str, Any]) -> Any:
        self._counter[0] += 1
        return self._tx.all(name, params)

    def one(self, name: str, params: dict[str, Any]) -> Any:
        self._counter[0] += 1
        return self._tx.one(name, params)


def _count_queries(storage: Any) -> list[int]:
    counter = [0]
    tx, read = storage._tx, storage._read

    @contextlib.contextmanager
    def counted_tx() -> Iterator[_CountingTx]:
        with tx() as inner:
            yield _CountingTx(inner, counter)

    @contextlib.contextmanager
    def counted_read() -> Iterator[_CountingTx]:
        with read() as inner:
            yield _CountingTx(inner, counter)

    storage._tx, storage._read = counted_tx, counted_read
    return counter


def _bulk_schedules(app: Durable, n: int, *, every: int | None, cron: str | None) -> None:
    now = app.clock.now_ms()
    app.schedules.list()  # migrate
    storage: Any = app.storage
    from durable.scheduler.schedule import Timing

    upcoming = Timing(cron, every * 1000 if every else None, "UTC").next_after(now)
    with storage._tx() as tx:
        for i in range(n):
            tx.run(
                "insert_schedule",
                {
                    "name": f"s{i:05d}",
                    "workflow_name": WF.name,
                    "cron": cron,
                    "every_ms": every * 1000 if every else None,
                    "timezone": "UTC",
                    "input": "null",
                    "queue": None,
                    "priority": 0,
                    "enabled": 1,
                    "catch_up": "latest",
                    "overlap": "allow",
                    "declared": 0,
                    "next_run_at": upcoming,
                    "now": now,
                },
            )


def bench_due_at_once(url: str, label: str, n: int = 1000) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 8, 59, 30, tzinfo=UTC))
    app = Durable(url, [WF], clock=clock, pubsub=False)
    _bulk_schedules(app, n, every=60, cron=None)
    clock.advance(seconds=30)  # all n are due at 09:00:00
    scheduler = app.schedules.scheduler()
    started = time.perf_counter()
    fired = scheduler.run_once()
    elapsed = time.perf_counter() - started
    stored = len(app.list_executions(workflow=WF.name, limit=1000).items)
    print(f"{label}: {fired} runs started ({stored} stored) in {elapsed:.3f} s")
    app.close()


def bench_idle(url: str, label: str, n: int = 10_000, seconds: float = 5.0) -> None:
    app = Durable(url, [WF], pubsub=False)
    _bulk_schedules(app, n, every=None, cron="0 0 1 1 *")
    counter = _count_queries(app.storage)
    scheduler = app.schedules.scheduler()
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.loop, args=(stop,))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"{label}: idle with {n} enabled schedules: {counter[0] / wall:.1f} queries/s, "
        f"CPU {100 * cpu / wall:.2f}% of one core (interval {scheduler.interval_seconds:g}s)"
    )
    app.close()


@contextlib.contextmanager
def _pg_database(base: str) -> Iterator[str]:
    import psycopg

    name = f"durable_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", default=os.environ.get("DURABLE_TEST_POSTGRES_URL"))
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_due_at_once(f"sqlite:///{tmp}/due.db", "SQLite")
        bench_idle(f"sqlite:///{tmp}/idle.db", "SQLite", seconds=args.idle_seconds)
    if args.pg:
        with _pg_database(args.pg) as url:
            bench_due_at_once(url, "PostgreSQL")
        with _pg_database(args.pg) as url:
            bench_idle(url, "PostgreSQL", seconds=args.idle_seconds)
    else:
        print("PostgreSQL skipped (pass --pg URL or set DURABLE_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
