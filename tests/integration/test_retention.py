"""Retention applied by the maintenance loop, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from durable import Workflow, step
from durable.control import call_workflow
from durable.errors import ConfigurationError
from durable.retention import Retention, parse_age
from durable.testing import TestApp
from durable.wait import wait_for_event, wait_for_input


def child(n: Any) -> Any:
    print(f"child {n}")
    return n


def parent(n: Any) -> Any:
    return call_workflow("child", n)


def fails(_: Any) -> None:
    raise RuntimeError("no")


def waits(_: Any) -> Any:
    return wait_for_input("ok")


def long_parent(_: Any) -> Any:
    return call_workflow("slow_child", None)


def slow_child(_: Any) -> Any:
    return wait_for_event("go")


WORKFLOWS = [
    Workflow("child", [step(child)]),
    Workflow("parent", [step(parent)]),
    Workflow("fails", [step(fails)]),
    Workflow("waits", [step(waits)]),
    Workflow("long_parent", [step(long_parent)]),
    Workflow("slow_child", [step(slow_child)]),
]


def ids(t: TestApp) -> set[str]:
    return {e.id for e in t.app.list_executions(limit=1000).items}


def test_policy_deletes_trees_in_batches_and_keeps_the_living(db_url: str) -> None:
    policy = Retention(completed="30d", failed="90d", batch_size=2, interval_seconds=3600)
    with TestApp(WORKFLOWS, url=db_url, retention=policy) as t:
        parents = [t.app.start("parent", i) for i in range(3)]
        failed = t.app.start("fails")
        waiting = t.app.start("waits")
        t.run_until_idle()
        children = {c.id for p in parents for c in t.app.list_children(p)}
        assert len(children) == 3
        sent = t.app.send_event  # events and inputs kept for a waiting run
        t.app.provide_input(waiting, "early-answer", 1)
        long_parent = t.app.start("long_parent")
        t.run_until_idle()
        [slow] = t.app.list_children(long_parent)
        assert t.app.get_execution(slow.id).status.value == "waiting"
        before = ids(t)

        t.advance(days=29)
        assert ids(t) == before  # nothing old enough yet

        t.advance(days=2)  # completed runs are 31 days old, failed too (kept 90)
        after = ids(t)
        assert not (set(parents) | children) & after
        assert {failed, waiting, long_parent, slow.id} <= after
        for p in parents:
            with pytest.raises(Exception, match="no execution"):
                t.app.list_steps(p)

        t.advance(days=60)
        assert failed not in ids(t)
        assert {waiting, long_parent, slow.id} <= ids(t)  # still waiting: never deleted

        sent(slow.id, "go", 1)
        t.run_until_idle()
        assert t.app.get_execution(long_parent).status.value == "completed"
        t.advance(days=31)
        assert ids(t) == {waiting}
        pending = t.app.list_pending_inputs(execution_id=waiting)
        assert [p.input_name for p in pending] == ["ok"]


def test_finished_parent_with_a_running_child_is_kept(db_url: str) -> None:
    with TestApp(WORKFLOWS, url=db_url, retention={"completed": "1d"}) as t:
        root = t.app.start("child", "root")
        t.run_until_idle()
        late = t.app.engine.execution_row("slow_child", None, parent_id=root)
        t.app.engine.insert([late])
        t.run_until_idle()
        t.advance(days=2)
        assert {root, late["id"]} <= ids(t)
        t.app.send_event(late["id"], "go", None)
        t.run_until_idle()
        t.advance(days=2)
        assert not {root, late["id"]} & ids(t)


def test_configuration_errors() -> None:
    assert parse_age("1d12h") == 129600
    assert parse_age(90) == 90
    for bad in ("", "soon", "12x", "-1d", 0):
        with pytest.raises(ConfigurationError):
            parse_age(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown retention option"):
        Retention.from_option({"complete": "30d"})
    with pytest.raises(ConfigurationError, match="batch_size"):
        Retention(completed="1d", batch_size=0)
