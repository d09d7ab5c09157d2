"""Keyed starts (the caller's own run id), starts by name from a client app, and the
deterministic ids of children."""

from __future__ import annotations

import pytest

from durable import Durable, Workflow, step
from durable.control import start_workflow
from durable.errors import DurableError, ExecutionIdConflictError, WorkflowNotFoundError
from durable.ids import MAX_EXECUTION_ID_LENGTH, child_id
from durable.testing import TestApp, run_until_idle

charges: list[str] = []


def charge(order):
    charges.append(order["id"])
    return {"charged": order["id"]}


ORDER = Workflow("order", [step(charge)])
OTHER = Workflow("other", [step(lambda x: x, name="same")])


def test_same_id_twice_is_one_run():
    with TestApp([ORDER, OTHER]) as t:
        first = t.app.start(ORDER, {"id": "o-1"}, id="order-o-1")
        again = t.app.start(ORDER, {"id": "o-1"}, id="order-o-1")
        assert first == again == "order-o-1"
        t.run_until_idle()
        assert t.app.get_execution("order-o-1").result == {"charged": "o-1"}
        assert t.kinds("order-o-1").count("workflow_started") == 1
        assert t.app.start("order", {"id": "o-1"}, id="order-o-1") == "order-o-1"  # done: still one
        assert len(t.app.list_executions(workflow="order").items) == 1


def test_same_id_under_another_workflow_is_refused_and_nothing_stored():
    with TestApp([ORDER, OTHER]) as t:
        t.app.start(ORDER, {"id": "o-1"}, id="k-1")
        with pytest.raises(ExecutionIdConflictError) as info:
            t.app.start_many(OTHER, [1, 2], ids=["k-2", "k-1"])
        message = str(info.value)
        assert "'k-1'" in message and "'order'" in message and "'other'" in message
        assert [e.id for e in t.app.list_executions().items] == ["k-1"]  # k-2 rolled back


def test_start_many_with_ids_returns_existing_and_new():
    with TestApp([ORDER]) as t:
        t.app.start(ORDER, {"id": "a"}, id="a")
        ids = t.app.start_many(ORDER, [{"id": "a"}, {"id": "b"}, {"id": "b"}], ids=["a", "b", "b"])
        assert ids == ["a", "b", "b"]
        assert sorted(e.id for e in t.app.list_executions().items) == ["a", "b"]
        with pytest.raises(DurableError, match="one id per input"):
            t.app.start_many(ORDER, [1, 2], ids=["x"])


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "must not be empty"),
        (42, "must be a string, got int 42"),
        ("x" * (MAX_EXECUTION_ID_LENGTH + 1), f"at most {MAX_EXECUTION_ID_LENGTH} characters"),
        ("a\nb", "control characters"),
    ],
)
def test_bad_ids_are_refused_and_nothing_stored(bad, says):
    with TestApp([ORDER]) as t:
        with pytest.raises(DurableError, match=says):
            t.app.start(ORDER, {"id": "o"}, id=bad)
        assert t.app.list_executions().items == []


def test_a_client_app_starts_by_name_and_a_worker_runs_it(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    with Durable(url) as client:  # no workflows: it has not the code
        run_id = client.start("order", {"id": "o-7"}, id="order-o-7")
        assert client.start("order", {"id": "o-7"}, id="order-o-7") == run_id
        e = client.get_execution(run_id)
        assert e.status == "pending" and e.queue == "default" and e.current_step is None
        with pytest.raises(DurableError, match="registers no workflows"):
            client.worker()
        with Durable(url, workflows=[ORDER]) as service:
            run_until_idle(service)
        assert client.get_execution(run_id).result == {"charged": "o-7"}
        assert client.list_executions(workflow="order").items[0].id == run_id


def test_an_app_with_workflows_refuses_an_unknown_name():
    with TestApp([ORDER]) as t, pytest.raises(WorkflowNotFoundError, match="'ordr'"):
        t.app.start("ordr", {})


def _spawner(ctx):
    return {"child": start_workflow("order", {"id": "kid"})}


def test_children_get_deterministic_ids():
    parent = Workflow("parent", [step(_spawner, name="spawn")])
    with TestApp([parent, ORDER]) as t:
        a = t.app.start(parent, {})
        b = t.app.start(parent, {})
        t.run_until_idle()
        child_a = t.app.get_execution(a).result["child"]
        child_b = t.app.get_execution(b).result["child"]
        assert child_a != child_b
        assert child_a == child_id(a, "spawn", 0)  # (parent, step, call number)
        assert t.app.get_execution(child_a).parent_id == a
