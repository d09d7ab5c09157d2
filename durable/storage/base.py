"""The Storage seam: every piece of persistence behind one protocol.

Rows travel as plain dicts whose keys are column names; JSON columns hold
``durable-json/1`` text and times are UTC epoch milliseconds. Every write a
worker makes on a claimed execution is guarded by its lock token (fencing):
if another worker took the claim over, the write changes nothing and the
method reports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..limits import QueueLimits

Row = dict[str, Any]

#: separates a workflow name from its version in ``KnownWorkflows.versions`` (no
#: workflow name or version contains it: it is a control character)
VERSION_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class KnownWorkflows:
    """The workflows (and versions) a worker has the code for: a claim takes only
    runs of these. A run stored without a version is known by its name alone."""

    names: tuple[str, ...]
    versions: tuple[str, ...]  # f"{name}{VERSION_SEPARATOR}{version}"
    names_json: str = "[]"
    versions_json: str = "[]"

    @classmethod
    def of(cls, versions: Mapping[str, Iterable[str | None]]) -> KnownWorkflows:
        names = tuple(sorted(versions))
        keys = tuple(
            sorted(
                f"{name}{VERSION_SEPARATOR}{version}"
                for name, known in versions.items()
                for version in known
                if version is not None
            )
        )
        return cls(names, keys, json.dumps(list(names)), json.dumps(list(keys)))

    def as_dict(self) -> dict[str, list[str | None]]:
        """{name: [versions]} as workers advertise it (None: unversioned)."""
        out: dict[str, list[str | None]] = {name: [] for name in self.names}
        for key in self.versions:
            name, _, version = key.partition(VERSION_SEPARATOR)
            out[name].append(version)
        for found in out.values():
            if not found:
                found.append(None)
        return out


#: (queue, worker id, new token, known workflows): claim the worker's next run in the
#: commit that ends its current claim
ClaimNext = tuple[str, str, str, KnownWorkflows]


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    workflow: str | None = None
    statuses: tuple[str, ...] | None = None
    queue: str | None = None
    parent_id: str | None = None
    schedule: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    id_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class WaitFilter:
    execution_id: str | None = None
    workflow: str | None = None
    name: str | None = None
    expires_before_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CommitMessage:
    """A message written in the same transaction as a checkpoint, so that a state
    change and its announcement commit together (named query ``commit_message``: a
    NOTIFY on PostgreSQL, an outbox row on SQLite). Built by the transports."""

    channel: str
    text: str
    origin: str


@dataclass(slots=True)
class Checkpoint:
    """One atomic write of a claimed execution's progress.

    ``execution`` holds every mutable column plus ``token`` (the current claim),
    ``new_token`` (None releases the claim), ``suspend`` and ``seen_wakeups``.
    When ``suspend`` is set and a wake-up arrived since the claim, the run is
    woken at once instead of at ``wake_at``.
    """

    execution: Row
    now: int
    steps: list[Row] = field(default_factory=list)
    waits: list[Row] = field(default_factory=list)
    children: list[Row] = field(default_factory=list)
    notify_parent: tuple[str, str] | None = None  # (child id, value json)
    cleanup_waits: bool = False  # cancel the run's pending waits (it ends while waiting)
    reset_waits_of: str | None = None  # a failed step whose ended waits re-arm on retry
    messages: list[CommitMessage] = field(default_factory=list)  # sent with the commit
    #: when this checkpoint ends the claim, claim the next runnable run of the queue
    #: in the same commit (see ``ClaimNext``); ``save`` fills ``claimed``
    claim_next: ClaimNext | None = None
    claimed: list[Row] = field(default_factory=list)


class Storage(Protocol):
    """All persistence. Implementations: memory (tests), SQLite, PostgreSQL."""

    dialect: str
    #: where the data lives, for the transports that share it (``durable.transport``):
    #: the PostgreSQL URL or the SQLite file's path; "" for an in-memory database
    location: str

    def migrate(self, *, relocate: bool = False) -> list[str]:
        """Apply pending migrations; return their names. Safe to run concurrently.

        PostgreSQL: with ``relocate``, tables of an older database found in schema
        ``public`` are moved into the instance's schema first; without it, such a
        database raises SchemaError (nothing is created beside the old runs)."""
        ...

    def pending_migrations(self) -> list[str]:
        """Names of migrations not yet applied (empty when current)."""
        ...

    def close(self) -> None:
        """Release connections; the object is not used afterwards."""
        ...

    # executions
    def create_executions(self, rows: list[Row], now: int) -> list[bool]:
        """Insert new executions atomically (all or none), decided in one transaction.

        A row whose id is already stored (a keyed start asked again, however many
        processes race) is not inserted: its flag is False. If that stored run is of
        another workflow, ExecutionIdConflictError is raised and nothing is stored.
        """
        ...

    def get_execution(self, execution_id: str) -> Row | None:
        """The execution row with this id, or None."""
        ...

    def find_ids_by_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` execution ids starting with ``prefix`` (taken literally), in order."""
        ...

    def find_ids_by_suffix(self, suffix: str, limit: int) -> list[str]:
        """Ids ending with ``suffix`` (a short id), at most ``limit``."""
        ...

    def list_executions(
        self, flt: ExecutionFilter, limit: int, cursor: tuple[int, str] | None
    ) -> list[Row]:
        """Newest first, keyset-paginated on (created_at, id)."""
        ...

    def list_children(self, execution_id: str) -> list[Row]:
        """Direct children of a run, oldest first."""
        ...

    def list_steps(self, execution_id: str) -> list[Row]:
        """Every step attempt of a run, in the order they started."""
        ...

    def completed_steps(self, execution_id: str) -> list[Row]:
        """The completed step attempts of a run (step_name, step_type, result,
        completed_at, id), in the order they completed: what compensation undoes."""
        ...

    # the worker's path
    def claim(
        self,
        queue: str,
        limit: int,
        worker_id: str,
        token: str,
        now: int,
        known: KnownWorkflows,
        limits: QueueLimits | None = None,
    ) -> list[Row]:
        """Claim up to ``limit`` runnable executions of ``queue`` whose workflow (and
        version) is in ``known`` (runs of other workflows are left alone); none twice. With
        ``limits``, the queue's fleet-wide limits hold too: limited claims of one
        queue are serialised, and the claim takes its tokens in the same commit."""
        ...

    def queue_usage(self, queue: str, limits: QueueLimits, now: int) -> Row:
        """A limited queue now: ``limits``, ``in_use`` (slots = claims), ``tokens``
        left, ``ready`` runs and ``held_back`` counts per limit."""
        ...

    def hold_reason(self, row: Row, limits: QueueLimits, now: int) -> str | None:
        """Which limit of its queue holds back this claimable run, in words."""
        ...

    def prune_key_buckets(self, queue: str, before: int) -> int:
        """Delete the per-key token buckets of ``queue`` last refilled before
        ``before`` (full by now: the same as none); return how many."""
        ...

    def claim_suspect(self, queue: str, worker_id: str, token: str, now: int) -> Row | None:
        """Claim one runnable suspect of ``queue`` (a run whose worker died while it was
        claimed, since its last checkpoint); the caller runs it alone."""
        ...

    def suspect_waiting(self, queue: str, now: int) -> bool:
        """True when a suspect of ``queue`` is runnable now."""
        ...

    def release_claim(
        self, execution_id: str, token: str, now: int, wake_at: int, crash_error: str | None
    ) -> bool:
        """End a claim leaving the run as stored (running becomes pending; a terminal
        run is never touched); with ``crash_error`` one executor failure is counted on the
        run's crash budget. False if the claim was not held with ``token``."""
        ...

    def refund_death(self, execution_id: str) -> None:
        """Take back one worker death counted on a run (its worker turned out alive)."""
        ...

    def release_token(self, token: str, now: int) -> int:
        """Release whatever claim holds ``token`` (a claim no thread runs)."""
        ...

    def save(self, checkpoint: Checkpoint) -> bool:
        """Apply a checkpoint atomically; False (nothing written) if the claim was lost."""
        ...

    def register_waits(
        self, execution_id: str, token: str, rows: list[Row], now: int, children: list[Row]
    ) -> list[Row]:
        """Insert a wait group (idempotent) and any child executions it starts, and
        match buffered events or inputs to it.

        Returns the group's rows as stored. Raises LostClaimError if the claim is gone.
        """
        ...

    def waits_for_step(self, execution_id: str, step_name: str) -> list[Row]:
        """Every wait a step of a run registered, by call sequence then name."""
        ...

    def expire_waits(self, wait_ids: list[str], now: int) -> list[str]:
        """Mark pending waits timed out; return the ids that were still pending."""
        ...

    # from outside a run
    def send_event(self, execution_id: str, name: str, payload: str, now: int) -> Row | None:
        """Deliver an event: resolve the oldest matching pending wait and wake the run,
        or buffer it. Returns the resolved wait row, or None when buffered."""
        ...

    def get_pending_input(self, execution_id: str, name: str) -> Row | None:
        """The pending input wait of a run with this name, or None."""
        ...

    def list_input_waits(self, execution_id: str, name: str) -> list[Row]:
        """Every input wait of a run with this name, whatever its status."""
        ...

    def resolve_input(self, wait: Row, value: str, now: int) -> bool:
        """Answer a pending input; False if someone else answered it first."""
        ...

    def reopen_wait(self, wait_id: str, now: int) -> None:
        """Put a wait back to pending (a buffered input failed validation)."""
        ...

    def buffer_input(self, execution_id: str, name: str, value: str, now: int) -> bool:
        """Keep an input for a wait not reached yet; False if one is already kept."""
        ...

    def cancel_executions(
        self, execution_id: str, error: str, now: int, *, compensate: bool = False
    ) -> list[Row]:
        """Cancel a run and its active descendants, their waits, inbox and waiting step
        (recorded as cancelled), in one transaction; return them. With ``compensate``
        the run itself becomes ``compensating`` and is released for a worker to undo its
        finished steps; its descendants are cancelled."""
        ...

    def cancel_waits(self, execution_id: str, now: int) -> int:
        """Cancel every pending wait of a run and wake it; return how many."""
        ...

    def retry_execution(self, execution_id: str, attempts: str, now: int) -> bool:
        """Make an unclaimed failed run pending again from its current step, with
        ``attempts`` (JSON) as its attempt counts. False (nothing changed) otherwise."""
        ...

    def recover_stale(self, stale_before: int, now: int) -> list[Row]:
        """Release claims whose heartbeat is older than ``stale_before`` (each exactly
        once: two workers recovering at once release each claim once) and make those runs
        claimable now, counting a worker death on each run whose worker stopped
        heart-beating too; return ``id``, ``workflow_name``, ``locked_by`` (the dead
        worker), ``current_step``, ``crashes`` and ``deaths``."""
        ...

    def release_worker_claims(self, worker_id: str, now: int) -> int:
        """Release every claim of a worker that stops (runs become claimable now)."""
        ...

    def heartbeat(self, worker: Row, now: int, tokens: list[str]) -> None:
        """Upsert the worker row and refresh the heartbeat of the claims it runs (by lock
        token): a claim no thread runs any more is left to go stale."""
        ...

    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker row (idempotent)."""
        ...

    def delete_dead_workers(self, before: int) -> int:
        """Forget workers whose last heartbeat is before ``before``; how many."""
        ...

    def list_workers(self) -> list[Row]:
        """Every known worker row (queues as JSON text), oldest first."""
        ...

    def runnable_groups(self, now: int) -> list[Row]:
        """Runnable, unclaimed runs grouped by (workflow_name, workflow_version, queue):
        ``n`` runs, due since ``due_since`` (the oldest wake time)."""
        ...

    def queue_counts(self) -> list[Row]:
        """(queue, status, n) of every unfinished execution."""
        ...

    def status_counts(self, since_ms: int | None) -> list[Row]:
        """(status, n) of executions created since ``since_ms`` (all when None)."""
        ...

    def list_pending_waits(self, kind: str, flt: WaitFilter, limit: int) -> list[Row]:
        """Pending waits of ``kind`` (``input``, ``event``) matching ``flt``, with the
        run's workflow_name, oldest first."""
        ...
