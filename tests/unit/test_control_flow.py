"""Branch, decisions, parallel, compensations, child workflows and run control on a FakeClock."""

from __future__ import annotations

import asyncio
import threading

from durable import Retry, Workflow, branch, decision, goto, parallel, step
from durable.control import call_workflow, cancel, fail, snooze, start_workflow
from durable.errors import ChildWorkflowError, DurableError
from durable.testing import TestApp
from durable.wait import wait_for_event


def tag(name):
    def body(ctx):
        return {**ctx, "path": [*ctx.get("path", []), name]}

    body.__name__ = name
    return body


def test_branch_runs_the_matching_case_then_continues(url):
    wf = Workflow(
        "b",
        [
            step(tag("start")),
            branch(
                on=lambda ctx: ctx["kind"],
                cases={"gold": [step(tag("vip")), step(tag("gift"))], "basic": [step(tag("std"))]},
                default=[step(tag("other"))],
            ),
            step(tag("end")),
        ],
    )
    with TestApp([wf], url=url) as t:
        gold, basic, odd = (t.app.start(wf, {"kind": k}) for k in ("gold", "basic", "odd"))
        t.run_until_idle()
        assert t.app.get_execution(gold).result["path"] == ["start", "vip", "gift", "end"]
        assert t.app.get_execution(basic).result["path"] == ["start", "std", "end"]
        assert t.app.get_execution(odd).result["path"] == ["start", "other", "end"]
        taken = next(
            e
            for e in t.events_of(gold)
            if e.payload.get("step_type") == "branch" and e.kind == "step_completed"
        )
        assert taken.payload["branch"] == {"value": "gold", "case": "gold"}
        assert taken.payload["next_step"] == "vip"


def test_branch_without_match_or_default_fails_naming_the_value(url):
    wf = Workflow("nb", [branch(on=lambda ctx: ctx, cases={1: [step(tag("one"))]})])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 7)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and e.error["type"] == "NoBranchMatchError"
        assert "no case matches 7" in e.error["message"]


def test_decisions_jump_forward_and_chain(url):
    def route(ctx):
        return goto("express", ctx) if ctx["fast"] else ctx

    def express(ctx):
        return goto("done", {**ctx, "express": True})

    wf = Workflow(
        "d",
        [
            decision(route, targets=["express"]),
            step(tag("slow1")),
            step(tag("slow2")),
            decision(express, targets=["done"]),
            step(tag("extra")),
            step(tag("done")),
        ],
    )
    with TestApp([wf], url=url) as t:
        fast, slow = t.app.start(wf, {"fast": True}), t.app.start(wf, {"fast": False})
        t.run_until_idle()
        assert t.app.get_execution(fast).result == {"fast": True, "express": True, "path": ["done"]}
        assert t.app.get_execution(slow).result["path"] == ["slow1", "slow2", "done"]
        steps = [s.step_name for s in t.app.list_steps(fast)]
        assert steps == ["route", "express", "done"]


def test_an_undeclared_backward_jump_fails_the_run_clearly(url):
    def back(ctx):
        return goto("first", ctx)

    wf = Workflow("bj", [step(tag("first")), step(back)])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and e.error["type"] == "InvalidJumpError"
        assert "only jump forward" in e.error["message"]


def test_parallel_collects_results_under___results__(url):
    async def slow_async(ctx):
        await asyncio.sleep(0.01)
        return "async done"

    def sync_one(ctx):
        return ctx["n"] * 2

    wf = Workflow(
        "p", [parallel([step(slow_async), step(sync_one)]), step(lambda c: c, name="after")]
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {"n": 21})
        t.run_until_idle()
        result = t.app.get_execution(run_id).result
        assert result["n"] == 21
        assert result["__results__"] == {"slow_async": {"ok": "async done"}, "sync_one": {"ok": 42}}
        done = next(e for e in t.events_of(run_id) if e.payload.get("step_type") == "parallel")
        assert done.payload["parallel_steps"] == ["slow_async", "sync_one"]


