"""Chaos: worker processes are SIGKILLed at random while runs flow; nothing is lost.

Worker processes run workflows that mix plain steps, a retry, a short sleep
and an event wait; a sender process delivers the events; a consumer process
follows the PubSub workflows topic; the test process starts the runs and, every
few seconds, SIGKILLs a random worker and starts a replacement
(stale_timeout_seconds=2, heartbeat 0.5 s). At the end:

- every run completed, and none twice (one workflow_completed, one committed
  row per step);
- no committed step ran again (every side effect of a step happened before
  its committed row's completion time; bodies killed before their commit may
  run again: at least once, as documented);
- every event sent was consumed exactly once, by the run it was sent to;
- the consumer saw workflow_completed for every run, except a run whose
  worker was killed in the instant between its final commit and the publish
  (counted and bounded: see docs/production.md).

A PostgreSQL phase also terminates the workers' database connections every
0.5 s (``pg_terminate_backend``) on top of the SIGKILLs.

Sizes: DURABLE_CHAOS_RUNS (PostgreSQL, default 2000), DURABLE_CHAOS_KILL_RUNS
(the connection-killing phase, default 300) and DURABLE_CHAOS_SQLITE_RUNS
(default 1000).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from durable import Durable, Retry, Workflow, step
from durable.runtime import current_runtime
from durable.wait import sleep as durable_sleep
from durable.wait import wait_for_event
from tests.support.faults import ConnectionKiller
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow

EFFECTS_ENV = "DURABLE_CHAOS_EFFECTS"


def _effect(ctx: dict[str, Any], name: str) -> None:
    """Record that a step body ran to its end (one atomic O_APPEND line)."""
    rt = current_runtime("a chaos step")
    line = f"{rt.execution_id} {name} {rt.attempt} {time.time_ns() // 1_000_000}\n"
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def begin(spec: dict[str, Any]) -> dict[str, Any]:
    _effect(spec, "begin")
    return dict(spec)


def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
    if ctx["retry"] and current_runtime("flaky").attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    _effect(ctx, "flaky")
    return ctx


def nap(ctx: dict[str, Any]) -> dict[str, Any]:
    if ctx["sleep"]:
        durable_sleep(0.3)
    _effect(ctx, "nap")
    return ctx


def await_go(ctx: dict[str, Any]) -> dict[str, Any]:
    got = wait_for_event("go", timeout=3600) if ctx["event"] else None
    _effect(ctx, "await_go")
    return {**ctx, "got": got}


def end(ctx: dict[str, Any]) -> dict[str, Any]:
    _effect(ctx, "end")
    return ctx


STEPS = ["begin", "flaky", "nap", "await_go", "end"]
CHAOS = Workflow(
    "chaos",
    [
        step(begin),
        step(flaky, retry=Retry(max_attempts=3, backoff="constant", base=0.2)),
        step(nap),
        step(await_go),
        step(end),
    ],
)


def _app(url: str, **options: Any) -> Durable:
    pubsub = "postgres" if url.startswith("postgresql") else "sqlite"
    return Durable(url, [CHAOS], pubsub=pubsub, **options)


# ---- the processes ---------------------------------------------------------------------


def worker_main(url: str) -> None:
    app = _app(
        url,
        stale_timeout_seconds=2,
        heartbeat_interval_seconds=0.5,
        maintenance_interval_seconds=0.5,
        poll_interval_seconds=0.5,
    )
    app.run_worker({"default": 8})


def sender_main(url: str, todo: str, sent: str) -> None:
    """Send 'go' once to every run listed in ``todo`` (in random order); log each in ``sent``."""
    app = _app(url)
    ids = Path(todo).read_text().split()
    random.shuffle(ids)
    with open(sent, "a") as out:
        for run_id in ids:
            app.send_event(run_id, "go", {"nonce": f"n-{run_id}"})
            out.write(run_id + "\n")
            out.flush()
    app.close()


def consumer_main(url: str, ready: str, seen: str) -> None:
    """Write the id of every workflow_completed event seen, until SIGTERM."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    app = _app(url)
    sub = app.subscribe(app.pubsub.workflows_topic(), buffer=100_000)
    Path(ready).write_text("ok")
    with open(seen, "a") as out:
        while not signal.sigpending():
            event = sub.get(0.2)
            if event is not None and event.kind == "workflow_completed":
                out.write(event.payload["id"] + "\n")
                out.flush()
    print("dropped", sub.dropped, flush=True)
    app.close()


