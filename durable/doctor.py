"""Health checks (``durable doctor``) and the diagnosis of one run (``inspect``).

Each check returns a :class:`Check` with a status (ok, warn, fail), a message
saying what to do, and the items it found. ``fix=True`` repairs what is safe:
stale claims are released, runs nothing can wake are woken, lost child results
are delivered. Nothing else is changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import codec
from .errors import DurableError, ExecutionNotFoundError
from .limits import describe_served, fleet_mismatches
from .models import TERMINAL_STATUSES, Execution, ms_to_iso

if TYPE_CHECKING:
    from .app import Durable

__all__ = ["Check", "diagnose", "run_checks"]

CLOCK_SKEW_WARN_MS = 2000
FAILING_SCHEDULE_RUNS = 3


@dataclass(slots=True)
class Check:
    """The outcome of one health check."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    message: str
    items: list[dict[str, Any]] = field(default_factory=list)
    fixed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "items": self.items,
            "fixed": self.fixed,
        }


def run_checks(app: Durable, *, fix: bool = False) -> list[Check]:
    """Every check in order; later checks are skipped when the database is unusable."""
    checks = [_reachable(app)]
    if checks[0].status == "fail":
        return checks
    checks.append(_schema(app))
    if checks[-1].status == "fail":
        return checks
    for check in (
        _stale_claims,
        _unwakeable,
        _lost_children,
        _unserved_queues,
        _queue_limits,
        _schedules,
    ):
        checks.append(check(app, fix))
    checks.append(_clock_skew(app))
    return checks


def _reachable(app: Durable) -> Check:
    try:
        now = app.query.database_now_ms()
    except DurableError as exc:
        return Check("database", "fail", f"cannot reach the database: {exc}")
    return Check("database", "ok", f"reachable ({app.storage.dialect})", [{"now_ms": now}])


def _schema(app: Durable) -> Check:
    try:
        pending = app.pending_migrations()
    except DurableError as exc:
        return Check("schema", "fail", f"cannot read the schema version: {exc}")
    if pending:
        return Check(
            "schema",
            "fail",
            f"{len(pending)} migration(s) pending; run `durable migrate`",
            [{"migration": m} for m in pending],
        )
    return Check("schema", "ok", "schema is current")


def _stale_claims(app: Durable, fix: bool) -> Check:
    engine = app.engine
    now = engine.clock.now_ms()
    before = now - int(engine.config.stale_timeout_seconds * 1000)
    rows = app.query.stale_claims(before)
    items = [
        {
            "id": r["id"],
            "workflow": r["workflow_name"],
            "worker": r["locked_by"],
            "heartbeat_at": ms_to_iso(r["heartbeat_at"]),
        }
        for r in rows
    ]
    if not items:
        return Check("stale_claims", "ok", "no claims held by dead workers")
    check = Check(
        "stale_claims",
        "warn",
        f"{len(items)} run(s) claimed by workers that stopped heart-beating; a running "
        "worker recovers them, or use --fix",
        items,
    )
    if fix:
        check.fixed = len(engine.storage.recover_stale(before, now))
        if check.fixed:
            engine.notifier.notify("*")
    return check


def _unwakeable(app: Durable, fix: bool) -> Check:
    rows = app.query.unwakeable_runs()
    items = [
        {"id": r["id"], "workflow": r["workflow_name"], "step": r["current_step"]} for r in rows
    ]
    if not items:
        return Check("unwakeable_runs", "ok", "every waiting run has something to wake it")
    check = Check(
        "unwakeable_runs",
        "fail",
        f"{len(items)} waiting run(s) have no wake time and no pending wait; "
        "--fix wakes them so their step runs again",
        items,
    )
    if fix:
        now = app.clock.now_ms()
        check.fixed = len([r for r in rows if app.storage.wake_unwakeable(r["id"], now)])
        if check.fixed:
            app.engine.notifier.notify("*")
    return check


