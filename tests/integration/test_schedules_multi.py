"""Exactly once across processes: three workers on one database fire a one-second
interval schedule once per tick, none missing, also when one is SIGKILLed."""

from __future__ import annotations

import itertools
import signal
import subprocess
from pathlib import Path

import pytest

from durable import Durable, Workflow, step
from tests.support.procs import spawn, wait_until

WORKER = """
import sys
from durable import Durable, Workflow, step

app = Durable(sys.argv[1], [Workflow("tick", [step(lambda x: x, name="noop")])], pubsub=False)
app.schedules.interval_seconds = 0.2
app.run_worker(grace_seconds=2)
"""

TICK = Workflow("tick", [step(lambda x: x, name="noop")])


def _ticks(app: Durable) -> list[int]:
    page = app.list_executions(schedule="fast", limit=1000)
    return sorted(int(e.schedule_tick_at.timestamp() * 1000) for e in page.items)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kill_one", [False, True], ids=["three", "one-killed"])
def test_three_schedulers_fire_each_tick_once(db_url: str, tmp_path: Path, kill_one: bool) -> None:
    app = Durable(db_url, [TICK], pubsub=False)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    app.schedules.create("fast", "tick", every=1, catch_up="all")
    procs = [spawn([str(script), db_url], log=tmp_path / f"w{i}.log") for i in range(3)]
    try:
        wait_until(lambda: len(_ticks(app)) >= 3, 30, what="the first runs")
        if kill_one:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            seen = len(_ticks(app))
            wait_until(lambda: len(_ticks(app)) >= seen + 4, 30, what="runs after the kill")
        else:
            wait_until(lambda: len(_ticks(app)) >= 7, 30, what="seven runs")
    finally:
        _stop(procs)
    ticks = _ticks(app)
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks)), "a tick is missing"
    first = app.schedules.get("fast").created_at.timestamp() * 1000
    assert ticks[0] == (int(first) // 1000 + 1) * 1000  # from the first tick after creation
    app.close()
