"""foreach: a step per item, each checkpointed, with concurrency, retries, waits and compensations."""

from __future__ import annotations

import threading

import pytest

from durable import Retry, Workflow, foreach, step
from durable.errors import DefinitionError
from durable.testing import TestApp
from durable.wait import wait_for_event


def test_each_item_runs_once_and_results_keep_item_order(url):
    seen = []

    def square(n):
        seen.append(n)
        return n * n

    wf = Workflow(
        "sq", [foreach(square, items=lambda ctx: ctx["numbers"]), step(lambda c: c, name="after")]
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {"numbers": [3, 1, 2]})
        t.run_until_idle()
        result = t.app.get_execution(run_id).result
        assert result["__results__"] == [{"ok": 9}, {"ok": 1}, {"ok": 4}]
        assert seen == [3, 1, 2]  # concurrency 1: in order
        names = [s.step_name for s in t.app.list_steps(run_id)]
        assert names == ["square[0]", "square[1]", "square[2]", "foreach_1", "after"]


def test_into_merges_and_concurrency_runs_items_together(url):
    barrier = threading.Barrier(3, timeout=5)

    def fetch(url):
        barrier.wait()  # only passes if three items run at once
        return len(url)

    wf = Workflow(
        "fetch",
        [
            foreach(
                fetch, items=lambda c: c, concurrency=3, into=lambda ctx, r: sum(x["ok"] for x in r)
            )
        ],
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, ["a", "bb", "ccc"])
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == 6


def test_items_retry_on_their_own_and_finished_items_never_rerun(url):
    calls: dict[int, int] = {}

    def flaky(n):
        calls[n] = calls.get(n, 0) + 1
        if n == 2 and calls[n] < 3:
            raise ConnectionError("try again")
        return n

    wf = Workflow(
        "fl",
        [
            foreach(
                step(flaky, retry=Retry(max_attempts=3, base=2)), items=lambda c: c, concurrency=4
            )
        ],
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, [1, 2, 3])
        t.run_until_idle()
        t.advance(2)
        t.advance(4)
        assert t.app.get_execution(run_id).result["__results__"] == [
            {"ok": 1},
            {"ok": 2},
            {"ok": 3},
        ]
        assert calls == {1: 1, 2: 3, 3: 1}


def test_fail_fast_and_complete_all(url):
    def picky(n):
        if n == 0:
            raise ValueError("zero")
        return n

    ff = Workflow("ff", [foreach(picky, items=lambda c: c)])
    ca = Workflow(
        "ca", [foreach(step(picky, name="picky2"), items=lambda c: c, on_error="complete_all")]
    )
    with TestApp([ff, ca], url=url) as t:
        a, b = t.app.start(ff, [1, 0, 2]), t.app.start(ca, [1, 0])
        t.run_until_idle()
        fa = t.app.get_execution(a)
        assert fa.status == "failed" and fa.error["type"] == "ForEachStepError"
        assert "picky[1]" in fa.error["message"]
        assert [s.step_name for s in t.app.list_steps(a)] == [
            "picky[0]",
            "picky[1]",
        ]  # item 2 never ran
        assert t.app.get_execution(b).result["__results__"] == [
            {"ok": 1},
            {"error": {"type": "ValueError", "message": "zero"}},
        ]


def test_waits_inside_items(url):
    def approve(item):
        return wait_for_event(f"ok-{item}")

    wf = Workflow("wa", [foreach(approve, items=lambda c: c, concurrency=2)])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, ["x", "y"])
        t.run_until_idle()
        t.app.send_event(run_id, "ok-y", 2)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "waiting"
        t.app.send_event(run_id, "ok-x", 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result["__results__"] == [{"ok": 1}, {"ok": 2}]


def test_each_finished_item_is_compensated(url):
    undone = []

    def book(seat):
        return seat

    def unbook(seat):
        undone.append(seat)

    def pay(ctx):
        raise RuntimeError("declined")

    wf = Workflow("seats", [foreach(step(book, compensate=unbook), items=lambda c: c), step(pay)])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, ["1A", "1B"])
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "compensated"
        assert undone == ["1B", "1A"]
        comps = [s.step_name for s in t.app.list_steps(run_id) if s.step_type == "compensation"]
        assert comps == ["book.compensate[1]", "book.compensate[0]"]


def test_bad_items_fail_the_run_clearly_and_definitions_are_checked(url):
    wf = Workflow("bad", [foreach(step(lambda n: n, name="id"), items=lambda c: c["missing"])])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and e.error["type"] == "KeyError"
    with pytest.raises(DefinitionError, match="concurrency"):
        foreach(step(lambda n: n, name="x"), items=lambda c: c, concurrency=0)
    with pytest.raises(DefinitionError, match="items= must be callable"):
        foreach(step(lambda n: n, name="x"), items=[1, 2])  # type: ignore[arg-type]
    graph = Workflow("g", [foreach(step(lambda n: n, name="body"), items=lambda c: c)]).graph()
    assert {n["id"]: n["kind"] for n in graph["nodes"]}["foreach_1"] == "foreach"
