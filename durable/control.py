"""Run control and child workflows, called inside a step.

``snooze``, ``fail`` and ``cancel`` steer the current run. ``call_workflow``
starts a child and waits (holding nothing) for its outcome;
``start_workflow`` starts one and carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from . import checks, codec
from .codec import MAX_SECONDS
from .errors import CancelNow, ChildWorkflowError, DurableError, FailNow, Snooze
from .models import ms_to_iso
from .runtime import current_runtime
from .wait import MISSING, _deadline, _no_answer, _settle, _suspend_group

if TYPE_CHECKING:
    from .workflow import Workflow


def snooze(seconds: float) -> NoReturn:
    """Run this step again after ``seconds`` without counting an attempt."""
    delay = checks.seconds(seconds, "snooze() seconds")
    if delay > MAX_SECONDS:  # wake times are 64-bit epoch milliseconds
        raise DurableError(f"snooze() seconds must be at most {MAX_SECONDS:.0e}, got {seconds!r}")
    current_runtime("snooze")
    raise Snooze(delay)


#: the error type a run failed by :func:`fail` records (``execution.error["type"]``)
FAILED_ERROR_TYPE = "Failed"


def fail(reason: str) -> NoReturn:
    """Fail the workflow now: no retries; compensations of finished steps run. The run's
    error is ``{"type": "Failed", "message": reason}`` (:data:`FAILED_ERROR_TYPE`)."""
    current_runtime("fail")
    raise FailNow(str(reason))


def cancel(reason: str = "cancelled by the workflow") -> NoReturn:
    """Cancel the workflow now (its running children are cancelled too)."""
    current_runtime("cancel")
    raise CancelNow(str(reason))


def call_workflow(
    workflow: Workflow | str,
    input: Any = None,
    *,
    timeout: float | None = None,
    timeout_value: Any = MISSING,
    queue: str | None = None,
) -> Any:
    """Start ``workflow`` as a child and return its result.

    If the child fails or is cancelled, ChildWorkflowError is raised here (catch
    it to handle the failure). On ``timeout`` the child is cancelled and
    ``timeout_value`` returned (or WaitTimeoutError raised).
    """
    rt = current_runtime("call_workflow")
    deadline = _deadline(rt, timeout)
    seq = rt.next_seq()
    group = rt.existing(seq)
    if group is None:
        child = rt.engine.child_row(workflow, input, rt, queue, seq)
        wait = {
            "kind": "child",
            "name": child["workflow_name"],
            "child_id": child["id"],
            "timeout_at": deadline,
        }
        group = rt.register(seq, [wait], [child])
    row = _settle(rt, seq, group)
    if row["status"] == "resolved":
        outcome = codec.decode(row["value"])
        if outcome.get("status") == "completed":
            return outcome.get("result")
        error = outcome.get("error") or {}
        raise ChildWorkflowError(
            f"child workflow {row['name']!r} ({row['child_id']}) {outcome.get('status')}: "
            f"{error.get('message', '')}",
            row["child_id"],
            str(outcome.get("status")),
            error,
        )
    if row["status"] == "pending":
        what = {"type": "child", "child_id": row["child_id"], "workflow": row["name"]}
        if row["timeout_at"] is not None:
            what["timeout_at"] = ms_to_iso(row["timeout_at"])
        _suspend_group(rt, [row], what)
    if row["status"] == "timed_out":
        rt.engine.cancel(row["child_id"], "the parent's call_workflow timed out")
    return _no_answer(row, timeout_value, f"child workflow {row['name']!r}")


def start_workflow(
    workflow: Workflow | str,
    input: Any = None,
    *,
    queue: str | None = None,
) -> str:
    """Start ``workflow`` as a child without waiting; return the child's id."""
    rt = current_runtime("start_workflow")
    seq = rt.next_seq()
    group = rt.existing(seq)
    if group is None:
        child = rt.engine.child_row(workflow, input, rt, queue, seq)
        wait = {
            "kind": "start",
            "name": child["workflow_name"],
            "child_id": child["id"],
            "status": "resolved",
            "value": codec.encode(child["id"]),
            "resolved_at": rt.now_ms(),
        }
        group = rt.register(seq, [wait], [child])
    return str(group[0]["child_id"])
