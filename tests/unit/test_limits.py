"""Queue limits: configuration errors, keys computed at start, limits in the worker."""

from __future__ import annotations

import json
import logging
import math
import re

import pytest

from durable import Durable, QueueLimits, Workflow, step
from durable.control import call_workflow
from durable.doctor import diagnose
from durable.errors import ConfigurationError, LimitKeyError
from durable.limits import fleet_mismatches
from durable.testing import FakeClock, TestApp
from durable.wait import sleep as durable_sleep


def _noop(ctx):
    return ctx


ONE = Workflow("one", [step(_noop, name="only")])
ROUTED = Workflow(
    "routed", [step(_noop, name="prepare"), step(_noop, name="call", queue="gateway")]
)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"concurrency": 0}, "(concurrency=) must be an int >= 1, got 0"),
        ({"concurrency": -2}, "got -2"),
        ({"concurrency": True}, "got True"),
        ({"concurrency": 1.5}, "got 1.5"),
        ({"per_key": 0, "key": str}, "(per_key=) must be an int >= 1"),
        ({"per_key": 1}, "needs key="),
        ({"key": str, "concurrency": 1}, "only used with per_key= or key_rate="),
        ({"per_key": 1, "key": "customer"}, "must be callable"),
        ({"rate": 0}, "(rate=) must be a number > 0"),
        ({"rate": -1}, "(rate=) must be a number > 0"),
        ({"rate": math.nan}, "(rate=) must be a number > 0"),
        ({"rate": 5, "period_seconds": 0}, "(period_seconds=) must be a number > 0"),
        ({"rate": 5, "burst": 0}, "(burst=) must be an int >= 1"),
        ({"key_rate": 2}, "(key_rate=) needs key="),
        ({"key_rate": 0, "key": str}, "(key_rate=) must be a number > 0"),
        ({}, "sets no limit"),
    ],
)
def test_bad_limits_are_refused_when_declared(options, words):
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        QueueLimits(**options)


def test_bad_limits_mapping_is_refused_before_the_database_is_opened(tmp_path):
    url = f"sqlite:///{tmp_path}/never.db"
    with pytest.raises(ConfigurationError, match=r"limits\['q'\] must be a QueueLimits"):
        Durable(url, limits={"q": 5})
    with pytest.raises(ConfigurationError, match="mapping of queue name"):
        Durable(url, limits=[QueueLimits(concurrency=1)])
    assert not (tmp_path / "never.db").exists()


def test_the_key_is_computed_at_start_and_stored_for_every_keyed_queue():
    limits = {
        "default": QueueLimits(per_key=1, key=lambda order: order["customer"]),
        "gateway": QueueLimits(per_key=2, key=lambda order: f"region-{order['region']}"),
    }
    with TestApp([ROUTED], limits=limits) as t:
        run_id = t.app.start(ROUTED, {"customer": "c1", "region": "eu"})
        row = t.app.storage.get_execution(run_id)
        assert json.loads(row["limit_keys"]) == {"default": "c1", "gateway": "region-eu"}
        assert t.run_until_idle() >= 1
        t.assert_status(run_id, "completed")


def test_a_key_function_that_fails_fails_that_start_not_the_worker():
    limits = {"default": QueueLimits(per_key=1, key=lambda order: order["customer"])}
    with TestApp([ONE], limits=limits) as t:
        with pytest.raises(
            LimitKeyError, match=r"key function of queue 'default' failed.*KeyError"
        ):
            t.app.start(ONE, {"id": 1})
        with pytest.raises(LimitKeyError, match=r"must return a non-empty str.*returned 7"):
            t.app.start(ONE, {"customer": 7})
        with pytest.raises(LimitKeyError, match="returned ''"):
            t.app.start(ONE, {"customer": ""})
        assert t.app.list_executions().items == []
        ok = t.app.start(ONE, {"customer": "c1"})
        t.run_until_idle()
        t.assert_status(ok, "completed")


def _parent(ctx):
    return call_workflow("one", {"no_customer": True})


