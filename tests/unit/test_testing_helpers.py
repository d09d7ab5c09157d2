"""The testing helpers users get (durable.testing), used as a user would."""

from __future__ import annotations

from typing import Any

import pytest

from durable import Retry, Workflow, days, hours, step
from durable.testing import FakeClock, TestApp
from durable.wait import sleep, wait_for_approval, wait_for_event


def order_workflow() -> Workflow:
    def reserve(order: dict[str, Any]) -> dict[str, Any]:
        print(f"reserving {order['id']}")
        return {**order, "reserved": True}

    def approve(ctx: dict[str, Any]) -> dict[str, Any]:
        decision = wait_for_approval(
            "manager", prompt="Ship it?", timeout=days(3), timeout_value="rejected"
        )
        return {**ctx, "decision": decision}

    def ship(ctx: dict[str, Any]) -> dict[str, Any]:
        sleep(hours(1))
        return {**ctx, "shipped": ctx["decision"] == "approved"}

    return Workflow("order", [step(reserve), step(approve), step(ship)])


def test_inputs_time_travel_and_history() -> None:
    wf = order_workflow()
    with TestApp([wf]) as t:
        run = t.run(wf, {"id": "o-1"})
        assert run.status.value == "waiting"
        assert t.completed_steps(run.id) == ["reserve"]
        assert t.logs(run.id, "reserve") == ["reserving o-1"]
        assert [p.input_name for p in t.app.list_pending_inputs(execution_id=run.id)] == ["manager"]
        run = t.provide_input(run.id, "manager", "approved")
        assert run.status.value == "waiting"  # sleeping an hour in ship
        t.advance(minutes=59)
        t.assert_status(run.id, "waiting")
        t.advance(minutes=1)
        done = t.assert_status(run.id, "completed")
        assert done.result == {
            "id": "o-1",
            "reserved": True,
            "decision": "approved",
            "shipped": True,
        }
        assert t.history(run.id) == [
            ("reserve", "completed"),
            ("approve", "waiting"),
            ("approve", "completed"),
            ("ship", "waiting"),
            ("ship", "completed"),
        ]
        kinds = t.kinds(run.id)
        assert kinds[0] == "workflow_started" and kinds[-1] == "workflow_completed"
        assert "input_requested" in kinds and "input_provided" in kinds


def test_timeouts_fire_when_time_is_advanced() -> None:
    wf = order_workflow()
    with TestApp([wf], clock=FakeClock()) as t:
        run = t.run(wf, {"id": "o-2"})
        t.advance(hours=72)
        t.advance(hours=1)
        done = t.assert_status(run.id, "completed")
        assert done.result["decision"] == "rejected" and done.result["shipped"] is False


def test_events_retries_and_assertion_messages(sqlite_url: str) -> None:
    calls = {"n": 0}

    def listen(ctx: Any) -> Any:
        return wait_for_event("paid")

    def flaky(ctx: Any) -> Any:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("try again")
        return ctx

    retry = Retry(max_attempts=3, backoff="constant", base=10.0, jitter=False)
    wf = Workflow("pay", [step(listen), step(flaky, retry=retry)])
    with TestApp([wf], url=sqlite_url) as t:
        run = t.run(wf)
        run = t.send_event(run.id, "paid", {"amount": 5})
        assert run.status.value == "pending"  # first attempt failed; retry in 10s
        with pytest.raises(AssertionError, match=r"expected completed.*flaky"):
            t.assert_status(run.id, "completed")
        t.advance(seconds=10)
        t.advance(seconds=10)
        assert t.assert_status(run.id, "completed").result == {"amount": 5}
        assert [s for s, status in t.history(run.id) if s == "flaky"] == ["flaky"] * 3
        failed = [e for e in t.events_of(run.id) if e.kind == "step_failed"]
        assert len(failed) == 2 and failed[0].payload["error"]["type"] == "ConnectionError"