def _lost_children(app: Durable, fix: bool) -> Check:
    rows = app.query.finished_child_waits()
    items = [
        {
            "parent_id": r["execution_id"],
            "child_id": r["child_id"],
            "child_status": r["child_status"],
        }
        for r in rows
    ]
    if not items:
        return Check("child_results", "ok", "no parent waits on a child that already finished")
    check = Check(
        "child_results",
        "fail",
        f"{len(items)} parent run(s) wait on a child that already finished; "
        "--fix delivers the child's outcome",
        items,
    )
    if fix:
        now = app.clock.now_ms()
        for r in rows:
            if r["child_status"] == "completed":
                value = '{"status":"completed","result":' + (r["child_result"] or "null") + "}"
            else:
                error = json.loads(r["child_error"]) if r["child_error"] else None
                value = codec.encode({"status": r["child_status"], "error": error})
            app.storage.deliver_child_result(r["child_id"], value, now)
            check.fixed += 1
        app.engine.notifier.notify("*")
    return check


def _unserved_queues(app: Durable, fix: bool) -> Check:
    """Runs no live worker would claim: no worker knows their workflow (or version), or
    none of those that do serves their queue. They wait; they are never failed."""
    from .unserved import unserved_runs

    engine = app.engine
    found = unserved_runs(
        engine.storage, engine.clock.now_ms(), engine.config.stale_timeout_seconds
    )
    if not found:
        return Check("queues", "ok", "every runnable run has a live worker that knows it")
    parts = [
        f"{u.runs} run(s) of {u.label} on queue {u.queue!r} for {_age(u.waiting_seconds)} "
        f"({u.reason})"
        for u in found
    ]
    return Check(
        "queues",
        "warn",
        "waiting for a worker that knows them: "
        + "; ".join(parts)
        + ". Start a worker whose app registers them (`durable worker --app ...`)",
        [u.to_dict() for u in found],
    )


