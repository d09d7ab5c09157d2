"""What a storage backend offers beyond the core :class:`~durable.storage.base.Storage`.

Four protocols, one per consumer: schedules (the scheduler and ``app.schedules``),
dashboard reads and its audit log, operations (``durable doctor`` and
``inspect``) and retention (``durable cleanup`` and the worker's retention
pass). :class:`StorageBackend` is all of them together: what an app needs.
Row and time conventions are the core's (dict rows, epoch milliseconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .base import ExecutionFilter, Row, Storage

# ---- schedules -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What to do with one due schedule: the runs to start (tick time, execution
    row) and the schedule's next fire time after them."""

    next_run_at: int
    runs: Sequence[tuple[int, Row]]


@dataclass(frozen=True, slots=True)
class Fired:
    """One tick handled: ``execution`` is the stored run, or None when the tick was
    skipped because the previous run of an ``overlap="skip"`` schedule is unfinished."""

    schedule: Row
    tick_at: int
    execution: Row | None


@dataclass(frozen=True, slots=True)
class FirePass:
    fired: list[Fired]
    due: int  # how many due schedules were read (== limit: more may be due)


Planner = Callable[[Row], TickPlan | None]


class ScheduleStorage(Protocol):
    """Persistence of schedules. Rows are dicts of the ``schedules`` columns.

    Execution rows passed in are complete (every column ``Engine.execution_row``
    fills). Exactly once per tick is a property of this storage, not of leader election:
    firing advances ``next_run_at`` with a compare-and-set, records the tick
    (unique per schedule and tick time) and inserts the run in one transaction.
    """

    def insert_schedule(self, row: Row, now: int) -> bool:
        """Store a new schedule; False (nothing stored) if the name is taken."""
        ...

    def get_schedule(self, name: str) -> Row | None:
        """The schedule named ``name``, or None."""
        ...

    def list_schedules(self, workflow: str | None, enabled: bool | None) -> list[Row]:
        """Schedules by name, optionally of one workflow / only (not) enabled."""
        ...

    def update_schedule(self, row: Row, reschedule: bool, now: int) -> bool:
        """Replace the definition columns of ``row["name"]``. ``next_run_at`` changes
        only when ``reschedule`` is set and the schedule is enabled. False if unknown."""
        ...

    def set_schedule_enabled(
        self, name: str, enabled: bool, next_run_at: int | None, now: int
    ) -> bool:
        """Enable or disable; True only if the state changed (idempotent otherwise)."""
        ...

    def delete_schedule(self, name: str) -> bool:
        """Delete the schedule and its fire records; its past runs stay. False if unknown."""
        ...

    def fire_due_schedules(
        self, now: int, workflows: Sequence[str], limit: int, plan: Planner
    ) -> FirePass:
        """Fire up to ``limit`` schedules due at ``now`` (of the given workflows), in one
        transaction: for each, ``plan`` says which runs to start; the schedule moves on
        only if nobody else moved it first, and each tick is recorded once."""
        ...

    def next_schedule_due(self, workflows: Sequence[str]) -> int | None:
        """The earliest ``next_run_at`` among enabled schedules of these workflows."""
        ...

    def trigger_schedule(self, name: str, execution: Row, now: int) -> bool:
        """Store a manual run of ``name`` (False, nothing stored, if it is unknown)."""
        ...

    def prune_schedule_fires(self, before: int) -> int:
        """Forget fire records of ticks before ``before``; how many were forgotten."""
        ...


# ---- dashboard reads and audit ------------------------------------------------------

JSON_COLUMNS = ("input", "context", "result")


