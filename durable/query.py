"""The one read path: stored rows to API records, for the facade, CLI, dashboard,
``inspect`` and ``doctor``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from . import codec
from .checks import count
from .clock import to_ms
from .errors import DurableError, ExecutionNotFoundError
from .ids import SHORT_ID_LENGTH
from .limits import QueueLimits, fleet_mismatches, from_description
from .models import (
    Execution,
    ExecutionStatus,
    Page,
    PendingEvent,
    PendingInput,
    StepExecution,
    StepStatus,
    StepType,
    ms_to_datetime,
)
from .storage import ExecutionFilter, Row, StorageBackend, WaitFilter
from .storage.protocols import JsonMatch

MAX_PAGE = 1000


def to_execution(row: Row) -> Execution:
    created = ms_to_datetime(row["created_at"])
    updated = ms_to_datetime(row["updated_at"])
    assert created is not None and updated is not None
    return Execution(
        id=row["id"],
        workflow_name=row["workflow_name"],
        status=ExecutionStatus(row["status"]),
        queue=row["queue"],
        priority=row["priority"],
        input=codec.decode(row["input"]),
        context=codec.decode(row["context"]),
        result=codec.decode(row["result"]),
        error=json.loads(row["error"]) if row["error"] else None,
        current_step=row["current_step"],
        parent_id=row["parent_id"],
        schedule_name=row["schedule_name"],
        schedule_tick_at=ms_to_datetime(row["schedule_tick_at"]),
        attempt=row["attempt"],
        scheduled_at=ms_to_datetime(row["wake_at"]),
        started_at=ms_to_datetime(row["started_at"]),
        completed_at=ms_to_datetime(row["completed_at"]),
        created_at=created,
        updated_at=updated,
        locked_by=row["locked_by"],
        heartbeat_at=ms_to_datetime(row["heartbeat_at"]),
        deadline_at=ms_to_datetime(row["deadline_at"]),
        workflow_version=row.get("workflow_version"),
    )


def to_step(row: Row) -> StepExecution:
    started = ms_to_datetime(row["started_at"])
    assert started is not None
    return StepExecution(
        id=row["id"],
        execution_id=row["execution_id"],
        step_name=row["step_name"],
        step_type=StepType(row["step_type"]),
        status=StepStatus(row["status"]),
        attempt=row["attempt"],
        result=codec.decode(row["result"]),
        error=json.loads(row["error"]) if row["error"] else None,
        started_at=started,
        completed_at=ms_to_datetime(row["completed_at"]),
        duration_ms=row["duration_ms"],
        next_retry_at=ms_to_datetime(row["next_retry_at"]),
        logs=codec.decode(row["logs"]) if row.get("logs") else [],
    )


def to_pending_input(row: Row) -> PendingInput:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return PendingInput(
        id=row["id"],
        execution_id=row["execution_id"],
        workflow_name=row["workflow_name"],
        input_name=row["name"],
        step_name=row["step_name"],
        input_type=row["input_type"] or "any",
        status=row["status"],
        prompt=row["prompt"],
        metadata=codec.decode(row["metadata"]) or {},
        spec=codec.decode(row["spec"]) or {},
        timeout_at=ms_to_datetime(row["timeout_at"]),
        created_at=created,
    )


def to_pending_event(row: Row) -> PendingEvent:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return PendingEvent(
        id=row["id"],
        execution_id=row["execution_id"],
        workflow_name=row["workflow_name"],
        event_name=row["name"],
        step_name=row["step_name"],
        status=row["status"],
        timeout_at=ms_to_datetime(row["timeout_at"]),
        created_at=created,
    )


def _opt_ms(value: datetime | None, what: str) -> int | None:
    return None if value is None else to_ms(value, what)


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    items = (status,) if isinstance(status, str) else tuple(status)
    for s in items:
        if s not in ExecutionStatus._value2member_map_:
            allowed = ", ".join(e.value for e in ExecutionStatus)
            raise DurableError(f"unknown status {s!r}; use one of {allowed}")
    return items


def encode_cursor(row: Row) -> str:
    return f"{row['created_at']}.{row['id']}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        at, ident = cursor.split(".", 1)
        return int(at), ident
    except (ValueError, AttributeError):
        raise DurableError(
            f"invalid cursor {cursor!r}: pass the next_cursor of a previous page"
        ) from None


def _shown(value: Any) -> str:
    return codec.shown(value) if isinstance(value, str) else repr(value)


class Query:
    """Reads, shaped as records. Every reader (API, CLI, dashboard) goes through here."""

    def __init__(self, storage: StorageBackend) -> None:
        self.storage = storage

    def execution_row(self, execution_id: str) -> Row:
        if not codec.storable_text(execution_id) or not execution_id:
            # no stored id holds NUL or a lone surrogate: not found, on every backend
            raise ExecutionNotFoundError(f"no execution with id {_shown(execution_id)}")
        row = self.storage.get_execution(execution_id)
        if row is None:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return row

    def get_execution(self, execution_id: str) -> Execution:
        return to_execution(self.execution_row(execution_id))

    def resolve_id(self, prefix: str) -> str:
        """A full id from a unique prefix, matched literally (``%`` and ``_`` are plain
        characters), or a short id (the id's last group, as tables show it); an empty
        prefix is refused, ambiguous ones list the candidates."""
        if not isinstance(prefix, str) or not prefix:
            raise DurableError("give an execution id or a prefix of one (it was empty)")
        if not codec.storable_text(prefix):
            raise ExecutionNotFoundError(f"no execution id starts with {_shown(prefix)}")
        if self.storage.get_execution(prefix) is not None:
            return prefix
        found = self.storage.find_ids_by_prefix(prefix, 6)
        if not found and _looks_short(prefix):
            found = self.storage.find_ids_by_suffix(prefix.lower(), 6)
        if not found:
            raise ExecutionNotFoundError(
                f"no execution id starts with {prefix!r}"
                + (" or ends with it" if _looks_short(prefix) else "")
            )
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise DurableError(f"id prefix {prefix!r} is ambiguous: {shown}")
        return found[0]

    def list_executions(
        self,
        *,
        workflow: str | None = None,
        status: str | Iterable[str] | None = None,
        queue: str | None = None,
        parent_id: str | None = None,
        schedule: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        id_prefix: str | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Newest first; ``search`` is the dashboard's ``input.key = value`` search."""
        count(limit, "limit", maximum=MAX_PAGE)
        flt = ExecutionFilter(
            workflow=workflow,
            statuses=_statuses(status),
            queue=queue,
            parent_id=parent_id,
            schedule=schedule,
            since_ms=_opt_ms(since, "since"),
            until_ms=_opt_ms(until, "until"),
            id_prefix=id_prefix,
        )
        if search is not None:
            return self.search_executions(flt, _parse_search(search), limit=limit, cursor=cursor)
        rows = self.storage.list_executions(
            flt, limit + 1, decode_cursor(cursor) if cursor else None
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([to_execution(r) for r in rows], encode_cursor(rows[-1]) if more else None)

    def list_steps(self, execution_id: str) -> list[StepExecution]:
        self.execution_row(execution_id)
        return [to_step(r) for r in self.storage.list_steps(execution_id)]

    def list_children(self, execution_id: str) -> list[Execution]:
        self.execution_row(execution_id)
        return [to_execution(r) for r in self.storage.list_children(execution_id)]

    def pending_inputs(self, flt: WaitFilter, limit: int = 100) -> list[PendingInput]:
        return [to_pending_input(r) for r in self.storage.list_pending_waits("input", flt, limit)]

    def pending_events(self, flt: WaitFilter, limit: int = 100) -> list[PendingEvent]:
        return [to_pending_event(r) for r in self.storage.list_pending_waits("event", flt, limit)]

    def status_counts(self, since: datetime | None = None) -> dict[str, int]:
        rows = self.storage.status_counts(_opt_ms(since, "since"))
        return {r["status"]: int(r["n"]) for r in rows}

    def queue_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.storage.queue_counts():
            out.setdefault(r["queue"], {})[r["status"]] = int(r["n"])
        return out

    def workers(self) -> list[dict[str, Any]]:
        out = []
        for r in self.storage.list_workers():
            limits = json.loads(r["limits"]) if r.get("limits") else {}
            out.append({**r, "queues": json.loads(r["queues"]), "limits": limits})
        return out

    def queue_limits(
        self, limits: Mapping[str, QueueLimits], now: int, live_after: int
    ) -> dict[str, dict[str, Any]]:
        """Per limited queue: its limits, slots in use, tokens left, runs held back by
        each limit, and ``mismatch`` (the distinct limits live workers enforce, when
        they disagree). Queues this app does not limit are reported with the limits
        the live workers recorded, when they agree."""
        live = [w for w in self.workers() if w["heartbeat_at"] >= live_after]
        mismatches = fleet_mismatches(live)
        recorded: dict[str, dict[str, Any]] = {}
        for w in live:
            for queue, described in w["limits"].items():
                if described:
                    recorded.setdefault(queue, described)
        out: dict[str, dict[str, Any]] = {}
        for queue in sorted(set(limits) | set(recorded)):
            own = limits.get(queue)
            lim = own if own is not None else from_description(recorded[queue])
            usage = self.storage.queue_usage(queue, lim, now)
            out[queue] = {**usage, "mismatch": mismatches.get(queue)}
        return out

    # ---- dashboard reads --------------------------------------------------------

    def search_executions(
        self,
        flt: ExecutionFilter,
        matches: Iterable[JsonMatch] = (),
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Like :meth:`list_executions`, plus ``input.a.b = value`` style JSON matches."""
        count(limit, "limit", maximum=MAX_PAGE)
        rows = self.storage.dashboard_search_executions(
            flt, tuple(matches), limit + 1, decode_cursor(cursor) if cursor else None
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([to_execution(r) for r in rows], encode_cursor(rows[-1]) if more else None)

    def count_executions(
        self, flt: ExecutionFilter, matches: Iterable[JsonMatch] = (), cap: int = 10_000
    ) -> int:
        """How many executions match (counting stops at ``cap``)."""
        return self.storage.dashboard_count_executions(flt, tuple(matches), cap)

    def select_executions(
        self, flt: ExecutionFilter, matches: Iterable[JsonMatch] = (), cap: int = 1000
    ) -> list[Row]:
        """(id, status, workflow_name) of up to ``cap`` matching runs, newest first."""
        return self.storage.dashboard_select_ids(flt, tuple(matches), cap)

    def workflow_stats(self, names: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Per workflow (every name given, run or not, plus any stored): runs, failed,
        waiting, active, last run id and status."""
        store = self.storage
        stats = {r["workflow_name"]: r for r in store.dashboard_workflow_stats()}
        out = []
        for name in sorted(set(names) | set(stats)):
            row = stats.get(name)
            last = store.dashboard_last_run(name) if row else None
            out.append(
                {
                    "name": name,
                    "runs": int(row["runs"]) if row else 0,
                    "failed": int(row["failed"] or 0) if row else 0,
                    "waiting": int(row["waiting"] or 0) if row else 0,
                    "active": int(row["active"] or 0) if row else 0,
                    "last_id": last["id"] if last else None,
                    "last_status": last["status"] if last else None,
                    "last_at": ms_to_datetime(last["created_at"]) if last else None,
                }
            )
        return out

    def throughput(
        self, since: datetime, bucket_seconds: int, buckets: int
    ) -> list[dict[str, Any]]:
        """Runs started, completed and failed per time bucket from ``since``."""
        since_ms = to_ms(since, "since")
        bucket_ms = bucket_seconds * 1000
        created, finished = self.storage.dashboard_buckets(since_ms, bucket_ms)
        out: list[dict[str, Any]] = [
            {
                "start": ms_to_datetime(since_ms + i * bucket_ms),
                "started": 0,
                "completed": 0,
                "failed": 0,
            }
            for i in range(buckets)
        ]
        for r in created:
            if 0 <= int(r["bucket"]) < buckets:
                out[int(r["bucket"])]["started"] += int(r["n"])
        for r in finished:
            b = int(r["bucket"])
            if 0 <= b < buckets:
                key = "completed" if r["status"] == "completed" else "failed"
                if r["status"] in ("failed", "compensation_failed", "completed"):
                    out[b][key] += int(r["n"])
        return out

    def change_marker(self) -> int | None:
        """A value that moves whenever any execution changes (for polling readers)."""
        return self.storage.dashboard_change_marker()

    def waits(self, execution_id: str) -> list[dict[str, Any]]:
        """Every wait of a run (sleep, event, input, child), JSON fields decoded."""
        out = []
        for r in self.storage.execution_waits(execution_id):
            item = dict(r)
            for key in ("metadata", "spec"):
                item[key] = codec.decode(r[key]) if r.get(key) else None
            item["value"] = codec.decode(r["value"]) if r.get("value") else None
            out.append(item)
        return out

    def audit_log(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Dashboard audit entries, newest first (``before_id`` pages back)."""
        rows = self.storage.dashboard_audit_list(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            before_id=before_id,
            limit=limit,
        )
        return [
            {
                **r,
                "params": json.loads(r["params"]) if r["params"] else None,
                "at": ms_to_datetime(r["at"]),
            }
            for r in rows
        ]

    # ---- operations (inspect, doctor) -------------------------------------------------

    def execution_waits(self, execution_id: str) -> list[Row]:
        """Every wait of a run as stored (JSON fields undecoded), oldest first."""
        return self.storage.execution_waits(execution_id)

    def stale_claims(self, before_ms: int) -> list[Row]:
        """Claimed runs whose worker has not heart-beaten since ``before_ms``."""
        return self.storage.stale_claims(before_ms)

    def unwakeable_runs(self) -> list[Row]:
        """Waiting runs nothing will wake (no wake time, no pending wait)."""
        return self.storage.unwakeable_runs()

    def finished_child_waits(self) -> list[Row]:
        """Parents still waiting on a child that already finished."""
        return self.storage.finished_child_waits()

    def schedule_runs(self, since_ms: int) -> list[Row]:
        """Finished scheduled runs since ``since_ms``, newest first per schedule."""
        return self.storage.schedule_runs(since_ms)

    def database_now_ms(self) -> int:
        """The database server's clock (for skew checks)."""
        return self.storage.database_now_ms()


def _parse_search(text: object) -> list[JsonMatch]:
    from .search import parse_search

    if not isinstance(text, str) or not text.strip():
        raise DurableError(f"search must be text like 'input.order.id = o-7', got {text!r}")
    try:
        return parse_search(text)
    except ValueError as exc:
        raise DurableError(str(exc)) from None


def _looks_short(text: str) -> bool:
    """A short id: the last group of an id (see :func:`durable.ids.short_id`)."""
    return len(text) == SHORT_ID_LENGTH and all(c in "0123456789abcdefABCDEF" for c in text)
