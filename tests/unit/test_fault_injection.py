"""A storage write failing once, at each write point of a run, before or after its commit.

Every checkpoint a run writes is made to fail once in turn: either nothing was
written ("before": the statement never ran) or the commit went through and the
error came after it ("after": a connection dropped during COMMIT). Whatever
the point, the run must end in its right terminal state with its right result,
with exactly one completed record per step, no terminal status ever rewritten,
no claim left behind, and a step body run again only for the attempt the fault
interrupted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from durable import Retry, Workflow, parallel, step
from durable.errors import StorageError
from durable.models import TERMINAL_STATUSES
from durable.storage import Checkpoint
from durable.testing import TestApp

RUNS: Counter[str] = Counter()


def _body(name: str, fail_times: int = 0) -> Callable[[Any], Any]:
    def body(ctx: Any) -> Any:
        RUNS[name] += 1
        if RUNS[name] <= fail_times:
            raise RuntimeError(f"{name} fails on purpose")
        return {**ctx, name: True}

    body.__name__ = name
    return body


def _boom(ctx: Any) -> Any:
    RUNS["boom"] += 1
    raise RuntimeError("boom")


def _undo(ctx: Any) -> None:
    RUNS["undo"] += 1


PLAIN = Workflow("plain", [step(_body("a")), step(_body("b")), step(_body("c"))])
RETRIED = Workflow(
    "retried",
    [step(_body("r", fail_times=1), retry=Retry(max_attempts=2, base=1)), step(_body("z"))],
)
PAR = Workflow("par", [parallel([step(_body("p1")), step(_body("p2"))]), step(_body("after"))])
SAGA = Workflow("saga", [step(_body("s1"), compensate=_undo), step(_boom)])

CASES = [
    (PLAIN, "completed", ["a", "b", "c"]),
    (RETRIED, "completed", ["r", "z"]),
    (PAR, "completed", ["p1", "p2", "parallel_1", "after"]),
    (SAGA, "compensated", ["s1", "s1.compensate"]),
]


class _Faults:
    """Wraps ``storage.save``: records what committed, fails the n-th call once."""

    def __init__(self, t: TestApp, fail_at: int | None, mode: str) -> None:
        self.real = t.app.storage.save
        self.fail_at, self.mode = fail_at, mode
        self.calls = 0
        self.statuses: list[str] = []
        t.app.storage.save = self.save  # type: ignore[method-assign]

    def save(self, cp: Checkpoint) -> bool:
        self.calls += 1
        failing = self.calls == self.fail_at
        if failing and self.mode == "before":
            raise StorageError("injected: the connection dropped before the commit")
        ok = self.real(cp)
        if ok:
            self.statuses.append(cp.execution["status"])
        if failing:
            raise StorageError("injected: the connection dropped during COMMIT")
        return ok


def _run(wf: Workflow, fail_at: int | None, mode: str) -> tuple[TestApp, str, _Faults]:
    RUNS.clear()
    t = TestApp([wf])
    faults = _Faults(t, fail_at, mode)
    run_id = t.app.start(wf, {})
    for _ in range(10):  # retries and crash releases wake a little later
        t.advance(5)
    return t, run_id, faults


def _check(t: TestApp, run_id: str, faults: _Faults, status: str, names: list[str]) -> None:
    execution = t.assert_status(run_id, status)
    row = t.app.storage.get_execution(run_id)
    assert row is not None and row["lock_token"] is None  # no claim left behind
    assert row["crashes"] == 0  # a database fault costs the run nothing
    done = Counter(s.step_name for s in t.app.list_steps(run_id) if s.status == "completed")
    assert sorted(done) == sorted(names) and set(done.values()) == {1}
    terminal = [s for s in faults.statuses if s in TERMINAL_STATUSES]
    assert terminal == [status]  # written once, never rewritten
    assert faults.statuses[-1] == status
    assert execution.status == status


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize(("wf", "status", "names"), CASES, ids=[c[0].name for c in CASES])
def test_a_write_failing_once_at_any_point_loses_and_repeats_nothing(
    wf: Workflow, status: str, names: list[str], mode: str
) -> None:
    t, run_id, clean = _run(wf, None, mode)
    _check(t, run_id, clean, status, names)
    expected_result = t.app.get_execution(run_id).result
    baseline = Counter(RUNS)
    t.close()
    assert clean.calls >= 2
    for point in range(1, clean.calls + 1):
        t, run_id, faults = _run(wf, point, mode)
        try:
            _check(t, run_id, faults, status, names)
            assert t.app.get_execution(run_id).result == expected_result
            extra = RUNS - baseline
            # a body runs again only for an attempt the fault interrupted: the one whose
            # commit was lost, and in a parallel block the siblings still running then
            interrupted = 2 if wf is PAR else (1 if mode == "before" else 0)
            assert sum(extra.values()) <= interrupted, (point, extra)
        finally:
            t.close()