@dataclass(frozen=True, slots=True)
class JsonMatch:
    """``column.path... = value`` where column is ``input``, ``context`` or ``result``.

    ``path`` holds object keys only (no array indexes), so SQLite and
    PostgreSQL give the same answers.
    """

    column: Literal["input", "context", "result"]
    path: tuple[str, ...]
    value: Any

    def sqlite_path(self) -> str:
        return "$" + "".join(f'."{key}"' for key in self.path)

    def containment_doc(self) -> str:
        doc: Any = self.value
        for key in reversed(self.path):
            doc = {key: doc}
        return json.dumps(doc)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action as written to the audit log."""

    at: int
    actor: str
    role: str
    action: str
    target: str | None
    params: str | None
    outcome: str
    detail: str | None
    remote: str | None


class DashboardStorage(Protocol):
    """Reads behind the dashboard (filtered search, counts, charts) and its audit log.

    ``matches`` compare one JSON value at one path of an execution's input or
    context, typed (``"7"`` does not match ``7``); at most one per column.
    """

    def dashboard_search_executions(
        self,
        flt: ExecutionFilter,
        matches: Sequence[JsonMatch],
        limit: int,
        cursor: tuple[int, str] | None,
    ) -> list[Row]:
        """Newest first, keyset-paginated on (created_at, id), with JSON matches."""
        ...

    def dashboard_count_executions(
        self, flt: ExecutionFilter, matches: Sequence[JsonMatch], cap: int
    ) -> int:
        """How many executions match, counting at most ``cap``."""
        ...

    def dashboard_select_ids(
        self, flt: ExecutionFilter, matches: Sequence[JsonMatch], cap: int
    ) -> list[Row]:
        """(id, status, workflow_name) of up to ``cap`` matching executions, newest first."""
        ...

    def dashboard_workflow_stats(self) -> list[Row]:
        """Per stored workflow name: runs, failed, waiting, active."""
        ...

    def dashboard_last_run(self, workflow: str) -> Row | None:
        """The newest run of ``workflow`` (id, status, created_at), or None."""
        ...

    def dashboard_buckets(self, since_ms: int, bucket_ms: int) -> tuple[list[Row], list[Row]]:
        """(created per bucket, finished per bucket and status) since ``since_ms``;
        bucket numbers count from 0 at ``since_ms``."""
        ...

    def dashboard_change_marker(self) -> int | None:
        """A number that moves whenever another connection (another process) commits
        a change; cheap, for polling readers. A reader's own writes may not move it."""
        ...

    def dashboard_audit_insert(self, entry: AuditEntry) -> int:
        """Append one entry to the audit log (its own transaction); return its id."""
        ...

    def dashboard_audit_list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Row]:
        """Audit entries matching every given field, newest first, keyset-paginated
        on id (``before_id`` pages back)."""
        ...


# ---- operations -------------------------------------------------------------------


class OpsStorage(Protocol):
    """Reads and safe repairs for ``durable doctor`` and ``durable inspect``.

    Every repair is a conditional write: it changes nothing when the problem is
    already gone (a worker fixed it first), so running it twice is harmless.
    """

    def execution_waits(self, execution_id: str) -> list[Row]:
        """Every wait of a run (sleeps, events, inputs, children), oldest first."""
        ...

    def stale_claims(self, before_ms: int, limit: int = 100) -> list[Row]:
        """Claimed runs whose worker has not heart-beaten since ``before_ms``
        (id, workflow_name, locked_by, heartbeat_at), oldest heartbeat first."""
        ...

    def unwakeable_runs(self, limit: int = 100) -> list[Row]:
        """Unclaimed waiting runs with no wake time and no pending wait: nothing
        will wake them (id, workflow_name, current_step, updated_at)."""
        ...

    def finished_child_waits(self, limit: int = 100) -> list[Row]:
        """Pending child waits whose child already finished (a lost notification):
        wait_id, execution_id (the parent), child_id, child_status, child_result,
        child_error."""
        ...

    def wake_unwakeable(self, execution_id: str, now: int) -> bool:
        """Make a stuck waiting run runnable now (its step re-runs and re-checks).
        False if it is no longer stuck."""
        ...

    def deliver_child_result(self, child_id: str, value: str, now: int) -> None:
        """Resolve the parent's pending wait on a finished child and wake the parent
        (what the child's final checkpoint does; conditional, so at most once)."""
        ...

    def schedule_runs(self, since_ms: int) -> list[Row]:
        """Finished scheduled runs created since ``since_ms`` (schedule_name, status,
        created_at), newest first per schedule."""
        ...

    def database_now_ms(self) -> int:
        """The database server's own clock (for skew checks only; never for timing)."""
        ...


# ---- retention --------------------------------------------------------------------


class RetentionStorage(Protocol):
    """Deleting finished runs with everything that belongs to them.

    A run goes with its whole tree of child runs, their step executions (and
    captured logs), waits, pending inputs and inbox; a tree in which any run is
    still active is left alone, so retention never orphans a running child.
    """

    def count_retention_roots(self, status: str, before_ms: int) -> int:
        """How many top-level runs of ``status`` finished before ``before_ms``."""
        ...

    def retention_roots(
        self, status: str, before_ms: int, after: tuple[int, str] | None, limit: int
    ) -> list[Row]:
        """Top-level runs (no parent left) of ``status`` finished before ``before_ms``,
        oldest first, after the keyset ``after`` = (completed_at, id)."""
        ...

    def measure_execution_tree(self, root_id: str) -> tuple[int, int, bool]:
        """(runs, step executions, every run finished) of a run and its descendants."""
        ...

    def delete_execution_trees(self, root_ids: list[str]) -> tuple[int, int, int]:
        """Delete each finished tree, all in one transaction; trees with an active
        run are skipped. Returns (runs deleted, step executions deleted, trees skipped)."""
        ...


class StorageBackend(
    Storage, ScheduleStorage, DashboardStorage, OpsStorage, RetentionStorage, Protocol
):
    """Everything an app needs of its storage: the core and every extension.
    The memory, SQLite and PostgreSQL backends all provide it."""