def test_a_child_whose_key_fails_fails_the_parent_step():
    parent = Workflow("parent", [step(_parent)])
    limits = {"default": QueueLimits(per_key=1, key=lambda order: order["customer"])}
    with TestApp([ONE, parent], limits=limits) as t:
        run_id = t.app.start(parent, {"customer": "p"})
        t.run_until_idle()
        failed = t.assert_status(run_id, "failed")
        assert failed.error is not None and "key function of queue 'default'" in str(failed.error)


def test_global_limit_in_the_worker_and_usage():
    clock = FakeClock()
    with TestApp(
        [ROUTED], clock=clock, limits={"gateway": QueueLimits(rate=1, period_seconds=10)}
    ) as t:
        ids = [t.app.start(ROUTED, {"n": i}) for i in range(3)]
        t.run_until_idle()
        done = [i for i in ids if t.app.get_execution(i).status.value == "completed"]
        assert len(done) == 1  # one token: the other two wait at the gateway step
        for i in ids:
            if i not in done:
                assert t.app.get_execution(i).current_step == "call"
        usage = t.app.storage.queue_usage("gateway", t.app.engine.limits["gateway"], clock.now_ms())
        assert usage["ready"] == 2 and usage["held_back"]["rate"] == 2 and usage["tokens"] == 0
        t.advance(10)
        assert sum(t.app.get_execution(i).status.value == "completed" for i in ids) == 2
        t.advance(10)
        assert all(t.app.get_execution(i).status.value == "completed" for i in ids)


def test_workers_record_their_limits_and_a_mismatch_is_logged(tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/fleet.db"
    a = Durable(url, [ONE], limits={"default": QueueLimits(concurrency=2)}, pubsub=False)
    b = Durable(url, [ONE], limits={"default": QueueLimits(concurrency=3)}, pubsub=False)
    c = Durable(url, [ONE], pubsub=False)
    workers = [
        app.worker({"default": 1}, worker_id=f"w-{n}")
        for n, app in zip("abc", (a, b, c), strict=True)
    ]
    try:
        for w in workers:
            w._beat_safely()
        rows = a.query.workers()
        assert {r["id"]: r["limits"] for r in rows} == {
            "w-a": {"default": {"concurrency": 2}},
            "w-b": {"default": {"concurrency": 3}},
            "w-c": {"default": {}},
        }
        mismatches = fleet_mismatches(rows)
        assert [sorted(c["workers"]) for c in mismatches["default"]] == [
            ["w-a"],
            ["w-b"],
            ["w-c"],
        ]
        with caplog.at_level(logging.ERROR, logger="durable.worker"):
            workers[0].maintain()
            workers[0].maintain()  # reported once, not every pass
        errors = [r.getMessage() for r in caplog.records if "different limits" in r.getMessage()]
        assert len(errors) == 1 and "w-b" in errors[0] and "no limits by w-c" in errors[0]
    finally:
        for app in (a, b, c):
            app.close()


def _nap(ctx):
    durable_sleep(10)
    return ctx


NAP = Workflow("nap", [step(_nap), step(_noop, name="done")])


def test_a_sleeping_run_holds_no_slot_and_inspect_names_the_limit_holding_a_due_run():
    clock = FakeClock()
    with TestApp([NAP], clock=clock, limits={"default": QueueLimits(concurrency=1)}) as t:
        a, b = t.app.start(NAP, {}), t.app.start(NAP, {})
        t.run_until_idle()
        # one slot, yet both ran to their sleep: a sleeping run gave its slot back
        assert {t.app.get_execution(i).status.value for i in (a, b)} == {"waiting"}
        clock.advance(10)  # both due, nothing run yet
        limits = t.app.engine.limits["default"]
        held = t.app.storage.claim(
            "default", 5, "w-other", "tok", clock.now_ms(), t.app.engine.known(), limits
        )
        assert len(held) == 1
        other = b if held[0]["id"] == a else a
        notes = diagnose(t.app, t.app.get_execution(other), [])
        assert any(
            "held back by the concurrency limit of queue 'default': 1 of 1" in n for n in notes
        )
