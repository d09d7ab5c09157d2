"""cancel(id, reason, compensate=True): the finished steps are undone in reverse order."""

from __future__ import annotations

import pytest

from durable import Durable, Retry, Workflow, step
from durable.errors import InvalidStateError
from durable.testing import TestApp, run_until_idle
from durable.wait import wait_for_approval

ledger: list[str] = []


def reserve(order):
    ledger.append("reserved")
    return order


def release(ctx):
    ledger.append("released")


def charge(order):
    ledger.append("charged")
    return order


def refund(ctx):
    ledger.append("refunded")


def broken_refund(ctx):
    raise RuntimeError("the bank is down")


def approve(ctx):
    return {**ctx, "ok": wait_for_approval("manager")}


ORDER = Workflow(
    "order",
    [
        step(reserve, compensate=release),
        step(charge, compensate=refund),
        step(approve),
    ],
)
PLAIN = Workflow("plain", [step(lambda c: c, name="first"), step(approve)])
BROKEN = Workflow(
    "broken",
    [
        step(charge, compensate=step(broken_refund, retry=Retry(max_attempts=1))),
        step(approve),
    ],
)


@pytest.fixture(autouse=True)
def _clean_ledger():
    ledger.clear()


def _waiting_step(t, run_id):
    return [(s.step_name, s.status.value) for s in t.app.list_steps(run_id)][-1]


def test_cancel_with_compensation_undoes_the_finished_steps_in_reverse():
    with TestApp([ORDER]) as t:
        cancel_and_compensate(t)


def cancel_and_compensate(t: TestApp) -> None:
    """Charged, then waiting for approval: cancel with compensation undoes both steps."""
    ledger.clear()
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    assert ledger == ["reserved", "charged"]
    e = t.app.cancel(run_id, "customer changed their mind", compensate=True)
    assert e.status == "compensating"
    assert t.app.list_pending_inputs(execution_id=run_id) == []
    t.run_until_idle()
    e = t.app.get_execution(run_id)
    assert e.status == "compensated"
    assert e.error["type"] == "Cancelled" and "changed their mind" in e.error["message"]
    assert ledger == ["reserved", "charged", "refunded", "released"]
    steps = [(s.step_name, s.step_type.value, s.status.value) for s in t.app.list_steps(run_id)]
    assert ("approve", "step", "cancelled") in steps
    assert "waiting" not in {status for _, _, status in steps}
    assert t.kinds(run_id)[-1] == "workflow_cancelled"


def test_cancel_without_compensation_undoes_nothing_and_records_the_waiting_step():
    with TestApp([ORDER]) as t:
        run_id = t.app.start(ORDER, {"id": "o-2"})
        t.run_until_idle()
        assert t.app.cancel(run_id, "stop").status == "cancelled"
        t.run_until_idle()
        assert ledger == ["reserved", "charged"]  # the charge stays: nothing is undone
        assert _waiting_step(t, run_id) == ("approve", "cancelled")


def test_nothing_to_undo_is_a_plain_cancel():
    with TestApp([PLAIN]) as t:
        run_id = t.app.start(PLAIN, {})
        t.run_until_idle()
        assert t.app.cancel(run_id, "stop", compensate=True).status == "cancelled"


def test_a_failing_compensation_ends_compensation_failed():
    with TestApp([BROKEN]) as t:
        run_id = t.app.start(BROKEN, {})
        t.run_until_idle()
        t.app.cancel(run_id, "stop", compensate=True)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "compensation_failed"
        with pytest.raises(InvalidStateError, match="already compensation_failed"):
            t.app.cancel(run_id, compensate=True)


def test_a_client_without_the_code_cancels_and_a_worker_compensates(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    with Durable(url, workflows=[ORDER]) as service, Durable(url) as client:
        run_id = client.start("order", {"id": "o-3"})
        run_until_idle(service)
        assert client.cancel(run_id, "stop", compensate=True).status == "compensating"
        with pytest.raises(InvalidStateError, match="already compensating"):
            client.cancel(run_id, compensate=True)
        run_until_idle(service)
        assert client.get_execution(run_id).status == "compensated"
        assert ledger == ["reserved", "charged", "refunded", "released"]
