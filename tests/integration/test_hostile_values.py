"""Hostile values at every API entry point, on SQLite and PostgreSQL alike:
refused with a SerializationError (or "not found" for lookups), nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from durable import Durable, Workflow, step
from durable.errors import DurableError, ExecutionNotFoundError, SerializationError
from durable.testing import TestApp
from durable.wait import wait_for_event, wait_for_input


def listen(ctx: Any) -> Any:
    return {"got": wait_for_event("go")}


def ask(ctx: Any) -> Any:
    return {"answer": wait_for_input("answer")}


def bad_event_name(ctx: Any) -> Any:
    return wait_for_event("go\x00now")


def bad_prompt(ctx: Any) -> Any:
    return wait_for_input("answer", prompt="ready?\x00")


def bad_wait_name(ctx: Any) -> Any:
    return wait_for_input("answer\udcff")


def bad_result(ctx: Any) -> Any:
    return {"file\udcff.txt": 1}


def long_sleep(ctx: Any) -> Any:
    from durable.wait import sleep

    sleep(float("inf"))


LISTEN = Workflow("listen", [step(listen)])
ASK = Workflow("ask", [step(ask)])
ECHO = Workflow("echo", [step(lambda x: x, name="echo")])
STEPS_THAT_FAIL = [
    Workflow("bad_event_name", [step(bad_event_name)]),
    Workflow("bad_prompt", [step(bad_prompt)]),
    Workflow("bad_wait_name", [step(bad_wait_name)]),
    Workflow("bad_result", [step(bad_result)]),
    Workflow("long_sleep", [step(long_sleep)]),
]
ALL = [LISTEN, ASK, ECHO, *STEPS_THAT_FAIL]

DEEP: Any = "leaf"
for _ in range(150):
    DEEP = {"d": DEEP}

BAD_VALUES = [
    pytest.param({"name\x00": 1}, id="nul-key"),
    pytest.param({"name": "a\x00b"}, id="nul-string"),
    pytest.param({"file": "report-\udcff.txt"}, id="lone-surrogate"),
    pytest.param({"k\ud800": 1}, id="surrogate-key"),
    pytest.param(DEEP, id="150-deep"),
    pytest.param("x" * 5000, id="too-large"),
    pytest.param({"n": float("nan")}, id="nan"),
]


@pytest.fixture
def t(db_url: str) -> Iterator[TestApp]:
    with TestApp(ALL, url=db_url, max_value_bytes=4096) as t:
        yield t


def _count(app: Durable) -> int:
    return len(app.list_executions(limit=1000).items)


@pytest.mark.parametrize("value", BAD_VALUES)
def test_start_refuses_and_stores_nothing(t: TestApp, value: Any) -> None:
    with pytest.raises(SerializationError, match=r"the input of workflow 'echo'"):
        t.app.start(ECHO, value)
    with pytest.raises(SerializationError):
        t.app.start_many(ECHO, [{"ok": 1}, value])
    assert _count(t.app) == 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"priority": 2**70}, "priority must be between"),
        ({"priority": -(2**63) - 1}, "priority must be between"),
        ({"priority": True}, "priority must be an integer"),
        ({"queue": "q\x00"}, "queue"),
        ({"queue": "q\udcff"}, "queue"),
    ],
)
def test_numbers_and_names_of_start_are_checked(
    t: TestApp, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(SerializationError, match=match):
        t.app.start(ECHO, 1, **options)
    assert _count(t.app) == 0


@pytest.mark.parametrize("value", BAD_VALUES)
def test_event_payloads_and_input_values_are_refused(t: TestApp, value: Any) -> None:
    listening = t.app.start(LISTEN, None)
    asking = t.app.start(ASK, None)
    t.run_until_idle()
    with pytest.raises(SerializationError, match="the payload of event 'go'"):
        t.app.send_event(listening, "go", value)
    with pytest.raises(SerializationError, match="the value of input 'answer'"):
        t.app.provide_input(asking, "answer", value)
    fresh = t.app.start(ASK, None)  # not waiting yet: the value would be buffered
    with pytest.raises(SerializationError):
        t.app.provide_input(fresh, "answer", value)
    t.run_until_idle()
    assert [e.event_name for e in t.app.list_pending_events()] == ["go"]
    assert len(t.app.list_pending_inputs()) == 2
    t.send_event(listening, "go", "fine")
    t.assert_status(listening, "completed")


@pytest.mark.parametrize("name", ["go\x00", "go\udcff", ""])
def test_names_from_outside_are_refused(t: TestApp, name: str) -> None:
    run_id = t.app.start(LISTEN, None)
    t.run_until_idle()
    with pytest.raises(SerializationError, match="event name"):
        t.app.send_event(run_id, name, 1)
    with pytest.raises(SerializationError, match="input name"):
        t.app.provide_input(run_id, name, 1)
    with pytest.raises(SerializationError, match="cancel reason"):
        t.app.cancel(run_id, "because\x00")
    assert t.app.get_execution(run_id).status == "waiting"


@pytest.mark.parametrize("wf", STEPS_THAT_FAIL, ids=lambda wf: wf.name)
def test_a_step_that_stores_a_bad_name_fails_the_same_everywhere(t: TestApp, wf: Workflow) -> None:
    run_id = t.app.start(wf, None)
    t.run_until_idle()
    run = t.assert_status(run_id, "failed")
    assert run.error is not None
    assert run.error["type"] in ("SerializationError", "DurableError")
    assert t.app.list_pending_inputs() == [] and t.app.list_pending_events() == []


@pytest.mark.parametrize("bad_id", ["a\x00b", "\udcff", "x" * 5000])
def test_lookups_with_unstorable_ids_are_not_found(t: TestApp, bad_id: str) -> None:
    with pytest.raises(ExecutionNotFoundError):
        t.app.get_execution(bad_id)
    with pytest.raises(ExecutionNotFoundError):
        t.app.send_event(bad_id, "go", 1)
    with pytest.raises(ExecutionNotFoundError):
        t.app.query.resolve_id(bad_id)


def test_id_prefixes_are_literal_and_never_empty(t: TestApp) -> None:
    ids = [t.app.start(ECHO, i) for i in range(3)]
    for wildcard in ("%", "_", "\\", "%%", ids[0][:4] + "%", "_" + ids[0][1:]):
        with pytest.raises(ExecutionNotFoundError):
            t.app.query.resolve_id(wildcard)
        assert t.app.query.list_executions(id_prefix=wildcard).items == []
    with pytest.raises(DurableError, match="empty"):
        t.app.query.resolve_id("")
    with pytest.raises(DurableError, match="empty"):
        t.app.query.list_executions(id_prefix="")
    assert t.app.query.resolve_id(ids[2]) == ids[2]
    assert [e.id for e in t.app.query.list_executions(id_prefix=ids[1]).items] == [ids[1]]
    upper = ids[1].upper()
    if upper != ids[1]:  # literal: case matters on both backends (SQLite's LIKE ignores it)
        with pytest.raises(ExecutionNotFoundError):
            t.app.query.resolve_id(upper)


def test_filters_with_unstorable_text_are_refused_clearly(t: TestApp) -> None:
    t.app.start(ECHO, 1)
    with pytest.raises(SerializationError):
        t.app.list_executions(workflow="echo\x00")
    with pytest.raises(SerializationError):
        t.app.list_pending_inputs(name="\udcff")


def test_the_size_limit_applies_to_step_results(t: TestApp) -> None:
    big = Workflow("big", [step(lambda _: "y" * 10_000, name="grow")])
    t.app.register(big)
    run_id = t.app.start(big, None)
    t.run_until_idle()
    run = t.assert_status(run_id, "failed")
    assert "too large" in json.dumps(run.error)
