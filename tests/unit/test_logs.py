"""Log records an operator relies on: failed attempts, failed runs, recoveries."""

from __future__ import annotations

import json
import logging

import pytest

from durable import Retry, Workflow, step
from durable.observe.logs import JsonFormatter
from durable.storage import KnownWorkflows
from durable.testing import TestApp


def flaky(ctx):
    raise ValueError("card declined")


def charge(ctx):
    return ctx


def refund(ctx):
    return ctx


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.name.startswith("durable")]


def test_each_failed_attempt_is_a_warning_and_the_failed_run_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wf = Workflow(
        "pay", [step(flaky, name="charge", retry=Retry(max_attempts=2, base=1.0, jitter=False))]
    )
    caplog.set_level(logging.INFO, logger="durable")
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, {})
        t.run_until_idle()
        first = _records(caplog, logging.WARNING)
        assert len(first) == 1
        rec = first[0]
        assert rec.execution_id == run_id  # type: ignore[attr-defined]
        assert rec.workflow_name == "pay"  # type: ignore[attr-defined]
        assert rec.step_name == "charge"  # type: ignore[attr-defined]
        assert rec.attempt == 1  # type: ignore[attr-defined]
        assert rec.error_type == "ValueError"  # type: ignore[attr-defined]
        assert rec.error_message == "card declined"  # type: ignore[attr-defined]
        assert rec.next_retry_at is not None  # type: ignore[attr-defined]
        assert "retry at" in rec.getMessage() and run_id in rec.getMessage()
        assert _records(caplog, logging.ERROR) == []

        t.advance(seconds=5)
        warnings = _records(caplog, logging.WARNING)
        assert [w.attempt for w in warnings] == [1, 2]  # type: ignore[attr-defined]
        assert warnings[1].next_retry_at is None  # type: ignore[attr-defined]
        errors = _records(caplog, logging.ERROR)
        assert len(errors) == 1
        assert errors[0].status == "failed"  # type: ignore[attr-defined]
        assert errors[0].execution_id == run_id  # type: ignore[attr-defined]
        assert errors[0].error_type == "ValueError"  # type: ignore[attr-defined]
        assert errors[0].step_name == "charge"  # type: ignore[attr-defined]


def test_a_compensated_run_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    wf = Workflow("saga", [step(charge, compensate=refund), step(flaky, name="ship")])
    caplog.set_level(logging.INFO, logger="durable")
    with TestApp([wf]) as t:
        run_id = t.run(wf, {}).id
        t.assert_status(run_id, "compensated")
        errors = _records(caplog, logging.ERROR)
        assert [(e.status, e.execution_id) for e in errors] == [("compensated", run_id)]  # type: ignore[attr-defined]


def test_a_completed_run_logs_nothing_above_info(caplog: pytest.LogCaptureFixture) -> None:
    wf = Workflow("fine", [step(charge)])
    caplog.set_level(logging.DEBUG, logger="durable")
    with TestApp([wf]) as t:
        t.assert_status(t.run(wf, {}).id, "completed")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_recovery_of_a_dead_workers_run_names_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wf = Workflow("slow", [step(charge)])
    caplog.set_level(logging.INFO, logger="durable")
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, {})
        now = t.clock.now_ms()
        known = KnownWorkflows.of({"slow": [None]})
        [row] = t.app.storage.claim("default", 1, "dead-host:1:abc", "tok", now, known)
        t.clock.advance(seconds=120)
        t.run_until_idle()
        t.assert_status(run_id, "completed")
    recovered = [r for r in caplog.records if r.getMessage().startswith("recovered execution")]
    assert len(recovered) == 1
    assert recovered[0].levelno == logging.INFO
    assert recovered[0].dead_worker_id == "dead-host:1:abc"  # type: ignore[attr-defined]
    assert recovered[0].execution_id == row["id"]  # type: ignore[attr-defined]
    assert "dead-host:1:abc" in recovered[0].getMessage()


def test_json_formatter_puts_the_fields_on_one_line() -> None:
    record = logging.LogRecord(
        "durable.executor", logging.WARNING, __file__, 1, "a %s", ("b",), None
    )
    record.execution_id = "x1"
    record.attempt = 2
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "a b" and data["level"] == "WARNING"
    assert data["logger"] == "durable.executor"
    assert data["execution_id"] == "x1" and data["attempt"] == 2
    assert "args" not in data and "msg" not in data


def forgets_to_return(ctx):
    ctx["done"] = True  # and no return


def uses_ctx(ctx):
    return ctx["done"]


def test_a_step_that_returned_none_is_named_in_the_next_steps_error() -> None:
    wf = Workflow("oops", [step(forgets_to_return), step(uses_ctx)])
    with TestApp([wf]) as t:
        run = t.run(wf, {})
        failed = t.assert_status(run.id, "failed")
        assert failed.error is not None and failed.error["type"] == "TypeError"
        assert "step 'forgets_to_return' returned None" in failed.error["message"]
        assert "step 'uses_ctx' received None" in failed.error["message"]


def test_a_recorded_traceback_starts_at_the_users_code() -> None:
    wf = Workflow("tb", [step(flaky, name="charge")])
    with TestApp([wf]) as t:
        run = t.run(wf, {})
        [attempt] = t.app.list_steps(run.id)
        assert attempt.error is not None
        lines = attempt.error["traceback"].splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert "frames of durable calling the step omitted" in lines[1]
        assert __file__ in lines[2] and "in flaky" in lines[2]
        assert lines[-1] == "ValueError: card declined"
        assert "/durable/executor/" not in attempt.error["traceback"]
