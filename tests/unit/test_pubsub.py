"""The PubSub contract: kinds, order, topics, payloads, subscriptions, isolation."""

from __future__ import annotations

import threading

import pytest

from durable import Durable, Retry, Workflow, step
from durable.errors import PubSubNotConfiguredError
from durable.pubsub import EVENT_KINDS, MemoryBus, default_name
from durable.testing import TestApp


def ok(x):
    return x


def test_the_fourteen_kinds():
    assert len(EVENT_KINDS) == 14
    assert set(EVENT_KINDS) == {
        "workflow_started",
        "workflow_resumed",
        "workflow_waiting",
        "workflow_completed",
        "workflow_failed",
        "workflow_cancelled",
        "step_started",
        "step_completed",
        "step_failed",
        "step_waiting",
        "input_requested",
        "input_provided",
        "schedule_toggled",
        "schedule_triggered",
    }


def test_topics_are_scoped_per_instance():
    with Durable("memory://", name="shop") as app:
        ps = app.pubsub
        assert ps.workflows_topic() == "durable:shop:workflows"
        assert ps.workflow_topic("abc") == "durable:shop:workflow:abc"
        assert ps.schedules_topic() == "durable:shop:schedules"
        assert ps.inputs_topic() == "durable:shop:inputs"
        assert ps.default_name() == default_name("shop") == "shop.pubsub"
        assert isinstance(ps.server, MemoryBus)


def test_exact_sequence_for_a_successful_run():
    wf = Workflow("s", [step(ok, name="one"), step(ok, name="two")])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.kinds(run_id) == [
            "workflow_started",
            "workflow_resumed",
            "step_started",
            "step_completed",
            "step_started",
            "step_completed",
            "workflow_completed",
        ]
        by_topic = {e.topic for e in t.events if e.kind.startswith("workflow_")}
        assert by_topic == {t.app.pubsub.workflows_topic(), t.app.pubsub.workflow_topic(run_id)}
        step_topics = {e.topic for e in t.events if e.kind.startswith("step_")}
        assert step_topics == {t.app.pubsub.workflow_topic(run_id)}  # step events: run topic only


def test_exact_sequence_for_a_failing_run_with_retries():
    def boom(x):
        raise KeyError("k")

    wf = Workflow("f", [step(boom, retry=Retry(max_attempts=3, base=1))])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.advance(1)
        t.advance(2)
        events = t.events_of(run_id)
        assert [e.kind for e in events] == [
            "workflow_started",
            "workflow_resumed",
            "step_started",
            "step_failed",
            "workflow_resumed",
            "step_started",
            "step_failed",
            "workflow_resumed",
            "step_started",
            "step_failed",
            "workflow_failed",
        ]
        failed = [e.payload for e in events if e.kind == "step_failed"]
        assert [p["attempt"] for p in failed] == [1, 2, 3]
        assert failed[0]["error"] == {"type": "KeyError", "message": "'k'"}
        assert failed[0]["next_retry_at"] is not None and failed[2].get("next_retry_at") is None
        final = events[-1].payload
        assert final["status"] == "failed" and final["error"]["type"] == "KeyError"


def test_exact_sequence_for_a_cancelled_run():
    wf = Workflow("c", [step(ok)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.app.cancel(run_id, "stop")
        assert t.kinds(run_id) == ["workflow_started", "workflow_cancelled"]
        assert t.events_of(run_id)[-1].payload["status"] == "cancelled"


def test_payload_fields():
    wf = Workflow("pf", [step(ok)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        events = t.events_of(run_id)
        wf_payload = events[-1].payload
        assert set(wf_payload) >= {
            "id",
            "workflow_name",
            "status",
            "queue",
            "current_step",
            "parent_id",
            "started_at",
            "completed_at",
            "inserted_at",
            "updated_at",
        }
        assert wf_payload["completed_at"].endswith("Z")
        step_payload = next(e.payload for e in events if e.kind == "step_completed")
        assert set(step_payload) >= {
            "id",
            "workflow_id",
            "step_name",
            "step_type",
            "status",
            "attempt",
            "duration_ms",
            "started_at",
            "completed_at",
        }
        assert step_payload["workflow_id"] == run_id and step_payload["step_type"] == "step"


def test_subscribe_iterate_and_unsubscribe():
    wf = Workflow("sub", [step(ok)])
    with TestApp([wf]) as t:
        sub = t.app.subscribe(t.app.pubsub.workflows_topic())
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        kinds = [e.kind for e in sub.drain()]
        assert kinds == ["workflow_started", "workflow_resumed", "workflow_completed"]
        t.app.pubsub.unsubscribe(sub)
        t.app.start(wf, 2)
        assert sub.drain() == []
        assert list(sub) == []  # a closed subscription ends iteration
        del run_id


async def test_async_iteration():
    wf = Workflow("asub", [step(ok)])
    with Durable("memory://", workflows=[wf], poll_interval_seconds=0.05) as app:
        sub = app.subscribe(app.pubsub.workflows_topic())
        app.start_worker({"default": 1})
        await app.start_async(wf, 1)
        kinds = []
        async for event in sub:
            kinds.append(event.kind)
            if event.kind == "workflow_completed":
                break
        assert kinds == ["workflow_started", "workflow_resumed", "workflow_completed"]


def test_disabled_pubsub_is_silent_and_subscribe_says_so():
    wf = Workflow("off", [step(ok)])
    with TestApp([wf], pubsub=False) as t:
        assert t.app.pubsub.server is None
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "completed"
        with pytest.raises(PubSubNotConfiguredError, match="no pub/sub is configured"):
            t.app.subscribe(t.app.pubsub.workflows_topic())


def test_host_provided_bus_is_used():
    bus = MemoryBus("host")
    wf = Workflow("host", [step(ok)])
    with TestApp([wf], pubsub=bus) as t:
        assert t.app.pubsub.server is bus
        sub = bus.subscribe(t.app.pubsub.workflows_topic())
        t.app.start(wf, 1)
        assert [e.kind for e in sub.drain()] == ["workflow_started"]


def test_a_blocked_subscriber_costs_the_executor_nothing():
    wf = Workflow("slow", [step(ok, name=f"s{i}") for i in range(5)])
    with TestApp([wf]) as t:
        stuck = t.app.subscribe(t.app.pubsub.workflows_topic(), buffer=3)  # never read
        ids = [t.app.start(wf, i) for i in range(10)]
        t.run_until_idle()
        assert all(t.app.get_execution(i).status == "completed" for i in ids)
        assert len(stuck.drain()) == 3  # drop-oldest: only the newest stay
        assert stuck.dropped == 10 * 3 - 3


class _RaisingBus(MemoryBus):
    def publish(self, topic, event):
        raise RuntimeError("bus down")


def test_a_failing_bus_does_not_break_runs():
    wf = Workflow("rb", [step(ok)])
    with TestApp([wf], pubsub=_RaisingBus()) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "completed"


def test_subscription_get_times_out_and_threads_wake():
    bus = MemoryBus()
    sub = bus.subscribe("t")
    assert sub.get(timeout=0.01) is None
    got = []
    reader = threading.Thread(target=lambda: got.append(sub.get(timeout=5)))
    reader.start()
    from durable.pubsub import Event

    bus.publish("t", Event("workflow_started", {"id": "x"}, "t"))
    reader.join(5)
    assert got[0].kind == "workflow_started"
