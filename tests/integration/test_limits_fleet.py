"""Fleet-wide queue limits across real worker processes, on SQLite and PostgreSQL.

Every limited step records its span from its own clock (tests/support/limit_apps.py);
the assertions read those spans, not the engine's bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import Durable
from tests.support import limit_apps
from tests.support.procs import spawn, wait_until

pytestmark = pytest.mark.slow

APP = ["-m", "durable", "--app", "tests.support.limit_apps:app", "worker"]
QUEUES = ["-q", "default=4", "-q", "limited=4"]


class Fleet:
    def __init__(self, url: str, tmp: Path, limits: dict, step_sleep: float) -> None:
        self.tmp = tmp
        self.spans_file = str(tmp / "spans.log")
        self.env = {
            "DURABLE_TEST_URL": url,
            "DURABLE_TEST_LIMITS": json.dumps(limits),
            "DURABLE_SPANS": self.spans_file,
            "DURABLE_STEP_SLEEP": str(step_sleep),
        }
        os.environ.update(self.env)  # the test's own app is configured the same way
        self.app: Durable = limit_apps.app()
        self.app.migrate()
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, n: int = 1) -> list[subprocess.Popen[bytes]]:
        started = [
            spawn([*APP, *QUEUES], self.env, self.tmp / f"w{len(self.procs) + i}.log")
            for i in range(n)
        ]
        self.procs.extend(started)
        return started

    def start(self, inputs: list[dict]) -> list[str]:
        return self.app.start_many(limit_apps.LIMITED, inputs)

    def wait_completed(self, n: int, timeout: float = 90) -> None:
        def done() -> bool:
            return self.app.query.status_counts().get("completed", 0) == n

        wait_until(done, timeout, interval=0.2, what=f"{n} completed runs")

    def spans(self) -> list[tuple[str, str, float, float]]:
        return limit_apps.spans(self.spans_file)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait(30)
        self.app.close()
        for key in self.env:
            os.environ.pop(key, None)


@pytest.fixture
def fleet(db_url: str, tmp_path: Path) -> Iterator[callable]:
    made: list[Fleet] = []

    def make(limits: dict, step_sleep: float) -> Fleet:
        made.append(Fleet(db_url, tmp_path, limits, step_sleep))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_global_concurrency_holds_across_three_processes(fleet):
    f = fleet({"concurrency": 2}, step_sleep=0.25)
    f.spawn(3)
    f.start([{"n": i} for i in range(16)])
    f.wait_completed(16)
    spans = f.spans()
    assert len(spans) == 16
    assert limit_apps.peak_overlap([(s, e) for _, _, s, e in spans]) == 2


def test_per_key_concurrency_one_runs_a_key_alone_while_other_keys_proceed(fleet):
    f = fleet({"per_key": 1}, step_sleep=0.25)
    f.spawn(3)
    keys = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    f.start([{"n": i, "key": k} for i, k in enumerate(keys)])
    f.wait_completed(15)
    spans = f.spans()
    assert len(spans) == 15
    for key in "abc":
        mine = [(s, e) for _, k, s, e in spans if k == key]
        assert len(mine) == 5 and limit_apps.peak_overlap(mine) == 1, key
    assert limit_apps.peak_overlap([(s, e) for _, _, s, e in spans]) > 1  # keys overlap


def test_rate_limit_five_per_second_over_fifteen_runs(fleet):
    f = fleet({"rate": 5, "period_seconds": 1, "burst": 1}, step_sleep=0)
    f.spawn(3)
    f.start([{"n": i} for i in range(15)])
    f.wait_completed(15)
    starts = sorted(s for _, _, s, _ in f.spans())
    assert len(starts) == 15
    # a bucket of one token refilled at 5/s: at most 5 + 1 (the burst) in any 1 s window
    assert limit_apps.peak_in_window(starts, 1.0) <= 6
    assert starts[-1] - starts[0] >= 2.5  # 14 tokens after the first take 2.8 s


def test_a_sigkilled_worker_gives_its_slots_back_when_its_claims_are_recovered(fleet):
    f = fleet({"concurrency": 2}, step_sleep=1.0)
    doomed = f.spawn(1)[0]
    f.start([{"n": i} for i in range(6)])
    limits = f.app.engine.limits["limited"]

    def doomed_holds_both() -> bool:
        usage = f.app.storage.queue_usage("limited", limits, f.app.clock.now_ms())
        return usage["in_use"] == 2

    wait_until(doomed_holds_both, 30, what="the first worker to hold both slots")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    f.spawn(2)
    f.wait_completed(6)
    spans = f.spans()
    assert sorted({n for n, _, _, _ in spans}) == sorted(str(i) for i in range(6))
    assert limit_apps.peak_overlap([(s, e) for _, _, s, e in spans]) <= 2
    usage = f.app.storage.queue_usage("limited", limits, f.app.clock.now_ms())
    assert usage["in_use"] == 0
