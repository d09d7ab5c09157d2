"""Real faults for tests: PostgreSQL connections killed, a private PostgreSQL cluster
stopped and started, and the invariants every fault test asserts afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from durable import Durable, Retry, Workflow, step
from durable.models import TERMINAL_STATUSES
from durable.runtime import current_execution_id, current_runtime
from tests.support.procs import wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def effect(path: str, run_id: str, name: str) -> None:
    """Record that a step body ran to its end (one atomic O_APPEND line, with a time)."""
    line = f"{run_id} {name} {time.time_ns() // 1_000_000}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class ConnectionKiller:
    """Terminates every backend of one database, over and over, from its own thread."""

    def __init__(
        self, admin_url: str, database: str, every_seconds: float, application: str = "%"
    ) -> None:
        self.admin_url, self.database, self.every = admin_url, database, every_seconds
        self.application = application  # a LIKE pattern on application_name
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ConnectionKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                    (self.database, self.application),
                ).fetchall()
                self.kills += sum(1 for r in rows if r[0])


class PrivateCluster:
    """A PostgreSQL cluster of our own (initdb in a temp dir, its own port), run as the
    postgres user, that a test may stop and start: never the shared server."""

    def __init__(self, port: int = 55412) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}")
        if os.geteuid() != 0:
            pytest.skip("a private cluster needs root (to run it as the postgres user)")
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="durable-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/durable_faults"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def init(self) -> PrivateCluster:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self.start()
        self._as_postgres(
            str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "durable_faults"
        )
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-l",
            str(self.dir / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def check_invariants(
    app: Durable, run_ids: list[str], steps: list[str], effects: Path, result_of: Any
) -> dict[str, int]:
    """The fault invariants: right terminal state and result; one completed record per
    step; no claim left; a body ran again only before its step's commit (an attempt the
    fault interrupted). Returns counts for the report."""
    committed: dict[tuple[str, str], int] = {}
    for run_id in run_ids:
        execution = app.get_execution(run_id)
        assert execution.status == "completed", (run_id, execution.status, execution.error)
        assert execution.result == result_of(run_id), run_id
        row = app.storage.get_execution(run_id)
        assert row is not None and row["lock_token"] is None
        for step_row in app.storage.completed_steps(run_id):
            key = (run_id, step_row["step_name"])
            assert key not in committed, f"step {key} has two completed records"
            committed[key] = step_row["completed_at"]
    assert len(committed) == len(run_ids) * len(steps)
    ran: Counter[tuple[str, str]] = Counter()
    late = []
    for line in effects.read_text().splitlines():
        run_id, name, at = line.split()
        ran[(run_id, name)] += 1
        if int(at) > committed[(run_id, name)]:
            late.append(line)
    assert late == [], f"committed steps ran again: {late[:5]}"
    assert set(ran) == set(committed)
    return {"bodies_rerun": sum(n - 1 for n in ran.values())}


class TerminalWatch:
    """Follows the workflows topic: no run may be reported terminal twice or failed."""

    def __init__(self, app: Durable) -> None:
        self.sub = app.subscribe(app.pubsub.workflows_topic(), buffer=100_000)
        self.terminal: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def drain(self) -> None:
        while (event := self.sub.get(0.01)) is not None:
            if event.payload.get("status") in TERMINAL_STATUSES:
                self.terminal[event.payload["id"]] += 1
                self.kinds[event.kind] += 1

    def check(self) -> None:
        self.drain()
        assert self.kinds.get("workflow_failed", 0) == 0, self.kinds
        assert not self.terminal or max(self.terminal.values()) == 1


# ---- a flow to run under faults ------------------------------------------------

EFFECTS = "DURABLE_FAULT_EFFECTS"
STEPS = ["s1", "s2", "s3"]


def _body(name: str) -> Any:
    def body(ctx: dict[str, Any]) -> dict[str, Any]:
        if name == "s2" and ctx["i"] % 3 == 0 and current_runtime("s2").attempt == 1:
            raise RuntimeError("first attempt fails on purpose")
        effect(os.environ[EFFECTS], current_execution_id(), name)
        return {**ctx, name: ctx["i"]}

    body.__name__ = name
    return body


FLOW = Workflow(
    "faulty_flow",
    [
        step(_body("s1")),
        step(_body("s2"), retry=Retry(max_attempts=3, backoff="constant", base=0.1)),
        step(_body("s3")),
    ],
)


def _app(url: str) -> Durable:
    return Durable(
        url,
        [FLOW],
        stale_timeout_seconds=2,
        heartbeat_interval_seconds=0.5,
        maintenance_interval_seconds=0.5,
        poll_interval_seconds=0.2,
    )


def completed(app: Durable) -> int:
    try:
        counts = app.storage.status_counts(None)
    except Exception:  # the database is away for now
        return -1
    return sum(r["n"] for r in counts if r["status"] == "completed")


def run_under(url: str, tmp: Path, runs: int, fault: Any) -> dict[str, int]:
    """Run ``runs`` flows on an in-process worker while ``fault(app)`` does its worst,
    then check every invariant once the fault is gone."""
    os.environ[EFFECTS] = str(tmp / "effects.log")
    app = _app(url)
    app.migrate()
    watch = TerminalWatch(app)
    ids = app.start_many(FLOW, [{"i": i} for i in range(runs)])
    inputs = {run_id: i for i, run_id in enumerate(ids)}
    worker = app.start_worker({"default": 8})
    try:
        fault(app)
        # once the fault is gone, no run stays claimed past the stale timeout (+ margin)
        stale_ms = int(app.engine.config.stale_timeout_seconds * 1000)

        def no_stale_claim() -> bool:
            try:
                before = app.engine.clock.now_ms() - stale_ms
                return not app.storage.stale_claims(before)
            except Exception:  # still reconnecting
                return False

        wait_until(no_stale_claim, stale_ms / 1000 + 15, 0.1, "no claim left stale")
        wait_until(lambda: completed(app) == runs, 90, 0.2, "every run to complete")
        assert all(t.is_alive() for t in worker._threads)  # no loop died of the fault
        report = check_invariants(
            app,
            ids,
            STEPS,
            tmp / "effects.log",
            lambda r: {"i": inputs[r], **dict.fromkeys(STEPS, inputs[r])},
        )
        watch.check()
        return report
    finally:
        app.close()
