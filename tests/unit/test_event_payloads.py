"""The one home of event payloads (durable.pubsub.payloads) against the README's
table, and against the payloads the engine really emits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from durable import Retry, Workflow, branch, decision, foreach, goto, parallel, step
from durable.control import cancel
from durable.pubsub import EVENT_KINDS, Event, wire
from durable.pubsub.payloads import (
    KINDS,
    STEP_FIELDS,
    WORKFLOW_FIELDS,
)
from durable.testing import TestApp
from durable.wait import sleep, wait_for_input

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCHEMA = ROOT / "docs" / "event-message.schema.json"
TOPIC_WORDS = {"workflows": "workflows", "run": "run", "inputs": "inputs", "schedules": "schedules"}


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### The 14 event kinds and their payloads")
    return text[start : text.index("\n## ", start)]


def _ticks(cell: str) -> list[str]:
    """The names in backticks, split on commas (`a, b` lists several)."""
    names: list[str] = []
    for chunk in re.findall(r"`([^`]+)`", cell):
        names += [n.strip().split(":")[0] for n in chunk.split(",")]
    return names


def _table() -> list[list[str]]:
    rows = [line for line in _section().splitlines() if line.startswith("| `")]
    cells = (re.split(r"(?<!\\)\|", row.strip().strip("|")) for row in rows)  # \| is no border
    return [[c.strip() for c in row] for row in cells]


def _family_fields(label: str) -> list[str]:
    match = re.search(rf"\*{label} payload\*: ((?:`[^`]+`[^`*]*?)+)(?:\. |\.$)", _section(), re.M)
    assert match, f"the README defines no *{label} payload*"
    return _ticks(match.group(1))


def test_readme_names_the_fourteen_kinds_in_order_with_their_topics() -> None:
    table = _table()
    assert [_ticks(row[0])[0] for row in table] == list(EVENT_KINDS)
    for row in table:
        kind = _ticks(row[0])[0]
        topics = tuple(t.strip() for t in row[1].split(","))
        assert topics == tuple(TOPIC_WORDS[t] for t in KINDS[kind].topics), kind


def test_readme_family_payloads_match_the_builders() -> None:
    assert _family_fields("workflow") == list(WORKFLOW_FIELDS)
    step_fields = _family_fields("step")
    # "`id` (of the attempt), `workflow_id, step_name, step_type` (`step`, ...)": the
    # step types in the parenthesis are values, not fields
    assert [f for f in step_fields if f in STEP_FIELDS] == list(STEP_FIELDS)


def test_readme_payload_cells_list_each_kinds_fields_and_extras() -> None:
    previous: list[str] = []
    for row in _table():
        kind = _ticks(row[0])[0]
        spec = KINDS[kind]
        cell = row[3]
        named = _ticks(cell)
        if spec.family in ("workflow", "step"):
            assert f"{spec.family} payload" in cell, kind
        elif cell.startswith("same"):
            assert previous == list(spec.fields), kind
        else:
            assert named[: len(spec.fields)] == list(spec.fields), kind
            previous = named[: len(spec.fields)]
        for extra in spec.extras:
            assert extra in named, f"{kind}: the README does not mention {extra!r}"
        family_words = {"workflow": WORKFLOW_FIELDS, "step": STEP_FIELDS}.get(spec.family, ())
        allowed = set(spec.fields) | set(spec.extras) | set(family_words)
        unknown = [n for n in named if n not in allowed and n.isidentifier() and "_" in n]
        assert not unknown, f"{kind}: the README names fields the payload lacks: {unknown}"


# ---- what the engine really emits ------------------------------------------------------


_tries: dict[str, int] = {}


def flaky(ctx: Any) -> Any:
    _tries["flaky"] = _tries.get("flaky", 0) + 1
    if _tries["flaky"] == 1:
        raise RuntimeError("first attempt fails")
    return ctx


def ask(ctx: Any) -> Any:
    return {**ctx, "answer": wait_for_input("manager", prompt="ok?")}


def nap(ctx: Any) -> Any:
    sleep(60)
    return ctx


def route(ctx: Any) -> Any:
    return goto("last", ctx)


def charge(ctx: Any) -> Any:
    return ctx


def refund(ctx: Any) -> Any:
    return ctx


def refund_fails(ctx: Any) -> Any:
    raise RuntimeError("the refund failed")


def boom(ctx: Any) -> Any:
    raise ValueError("no")


def stop(ctx: Any) -> Any:
    cancel("enough")


def _broad_run() -> list[Any]:
    """The events of runs that, together, emit every kind and every extra."""
    _tries.clear()
    busy = Workflow(
        "busy",
        [
            step(lambda n: {"n": n}, name="first"),
            step(flaky, retry=Retry(max_attempts=2, backoff="constant", base=1)),
            step(ask),
            step(nap),
            branch(on=lambda ctx: ctx["answer"], cases={"yes": [step(charge, name="yes")]}),
            parallel([step(charge, name="p1"), step(charge, name="p2")]),
            foreach(step(charge, name="each"), items=lambda ctx: [1, 2]),
            decision(route, targets=["last"]),
            step(charge, name="skipped"),
            step(charge, name="last"),
        ],
    )
    saga = Workflow("saga", [step(charge, compensate=refund), step(boom)])
    broken_saga = Workflow(
        "broken_saga",
        [
            step(charge, compensate=step(refund_fails, retry=Retry(max_attempts=2, base=1))),
            step(boom),
        ],
    )
    stopped = Workflow("stopped", [step(stop)])
    with TestApp([busy, saga, broken_saga, stopped]) as t:
        run_id = t.app.start(busy, 1)
        t.run_until_idle()
        t.advance(seconds=2)
        t.app.provide_input(run_id, "manager", "yes")
        t.run_until_idle()
        t.advance(seconds=61)
        t.app.start(saga, {})
        t.app.start(stopped, {})
        broken = t.app.start(broken_saga, {})
        t.run_until_idle()
        t.advance(seconds=2)
        assert t.app.get_execution(broken).status == "compensation_failed"
        t.app.cancel(t.app.start(busy, 2), "changed my mind")
        t.app.schedules.create("nightly", "saga", cron="0 2 * * *", input={})
        t.app.schedules.disable("nightly")
        t.app.schedules.trigger("nightly")
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "completed"
        return t.events


def test_every_emitted_payload_has_its_kinds_fields_and_no_others() -> None:
    seen: dict[str, set[str]] = {}
    for event in _broad_run():
        spec = KINDS[event.kind]
        keys = set(event.payload)
        missing = set(spec.fields) - keys
        unknown = keys - set(spec.fields) - set(spec.extras)
        assert not missing, f"{event.kind} lacks {missing}"
        assert not unknown, f"{event.kind} carries undeclared {unknown}"
        seen.setdefault(event.kind, set()).update(keys - set(spec.fields))
    assert set(seen) == set(EVENT_KINDS)
    # every declared extra is really emitted by this run of the engine
    for kind, spec in KINDS.items():
        assert set(spec.extras) <= seen[kind], (kind, set(spec.extras) - seen[kind])


def test_the_wire_schema_accepts_every_emitted_message_and_matches_the_kinds() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert schema["properties"]["kind"]["enum"] == list(EVENT_KINDS)
    for event in _broad_run():
        topic = event.topic
        text = wire.encode(event, topic, "origin-1", 1_796_000_000_123)
        errors = [e.message for e in validator.iter_errors(json.loads(text))]
        assert not errors, (event.kind, errors)
    # each kind's payload definition requires exactly the kind's fields and allows its extras
    for rule in schema["allOf"]:
        definition = schema["$defs"][rule["then"]["properties"]["payload"]["$ref"].split("/")[-1]]
        for kind in rule["if"]["properties"]["kind"]["enum"]:
            assert definition["required"] == list(KINDS[kind].fields), kind
            assert set(KINDS[kind].extras) <= set(definition["properties"]), kind
    bad = json.loads(
        wire.encode(Event("workflow_started", {"id": "x"}), "durable:a:workflows", "o", 0)
    )
    assert list(validator.iter_errors(bad)), "a payload without its fields must not validate"


def test_topics_of_each_kind_follow_its_family() -> None:
    wf = Workflow("t", [step(ask)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        t.app.provide_input(run_id, "manager", "yes")
        t.run_until_idle()
        t.app.schedules.create("s", "t", cron="0 2 * * *", input={})
        t.app.schedules.trigger("s")
        t.app.schedules.disable("s")
        ps = t.app.pubsub
        names = {
            ps.workflows_topic(): "workflows",
            ps.inputs_topic(): "inputs",
            ps.schedules_topic(): "schedules",
        }
        by_kind: dict[str, set[str]] = {}
        for event in t.events:
            word = names.get(event.topic) or "run"
            by_kind.setdefault(event.kind, set()).add(word)
        for kind, topics in by_kind.items():
            assert topics == set(KINDS[kind].topics), kind