def _queue_limits(app: Durable, fix: bool) -> Check:
    now = app.clock.now_ms()
    live_after = now - int(app.engine.config.stale_timeout_seconds * 1000)
    live = [w for w in app.query.workers() if w["heartbeat_at"] >= live_after]
    own = describe_served(app.engine.limits, app.engine.limits)
    mismatches = fleet_mismatches([*live, {"id": "this app", "limits": own}])
    items = [{"queue": q, "configurations": c} for q, c in mismatches.items()]
    if not items:
        return Check("limits", "ok", "every live worker enforces the same queue limits")
    names = ", ".join(str(i["queue"]) for i in items)
    return Check(
        "limits",
        "warn",
        f"queue(s) {names} are enforced with different limits by different processes; give "
        "every process the same Durable(limits=...) and restart the odd ones",
        items,
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _schedules(app: Durable, fix: bool) -> Check:
    since = app.clock.now_ms() - 7 * 86_400_000
    last: dict[str, list[str]] = {}
    for r in app.query.schedule_runs(since):
        runs = last.setdefault(r["schedule_name"], [])
        if len(runs) < FAILING_SCHEDULE_RUNS:
            runs.append(r["status"])
    items = [
        {"schedule": name, "last_statuses": statuses}
        for name, statuses in sorted(last.items())
        if len(statuses) == FAILING_SCHEDULE_RUNS and all(s != "completed" for s in statuses)
    ]
    if not items:
        return Check("schedules", "ok", "no schedule keeps failing")
    names = ", ".join(str(i["schedule"]) for i in items)
    return Check(
        "schedules",
        "warn",
        f"the last {FAILING_SCHEDULE_RUNS} runs of schedule(s) {names} did not complete; "
        "look at them with `durable list --schedule NAME`",
        items,
    )


def _clock_skew(app: Durable) -> Check:
    local = app.clock.now_ms()
    remote = app.query.database_now_ms()
    skew = local - remote
    items: list[dict[str, Any]] = [{"source": "database", "skew_ms": skew}]
    worst = abs(skew)
    for worker in app.query.workers():
        ahead = worker["heartbeat_at"] - remote
        if ahead > CLOCK_SKEW_WARN_MS:  # a heartbeat from the future: that host runs fast
            items.append({"source": f"worker {worker['id']}", "skew_ms": ahead})
            worst = max(worst, ahead)
    if worst > CLOCK_SKEW_WARN_MS:
        return Check(
            "clock_skew",
            "warn",
            f"clocks differ by up to {worst} ms; sync them (NTP): timers, leases and "
            "stale-claim recovery rely on them",
            items,
        )
    return Check(
        "clock_skew", "ok", f"this host and the database agree within {abs(skew)} ms", items
    )


# ---- one run -------------------------------------------------------------------


def diagnose(app: Durable, execution: Execution, waits: list[dict[str, Any]]) -> list[str]:
    """Plain sentences about what looks wrong with one run (empty when nothing does)."""
    notes: list[str] = []
    status = execution.status.value
    now = app.clock.now_ms()
    if execution.workflow_name not in app.engine.registry:
        notes.append(
            f"workflow {execution.workflow_name!r} is not registered in this app: a worker "
            "without it cannot run this execution"
        )
    pending = [w for w in waits if w["status"] == "pending"]
    if status == "waiting":
        if not pending and execution.scheduled_at is None:
            notes.append(
                "waiting with no pending wait and no wake time: nothing will wake it "
                "(`durable doctor --fix` wakes it)"
            )
        for w in pending:
            if w["kind"] == "child" and w.get("child_id"):
                try:
                    child: dict[str, Any] | None = app.query.execution_row(w["child_id"])
                except ExecutionNotFoundError:
                    child = None
                if child is None:
                    notes.append(f"waits on child {w['child_id']}, which no longer exists")
                elif child["status"] in TERMINAL_STATUSES:
                    notes.append(
                        f"waits on child {w['child_id']}, which is already {child['status']} "
                        "(`durable doctor --fix` delivers its outcome)"
                    )
            if w["kind"] in ("event", "input") and w.get("timeout_at") is None:
                notes.append(
                    f"waits for {w['kind']} {w['name']!r} with no timeout: it waits until "
                    f"someone sends it (`durable {'send-event' if w['kind'] == 'event' else 'provide-input'}`)"
                )
    if status in ("pending", "running", "waiting", "compensating"):
        if execution.locked_by and execution.heartbeat_at is not None:
            silent = now - int(execution.heartbeat_at.timestamp() * 1000)
            if silent > app.engine.config.stale_timeout_seconds * 1000:
                notes.append(
                    f"claimed by worker {execution.locked_by}, silent for {silent // 1000}s: "
                    "it will be recovered by a running worker (or `durable doctor --fix`)"
                )
        elif status == "pending" and execution.scheduled_at is not None:
            due = int(execution.scheduled_at.timestamp() * 1000)
            served = any(execution.queue in w["queues"] for w in app.query.workers())
            if due <= now and not served:
                notes.append(
                    f"due, but no live worker serves queue {execution.queue!r}; "
                    f"start `durable worker -q {execution.queue}`"
                )
    held = _held_back(app, execution, now) if status in ("pending", "waiting") else None
    if held is not None:
        notes.append(held)
    if status == "failed":
        notes.append("failed: `durable retry ID` runs it again from the failed step")
    return notes


def _held_back(app: Durable, execution: Execution, now: int) -> str | None:
    """Which fleet-wide limit of its queue keeps a due, unclaimed run from a worker."""
    limits = app.engine.limits.get(execution.queue)
    if limits is None or execution.locked_by or execution.scheduled_at is None:
        return None
    if int(execution.scheduled_at.timestamp() * 1000) > now:
        return None
    row = app.storage.get_execution(execution.id)
    if row is None or row["lock_token"] is not None:
        return None
    return app.storage.hold_reason(row, limits, now)
