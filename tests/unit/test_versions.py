"""Workflow versioning: new runs take the newest version, a run keeps the one it started with."""

from __future__ import annotations

import pytest

from durable import Workflow, step
from durable.errors import DefinitionError, DurableError
from durable.testing import TestApp
from durable.wait import wait_for_event


def wait_then(tag):
    def waiting(ctx):
        wait_for_event("go")
        return {"ran": tag}

    return waiting


V1 = Workflow("order", [step(wait_then("v1"), name="waiting")], version=1)
V2 = Workflow(
    "order", [step(wait_then("v2"), name="waiting"), step(lambda c: c, name="extra")], version=2
)


def test_runs_keep_the_version_they_started_with(tmp_path):
    url = f"sqlite:///{tmp_path}/v.db"
    with TestApp([V1], url=url) as old:
        first = old.app.start("order", {})
        old.run_until_idle()
        assert old.app.get_execution(first).workflow_version == "1"
    with TestApp([V1, V2], url=url) as both:  # a deploy that keeps v1 for runs in flight
        second = both.app.start("order", {})
        assert both.app.get_execution(second).workflow_version == "2"
        both.run_until_idle()
        both.app.send_event(first, "go")
        both.app.send_event(second, "go")
        both.run_until_idle()
        assert both.app.get_execution(first).result == {"ran": "v1"}
        assert both.app.get_execution(second).result == {"ran": "v2"}
        assert [s.step_name for s in both.app.list_steps(second)][-1] == "extra"


def test_a_run_whose_version_no_worker_has_waits_for_one(tmp_path):
    """A rolling deploy: a worker with only v2 leaves a v1 run alone (it is never
    failed); a worker that has v1 again finishes it, and the other way round."""
    url = f"sqlite:///{tmp_path}/v.db"
    with TestApp([V1], url=url) as old:
        run_id = old.app.start("order", {})
        old.run_until_idle()
    with TestApp([V2], url=url) as new:
        new.app.send_event(run_id, "go")
        v2_run = new.app.start("order", {})
        assert new.run_until_idle() == 1  # only its own v2 run
        e = new.app.get_execution(run_id)
        assert e.status == "waiting" and e.error is None and e.attempt == 1
    with TestApp([V1], url=url) as old_again:
        old_again.run_until_idle()
        assert old_again.app.get_execution(run_id).result == {"ran": "v1"}
        assert old_again.app.get_execution(v2_run).status == "waiting"  # v2 is not its own


def test_starting_an_explicit_older_version():
    with TestApp([V1, V2]) as t:
        run_id = t.app.start(V1, {})
        assert t.app.get_execution(run_id).workflow_version == "1"
        assert t.app.get_workflow("order") is V2


def test_version_validation():
    with pytest.raises(DefinitionError, match="version must be"):
        Workflow("x", [step(lambda c: c, name="s")], version="")
    unversioned = Workflow("order", [step(lambda c: c, name="s")])
    with pytest.raises(DurableError, match="with and without a version"):
        TestApp([V1, unversioned])
    other_v1 = Workflow("order", [step(lambda c: c, name="s")], version=1)
    with pytest.raises(DurableError, match="named 'order' version '1'"):
        TestApp([V1, other_v1])