def test_parallel_runs_concurrently_and_into_merges(url):
    both_in = threading.Barrier(2, timeout=5)

    def left(ctx):
        both_in.wait()  # deadlocks unless both run at once
        return 1

    def right(ctx):
        both_in.wait()
        return 2

    wf = Workflow(
        "pc",
        [parallel([left, right], into=lambda ctx, r: {"sum": r["left"]["ok"] + r["right"]["ok"]})],
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == {"sum": 3}


def test_parallel_fail_fast_cancels_siblings(url):
    started = threading.Event()
    cancelled = threading.Event()

    def bad(ctx):
        started.wait(5)
        raise ValueError("broken")

    async def long(ctx):
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    wf = Workflow("ff", [parallel([bad, long], on_error="fail_fast"), step(tag("after"))])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and e.error["type"] == "ParallelStepError"
        assert "parallel step 'bad' failed: broken" in e.error["message"]
        assert cancelled.wait(5)
        statuses = {s.step_name: s.status for s in t.app.list_steps(run_id)}
        assert statuses == {"bad": "failed", "long": "cancelled"}


def test_parallel_complete_all_keeps_errors_in_results(url):
    def bad(ctx):
        raise ValueError("nope")

    def good(ctx):
        return "yes"

    wf = Workflow("ca", [parallel([bad, good], on_error="complete_all")])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        results = t.app.get_execution(run_id).result["__results__"]
        assert results == {
            "bad": {"error": {"type": "ValueError", "message": "nope"}},
            "good": {"ok": "yes"},
        }


def test_parallel_children_are_checkpointed_and_retried_on_their_own(url):
    runs = {"steady": 0, "flaky": 0}

    def steady(ctx):
        runs["steady"] += 1
        return "s"

    def flaky(ctx):
        runs["flaky"] += 1
        if runs["flaky"] < 3:
            raise ConnectionError("again")
        return "f"

    wf = Workflow("pr", [parallel([steady, step(flaky, retry=Retry(max_attempts=3, base=5))])])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "pending"
        t.advance(5)
        t.advance(10)
        assert t.app.get_execution(run_id).result["__results__"] == {
            "steady": {"ok": "s"},
            "flaky": {"ok": "f"},
        }
        assert runs == {"steady": 1, "flaky": 3}  # the finished child never ran again


def test_waits_inside_parallel_steps(url):
    def wait_a(ctx):
        return wait_for_event("a")

    def wait_b(ctx):
        return wait_for_event("b")

    wf = Workflow("pw", [parallel([wait_a, wait_b])])
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "waiting"
        t.app.send_event(run_id, "b", 2)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "waiting"
        t.app.send_event(run_id, "a", 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result["__results__"] == {
            "wait_a": {"ok": 1},
            "wait_b": {"ok": 2},
        }


def test_compensations_run_in_reverse_with_the_step_results(url):
    undone = []

    def book_flight(ctx):
        return {**ctx, "flight": "F1"}

    def book_hotel(ctx):
        return {**ctx, "hotel": "H1"}

    def cancel_flight(ctx):
        undone.append(("flight", ctx["flight"]))

    def cancel_hotel(ctx):
        undone.append(("hotel", ctx["hotel"]))

    def pay(ctx):
        raise RuntimeError("card declined")

    wf = Workflow(
        "trip",
        [
            step(book_flight, compensate=cancel_flight),
            step(book_hotel, compensate=cancel_hotel),
            step(pay),
        ],
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "compensated"
        assert e.error["message"] == "card declined"  # the original error is kept
        assert undone == [("hotel", "H1"), ("flight", "F1")]
        comps = [s for s in t.app.list_steps(run_id) if s.step_type == "compensation"]
        assert [c.step_name for c in comps] == ["book_hotel.compensate", "book_flight.compensate"]
        events = t.events_of(run_id)
        comp_events = [
            e.payload["compensates"]
            for e in events
            if e.payload.get("step_type") == "compensation" and e.kind == "step_completed"
        ]
        assert comp_events == ["book_hotel", "book_flight"]
        assert (
            events[-1].kind == "workflow_failed" and events[-1].payload["status"] == "compensated"
        )


def test_compensation_retries_then_compensation_failed(url):
    attempts = []

    def charge(ctx):
        return ctx

    def refund(ctx):
        attempts.append(1)
        raise ConnectionError("bank down")

    def fail_after(ctx):
        raise ValueError("boom")

    wf = Workflow(
        "cf",
        [
            step(charge, compensate=step(refund, retry=Retry(max_attempts=2, base=3))),
            step(fail_after),
        ],
    )
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "compensating"
        t.advance(3)
        e = t.app.get_execution(run_id)
        assert e.status == "compensation_failed" and len(attempts) == 2


def child_double(ctx):
    return ctx * 2


def child_broken(ctx):
    raise KeyError("missing")


CHILD = Workflow("child_double", [step(child_double)])
BROKEN = Workflow("child_broken", [step(child_broken)])


def test_call_workflow_waits_for_the_childs_result(url):
    def parent(ctx):
        return call_workflow(CHILD, ctx) + 1

    wf = Workflow("parent", [step(parent)])
    with TestApp([wf, CHILD], url=url) as t:
        run_id = t.app.start(wf, 20)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == 41
        [child] = t.app.list_children(run_id)
        assert child.parent_id == run_id and child.result == 40
        started = next(
            e for e in t.events if e.kind == "workflow_started" and e.payload["id"] == child.id
        )
        assert started.payload["parent_id"] == run_id


def test_call_workflow_refuses_a_timeout_that_is_not_seconds(url):
    seen = []

    def parent(ctx):
        for bad in ("soon", -1, True, float("nan")):
            try:
                call_workflow(CHILD, ctx, timeout=bad)
            except DurableError as exc:
                seen.append(str(exc))
        return len(seen)

    wf = Workflow("bad_timeout", [step(parent)])
    with TestApp([wf, CHILD], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == 4
        assert t.app.list_children(run_id) == []
        assert all("timeout must be a non-negative number of seconds" in m for m in seen)


def test_a_childs_failure_reaches_the_parent_as_an_error_it_can_handle(url):
    def parent(ctx):
        try:
            return call_workflow(BROKEN, ctx)
        except ChildWorkflowError as exc:
            return {"handled": exc.status, "type": exc.error["type"]}

    wf = Workflow("handles", [step(parent)])
    with TestApp([wf, BROKEN], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == {"handled": "failed", "type": "KeyError"}


def test_start_workflow_is_fire_and_forget_and_cancel_cascades(url):
    def waits_forever(ctx):
        return wait_for_event("never")

    forever = Workflow("forever", [step(waits_forever)])

    def parent(ctx):
        child_id = start_workflow(forever, ctx)
        call_workflow(forever, ctx)
        return child_id

    wf = Workflow("fanout", [step(parent)])
    with TestApp([wf, forever], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        children = t.app.list_children(run_id)
        assert len(children) == 2 and all(c.status == "waiting" for c in children)
        t.app.cancel(run_id, "stop all")
        assert all(c.status == "cancelled" for c in t.app.list_children(run_id))
        assert t.app.list_pending_events() == []


def test_child_workflows_inside_parallel_steps(url):
    def a(ctx):
        return call_workflow(CHILD, 1)

    def b(ctx):
        return call_workflow(CHILD, 2)

    wf = Workflow("pchild", [parallel([a, b], into=lambda ctx, r: r["a"]["ok"] + r["b"]["ok"])])
    with TestApp([wf, CHILD], url=url) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == 6


def test_snooze_fail_and_cancel_from_inside_a_step(url):
    calls = []

    def sleepy(ctx):
        calls.append(1)
        if len(calls) == 1:
            snooze(30)
        return "awake"

    def give_up(ctx):
        fail("not worth it")

    def stop(ctx):
        cancel("customer left")

    sw, fw, cw = (
        Workflow(f.__name__, [step(f, retry=Retry(max_attempts=5))])
        for f in (sleepy, give_up, stop)
    )
    with TestApp([sw, fw, cw], url=url) as t:
        rs, rf, rc = (t.app.start(w, {}) for w in (sw, fw, cw))
        t.run_until_idle()
        assert t.app.get_execution(rs).status == "waiting"
        t.advance(30)
        assert t.app.get_execution(rs).result == "awake"
        assert [s.attempt for s in t.app.list_steps(rs)] == [1, 1]  # a snooze is not an attempt
        f = t.app.get_execution(rf)
        assert f.status == "failed" and f.error == {"type": "Failed", "message": "not worth it"}
        assert len(t.app.list_steps(rf)) == 1  # no retries
        c = t.app.get_execution(rc)
        assert c.status == "cancelled" and c.error["message"] == "customer left"


def test_saga_with_parallel_block_and_child_workflow(url):
    undone = []

    def reserve(ctx):
        return {**ctx, "reserved": True}

    def release(ctx):
        undone.append("release")

    def notify(ctx):
        return "sent"

    def quote(ctx):
        return call_workflow(CHILD, 5)

    def charge(ctx):
        raise RuntimeError("declined")

    wf = Workflow(
        "saga",
        [step(reserve, compensate=release), parallel([notify, quote]), step(charge)],
    )
    with TestApp([wf, CHILD], url=url) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "compensated" and undone == ["release"]
        assert len(t.app.list_children(run_id)) == 1