# ---- the test ------------------------------------------------------------------------


class Cluster:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.env = {EFFECTS_ENV: str(tmp / "effects.log")}
        self.workers: list[Any] = []
        self.kills: list[int] = []  # epoch ms of each SIGKILL
        self.started = 0

    def spawn(self, role: str, *args: str, url: str | None = None) -> Any:
        self.started += 1
        return spawn(
            ["-m", "tests.integration.test_chaos", role, url or self.url, *args],
            env=self.env,
            log=self.tmp / f"{role}-{self.started}.log",
        )

    def spawn_plain(self, role: str, *args: str) -> Any:
        """A process whose connections are never killed (sender, consumer)."""
        return self.spawn(role, *args, url=self.url.split("?")[0])

    def kill_one(self, rng: random.Random) -> None:
        victim = rng.choice(self.workers)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.kills.append(time.time_ns() // 1_000_000)
        self.workers.remove(victim)
        self.workers.append(self.spawn("worker"))

    def stop(self) -> None:
        for proc in self.workers:
            proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            proc.wait(60)


def run_chaos(
    url: str,
    tmp: Path,
    runs: int,
    workers: int,
    kill_every: float,
    kill_connections_every: float | None = None,
) -> None:
    rng = random.Random(5)
    app = _app(url)
    app.migrate()
    cluster = Cluster(url, tmp)
    killer = None
    if kill_connections_every is not None:
        # the workers' connections (and only theirs) are terminated over and over
        cluster.url = f"{url}?application_name=chaos-worker"
        admin, database = url.rsplit("/", 1)
        killer = ConnectionKiller(
            f"{admin}/postgres", database, kill_connections_every, "chaos-worker"
        )
    consumer = cluster.spawn_plain("consumer", str(tmp / "ready"), str(tmp / "seen.log"))
    wait_until(lambda: (tmp / "ready").exists(), 60, what="the consumer to subscribe")
    cluster.workers = [cluster.spawn("worker") for _ in range(workers)]
    if killer is not None:
        killer.__enter__()

    specs = [
        {"i": i, "retry": i % 3 == 0, "sleep": i % 5 == 0, "event": i % 4 == 0} for i in range(runs)
    ]
    rows = [app.engine.execution_row(CHAOS, spec) for spec in specs]
    for i in range(0, runs, 200):
        app.engine.insert(rows[i : i + 200])
    event_runs = [row["id"] for row, spec in zip(rows, specs, strict=True) if spec["event"]]
    (tmp / "todo").write_text("\n".join(event_runs))
    sender = cluster.spawn_plain("sender", str(tmp / "todo"), str(tmp / "sent.log"))

    def all_done() -> bool:
        counts = app.storage.status_counts(None)
        return sum(r["n"] for r in counts if r["status"] == "completed") == runs

    next_kill = time.monotonic() + kill_every
    # every dropped connection costs the attempt in flight: that phase is slower
    deadline = time.monotonic() + 60 + runs * (0.03 if killer is None else 0.3)
    try:
        while not all_done():
            if time.monotonic() > deadline:
                raise AssertionError(f"runs did not complete: {_stuck(app)}")
            if time.monotonic() >= next_kill:
                cluster.kill_one(rng)
                next_kill = time.monotonic() + kill_every
            time.sleep(0.2)
        assert sender.wait(120) == 0
        if killer is not None:
            killer.__exit__()
            assert killer.kills > 0
            print("chaos: worker connections killed:", killer.kills)
        check_outcome(app, tmp, cluster, [r["id"] for r in rows], event_runs)
    finally:
        if killer is not None:
            killer.__exit__()
        cluster.stop()
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(60)
        sender.kill()
        app.close()


def check_outcome(
    app: Durable, tmp: Path, cluster: Cluster, run_ids: list[str], event_runs: list[str]
) -> None:
    query = app.storage
    # every run completed
    statuses = Counter(app.get_execution(r).status.value for r in run_ids)
    assert statuses == {"completed": len(run_ids)}

    # one committed row per step, and every side effect happened before that commit
    committed: dict[tuple[str, str], int] = {}
    for run_id in run_ids:
        for row in query.completed_steps(run_id):
            key = (run_id, row["step_name"])
            assert key not in committed, f"step {key} was committed twice"
            committed[key] = row["completed_at"]
    assert len(committed) == len(run_ids) * len(STEPS)
    effects = Counter()
    late = []
    for line in (tmp / "effects.log").read_text().splitlines():
        run_id, name, _attempt, at = line.split()
        effects[(run_id, name)] += 1
        if int(at) > committed[(run_id, name)]:
            late.append(line)
    assert late == [], f"committed steps ran again: {late[:5]}"
    assert set(effects) == set(committed)
    rerun = sum(n - 1 for n in effects.values())

    # every event sent was consumed once, by the wait of its run
    sent = (tmp / "sent.log").read_text().split()
    assert sorted(sent) == sorted(event_runs)
    for run_id in event_runs:
        execution = app.get_execution(run_id)
        assert execution.result["got"] == {"nonce": f"n-{run_id}"}
    inbox = _inbox_rows(app)
    assert Counter(r[0] for r in inbox) == Counter(event_runs)
    assert all(r[1] is not None and r[2] is not None for r in inbox)

    # the consumer saw every completion: terminal events travel inside the commit
    def missing() -> set[str]:
        return set(run_ids) - set((tmp / "seen.log").read_text().split())

    wait_until(lambda: not missing(), 60, what="the consumer to see every completion")
    seen = Counter((tmp / "seen.log").read_text().split())
    assert max(seen.values()) == 1, "a run was reported completed twice"
    report = {
        "runs": len(run_ids),
        "kills": len(cluster.kills),
        "bodies_rerun_before_commit": rerun,
    }
    print("chaos:", json.dumps(report))


def _stuck(app: Durable) -> str:
    """What the unfinished runs look like (for the failure message)."""
    lines = []
    for execution in app.list_executions(status=["pending", "running", "waiting"], limit=5).items:
        row = app.query.execution_row(execution.id)
        waits = app.storage.waits_for_step(execution.id, row["current_step"] or "")
        keep = ("id", "status", "current_step", "wake_at", "wakeups", "lock_token", "locked_by")
        lines.append(repr({k: row[k] for k in keep}))
        lines.extend(f"  wait {w}" for w in waits)
        lines.extend(
            f"  step {s.step_name} {s.status} {s.attempt}" for s in app.list_steps(execution.id)
        )
    return "\n".join(lines)


def _inbox_rows(app: Durable) -> list[tuple[Any, ...]]:
    storage: Any = app.storage
    sql = "SELECT execution_id, consumed_at, wait_id FROM inbox WHERE name = 'go'"
    if hasattr(storage, "_pool"):
        with storage.connection() as conn:
            return [tuple(r.values()) for r in conn.execute(sql).fetchall()]
    import sqlite3

    with sqlite3.connect(storage.path) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.mark.timeout(900)
def test_chaos_postgres(pg_url: str, tmp_path: Path) -> None:
    runs = int(os.environ.get("DURABLE_CHAOS_RUNS", "2000"))
    run_chaos(pg_url, tmp_path, runs, workers=3, kill_every=1.5)


@pytest.mark.timeout(600)
def test_chaos_postgres_connections_killed(pg_url: str, tmp_path: Path) -> None:
    """Workers SIGKILLed at random, and their database connections terminated every
    0.5 s (``pg_terminate_backend``) while runs flow: the same outcome."""
    runs = int(os.environ.get("DURABLE_CHAOS_KILL_RUNS", "300"))
    run_chaos(pg_url, tmp_path, runs, workers=3, kill_every=3.0, kill_connections_every=0.5)


@pytest.mark.timeout(600)
def test_chaos_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    runs = int(os.environ.get("DURABLE_CHAOS_SQLITE_RUNS", "1000"))
    run_chaos(sqlite_url, tmp_path, runs, workers=3, kill_every=1.0)


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"worker": worker_main, "sender": sender_main, "consumer": consumer_main}[role](*args)
