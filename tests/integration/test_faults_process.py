"""Steps that hang or kill their process.

- A sync step that never returns, with ``timeout=``: each gets its own thread,
  so hung attempts never starve later timed steps; abandoned threads are
  counted, bounded and logged.
- A worker always exits after its grace period, whatever its steps do.
- A step that calls ``os._exit`` under a supervisor that restarts workers: the
  poison run is failed after its crash budget, naming the cause; the runs that
  shared a worker with it complete.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from durable import Durable, Workflow, step
from durable.errors import StepTimeoutError
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow

RELEASE = threading.Event()


def hang(ctx: Any) -> Any:
    RELEASE.wait()  # never returns while the test runs
    return ctx


def quick(ctx: Any) -> Any:
    return "quick"


HUNG = Workflow("hung", [step(hang, timeout=0.1)])
QUICK = Workflow("quick", [step(quick, timeout=5)])


@pytest.mark.timeout(120)
def test_hung_timed_steps_never_starve_later_ones(sqlite_url: str) -> None:
    app = Durable(sqlite_url, [HUNG, QUICK], poll_interval_seconds=0.05)
    worker = app.start_worker({"default": 4})
    worker.invoker.max_abandoned_threads = 12
    try:
        hung = app.start_many(HUNG, [None] * 12)  # more than any small pool
        for run_id in hung:
            execution = app.wait_for_completion(run_id, timeout=60)
            assert execution.status == "failed"
            assert execution.error["type"] == StepTimeoutError.__name__
        assert worker.invoker.abandoned == 12  # visible to operators (and logged)
        # the limit is reached: a timed step fails at once, saying why
        over = app.wait_for_completion(app.start(QUICK, None), timeout=60)
        assert "timed-out step threads are still running" in over.error["message"]
        RELEASE.set()  # the hung bodies return at last: their threads end
        wait_until(lambda: worker.invoker.abandoned == 0, 30, what="threads to end")
        done = app.wait_for_completion(app.start(QUICK, None), timeout=60)
        assert (done.status, done.result) == ("completed", "quick")
    finally:
        RELEASE.set()
        app.close()


BODY_RUNS: list[int] = []


def naps(ctx: Any) -> Any:
    BODY_RUNS.append(ctx)
    time.sleep(0.1 if ctx == 0 else 2.5)  # the second outlives the stale timeout
    return ctx


NAPS = Workflow("naps", [step(naps)])


@pytest.mark.timeout(120)
def test_runs_claimed_in_one_batch_are_heart_beaten_until_each_ends(sqlite_url: str) -> None:
    app = Durable(
        sqlite_url,
        [NAPS],
        stale_timeout_seconds=1,
        heartbeat_interval_seconds=0.2,
        maintenance_interval_seconds=0.2,
        poll_interval_seconds=0.05,
    )
    try:
        ids = app.start_many(NAPS, [0, 1])  # one claim statement, one lock token
        app.start_worker({"default": 2})
        for run_id in ids:
            assert app.wait_for_completion(run_id, timeout=60).status == "completed"
        assert sorted(BODY_RUNS) == [0, 1]  # never recovered from under its live thread
    finally:
        app.close()


def sleeps_forever(ctx: Any) -> Any:
    Path(os.environ["DURABLE_FAULT_STARTED"]).write_text("started")
    time.sleep(3600)
    return ctx


FOREVER = Workflow("forever", [step(sleeps_forever)])


def forever_worker_main(url: str) -> None:
    Durable(url, [FOREVER], poll_interval_seconds=0.05).run_worker({"default": 2}, grace_seconds=1)


@pytest.mark.timeout(120)
def test_a_worker_exits_after_its_grace_period_whatever_its_steps_do(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = Durable(sqlite_url, [FOREVER])
    app.start(FOREVER, None)
    started = tmp_path / "started"
    proc = spawn(
        ["-m", "tests.integration.test_faults_process", "forever", sqlite_url],
        env={"DURABLE_FAULT_STARTED": str(started)},
        log=tmp_path / "worker.log",
    )
    try:
        wait_until(started.exists, 60, what="the step to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0  # grace 1 s: the sleeping step does not hold the process
    finally:
        proc.kill()
        app.close()


def explode(ctx: Any) -> Any:
    os._exit(17)  # kills whichever worker runs it


def slow_step(ctx: Any) -> Any:
    time.sleep(0.3)
    return ctx


POISON = Workflow("poison", [step(explode)])
INNOCENT = Workflow("innocent", [step(slow_step, name=f"s{i}") for i in range(3)])


def _supervised_app(url: str) -> Durable:
    return Durable(
        url,
        [POISON, INNOCENT],
        crash_budget=3,
        stale_timeout_seconds=1,
        heartbeat_interval_seconds=0.2,
        maintenance_interval_seconds=0.2,
        poll_interval_seconds=0.05,
    )


def supervised_worker_main(url: str) -> None:
    _supervised_app(url).run_worker({"default": 4}, grace_seconds=1)


@pytest.mark.timeout(240)
def test_a_step_that_kills_its_worker_is_failed_after_its_budget(
    db_url: str, tmp_path: Path
) -> None:
    app = _supervised_app(db_url)
    app.migrate()
    innocents = app.start_many(INNOCENT, [None] * 12)
    poison = app.start(POISON, None)
    args = ["-m", "tests.integration.test_faults_process", "supervised", db_url]
    workers = [spawn(args, log=tmp_path / f"w{i}.log") for i in range(2)]
    deaths = 0
    try:
        deadline = time.monotonic() + 180
        while app.get_execution(poison).status != "failed" or any(
            app.get_execution(r).status != "completed" for r in innocents
        ):
            assert time.monotonic() < deadline, "the poison run was never stopped"
            for i, proc in enumerate(workers):  # the supervisor: restart the dead
                if proc.poll() is not None:
                    assert proc.returncode == 17
                    deaths += 1
                    workers[i] = spawn(args, log=tmp_path / f"w{i}-{deaths}.log")
            time.sleep(0.1)
        failed = app.get_execution(poison)
        assert failed.error["message"] == (
            "the worker process died 3 times while running step `explode`"
        )
        assert deaths == 3  # then no more: the budget stops the loop
        for run_id in innocents:  # the runs that shared a dying worker are not failed for it
            assert app.get_execution(run_id).status == "completed"
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(30)
        app.close()


if __name__ == "__main__":
    role, rest = sys.argv[1], sys.argv[2:]
    {"forever": forever_worker_main, "supervised": supervised_worker_main}[role](*rest)
