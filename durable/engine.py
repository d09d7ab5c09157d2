"""The engine: storage, clock, bus, notifier and registry wired together.

It holds the domain logic of every verb: the facade (``Durable``) checks
arguments and calls in here, and so do the runner and the step primitives, so
each operation exists once.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import codec
from .clock import Clock
from .codec import Codec, check_int, check_text
from .errors import (
    DurableError,
    InputAlreadyProvidedError,
    InvalidStateError,
    WorkflowNotFoundError,
)
from .executor.errors import error_plain
from .ids import check_execution_id, child_id, new_id
from .inputs import validate
from .limits import QueueLimits, check_limits, run_keys
from .models import TERMINAL_STATUSES, Execution
from .notify import Notifier
from .observe import Observers
from .pubsub import PubSub
from .pubsub.payloads import input_payload, workflow_payload
from .query import Query
from .storage import KnownWorkflows, Row, StorageBackend
from .workflow import Step, Workflow

if TYPE_CHECKING:
    from .runtime import StepRuntime

log = logging.getLogger("durable")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    poll_interval_seconds: float = 0.5
    stale_timeout_seconds: float = 30.0
    heartbeat_interval_seconds: float = 5.0
    maintenance_interval_seconds: float = 5.0
    #: executor failures + worker deaths a run may cause (since its last checkpoint)
    #: before it is failed with an error naming the cause
    crash_budget: int = 5


class Engine:
    def __init__(
        self,
        *,
        name: str,
        storage: StorageBackend,
        clock: Clock,
        pubsub: PubSub,
        notifier: Notifier,
        config: EngineConfig,
        rand: Callable[[], float] = random.random,
        limits: Mapping[str, QueueLimits] | None = None,
        observer: Observers | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.name = name
        #: encodes every user value this instance stores (its size limit included)
        self.codec = codec or Codec()
        self.storage = storage
        self.clock = clock
        self.pubsub = pubsub
        self.notifier = notifier
        self.config = config
        self.rand = rand
        self.query = Query(storage)
        #: fleet-wide limits per queue (see durable/limits.py), enforced in the claim
        self.limits: dict[str, QueueLimits] = check_limits(limits)
        #: logging and telemetry (durable.observe): told of attempts, endings, recoveries
        self.observer = observer if observer is not None else Observers()
        self.registry: dict[str, Workflow] = {}  # the newest version of each name
        self.versions: dict[str, dict[str | None, Workflow]] = {}
        self._known = KnownWorkflows.of({})

    # ---- registry ---------------------------------------------------------------

    def register(self, workflows: Iterable[Workflow]) -> None:
        """Add definitions. Several versions of one name may be registered: new runs
        use the highest version, a run keeps the version it started with."""
        for wf in workflows:
            if not isinstance(wf, Workflow):
                raise DurableError(f"workflows= takes Workflow objects, got {wf!r}")
            versions = self.versions.setdefault(wf.name, {})
            known = versions.get(wf.version)
            if known is not None and known is not wf:
                label = "" if wf.version is None else f" version {wf.version!r}"
                raise DurableError(f"two different workflows are named {wf.name!r}{label}")
            if (None in versions) != (wf.version is None) and versions:
                raise DurableError(
                    f"workflow {wf.name!r} is registered with and without a version; "
                    "give every definition of it a version="
                )
            if any(ord(c) < 32 for c in wf.name + (wf.version or "")):
                raise DurableError(f"workflow name {wf.name!r} has a control character")
            versions[wf.version] = wf
            self.registry[wf.name] = versions[max(versions, key=_version_key)]
            self._known = KnownWorkflows.of(self.versions)

    def known(self) -> KnownWorkflows:
        """The workflows and versions registered here: what a worker may claim."""
        return self._known

    def queues(self) -> set[str]:
        """Every queue the registered workflows and their steps use."""
        names: set[str] = set()
        for versions in self.versions.values():
            for wf in versions.values():
                names |= wf.queues()
        return names

    def definition(self, name: str, version: str | None) -> Workflow | None:
        """The definition a run uses: its own version, or None if that is not here."""
        versions = self.versions.get(name)
        if not versions:
            return None
        if version is None:
            return self.registry[name]
        return versions.get(version)

    def workflow(self, ref: Workflow | str) -> Workflow:
        """The definition to start: a Workflow object (registered on first use, its own
        version), or a name (the newest registered version)."""
        if isinstance(ref, Workflow):
            known = self.versions.get(ref.name, {}).get(ref.version)
            if known is None:
                self.register([ref])
                return ref
            return known
        wf = self.registry.get(ref) if isinstance(ref, str) else None
        if wf is None:
            known_names = ", ".join(sorted(self.registry)) or "none"
            raise WorkflowNotFoundError(f"unknown workflow {ref!r} (registered: {known_names})")
        return wf

    # ---- creating executions -------------------------------------------------------

    def execution_row(
        self,
        ref: Workflow | str,
        input: Any,
        *,
        execution_id: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        wake_at: int | None = None,
        parent_id: str | None = None,
        parent_step: str | None = None,
        schedule_name: str | None = None,
        schedule_tick_at: int | None = None,
    ) -> Row:
        check_int(priority, "priority")
        if queue is not None:
            check_text(queue, "queue")
        if wake_at is not None:
            check_int(wake_at, "scheduled_at (epoch ms)", minimum=0)
        run_id = new_id() if execution_id is None else check_execution_id(execution_id)
        if isinstance(ref, str) and not self.registry:
            # a client app (no workflows): start by name; a worker that has the code
            # begins at its first step, on the queue given here ("default" otherwise)
            if not ref:
                raise WorkflowNotFoundError("a workflow name must be a non-empty string")
            name, version, first, first_queue = ref, None, None, "default"
        else:
            wf = self.workflow(ref)
            name, version, first = wf.name, wf.version, wf.program.first
            assert first is not None
            first_queue = step_queue(wf, first)
        text = self.codec.encode(input, f"the input of workflow {name!r}")
        if first is None:  # by name: no code here, so no limit keys either
            limit_keys = None
        else:
            queues = wf.queues() | {queue or first_queue}
            # computed once, when the run starts: a key function that fails fails this start
            limit_keys = run_keys(self.limits, queues, wf.name, input) if self.limits else None
        carrier = self.observer.trace_context(name, run_id, parent_id)
        return {
            "id": run_id,
            "workflow_name": name,
            "workflow_version": version,
            "status": "pending",
            "queue": queue or first_queue,
            "priority": priority,
            "input": text,
            "context": text,
            "current_step": first,
            "parent_id": parent_id,
            "parent_step": parent_step,
            "schedule_name": schedule_name,
            "schedule_tick_at": schedule_tick_at,
            "wake_at": self.clock.now_ms() if wake_at is None else wake_at,
            "limit_keys": limit_keys,
            "trace_context": json.dumps(carrier) if carrier else None,
        }

    def start(
        self,
        ref: Workflow | str,
        inputs: Sequence[Any],
        *,
        ids: Sequence[str] | None = None,
        queue: str | None = None,
        priority: int = 0,
        wake_at: int | None = None,
    ) -> list[str]:
        """Store one execution per input in one transaction (all or none); their ids.

        ``ids``: one caller id per input; an id already stored starts nothing and is
        returned as it is (see ``Storage.create_executions``)."""
        items = list(inputs)
        if ids is not None and (isinstance(ids, str) or len(ids) != len(items)):
            raise DurableError(
                f"ids= needs one id per input ({len(items)} inputs), got {ids!r:.80}"
            )
        keys: list[str | None] = list(ids) if ids is not None else [None] * len(items)
        rows = [
            self.execution_row(
                ref, item, execution_id=key, queue=queue, priority=priority, wake_at=wake_at
            )
            for item, key in zip(items, keys, strict=True)
        ]
        self.insert(rows)
        return [str(r["id"]) for r in rows]

    def insert(self, rows: list[Row]) -> list[bool]:
        """Store new executions, then announce those that are new (started event, wake
        workers). A row whose id is already stored starts nothing (see
        ``Storage.create_executions``); the flags say which rows were new."""
        now = self.clock.now_ms()
        created = self.storage.create_executions(rows, now)
        for row, new in zip(rows, created, strict=True):
            if new:
                self.announce_started(row, now)
        return created

    def announce_started(self, row: Row, now: int) -> None:
        full = {
            **row,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "completed_at": None,
        }
        self.pubsub.broadcast_workflow(
            "workflow_started", lambda: workflow_payload(full), execution_id=row["id"]
        )
        self.notifier.notify(row["queue"])
        self.observer.run_created(row)

    def child_row(
        self, ref: Workflow | str, input: Any, rt: StepRuntime, queue: str | None, seq: int
    ) -> Row:
        """A child started by a step: its id follows from (parent, step, call number)."""
        return self.execution_row(
            ref,
            input,
            execution_id=child_id(rt.execution_id, rt.step_name, seq),
            queue=queue,
            parent_id=rt.execution_id,
            parent_step=rt.step_name,
        )

    # ---- hooks for the step primitives ------------------------------------------------

    def after_register(self, rt: StepRuntime, group: list[Row], children: list[Row]) -> None:
        now = self.clock.now_ms()
        for child in children:
            self.announce_started(child, now)
        for row in group:
            if row["kind"] == "input":
                if row["status"] == "pending":
                    self.announce_input(rt, row)
                elif row["status"] == "resolved":
                    self.pubsub.broadcast_input(
                        "input_provided", input_payload(row, rt.workflow_name)
                    )

    def announce_input(self, rt: StepRuntime, row: Row) -> None:
        self.pubsub.broadcast_input("input_requested", input_payload(row, rt.workflow_name))

    # ---- acting on runs from outside ------------------------------------------------

    def wait_for_completion(self, execution_id: str, timeout: float | None) -> Execution:
        """Block until the run is finished (woken by its events when a bus is on)."""
        deadline = None if timeout is None else self.clock.now_ms() + timeout * 1000
        topic = self.pubsub.workflow_topic(execution_id)
        sub = self.pubsub.subscribe(topic, buffer=16) if self.pubsub.server is not None else None
        try:
            while True:
                execution = self.query.get_execution(execution_id)
                if execution.is_finished:
                    return execution
                now = self.clock.now_ms()
                left = 0.25 if deadline is None else min(0.25, (deadline - now) / 1000)
                if left <= 0:
                    raise TimeoutError(
                        f"execution {execution_id} is still {execution.status.value}"
                    )
                if sub is not None:
                    sub.get(left)
                else:
                    threading.Event().wait(left)
        finally:
            if sub is not None:
                self.pubsub.unsubscribe(sub)

    def cancel_execution(self, execution_id: str, reason: str, *, compensate: bool = False) -> None:
        """Cancel an unfinished run and its running children (InvalidStateError if finished).
        With ``compensate``, its finished steps are undone by a worker (a plain cancel
        when this app has the code and no finished step has a compensation)."""
        check_text(reason, "the cancel reason", empty=True, max_chars=10_000)
        current = self.query.get_execution(execution_id)
        if current.is_finished:
            raise InvalidStateError(
                f"execution {execution_id} is already {current.status.value}; nothing to cancel"
            )
        if compensate and current.status.value == "compensating":
            raise InvalidStateError(f"execution {execution_id} is already compensating")
        if compensate:
            known = self.has_compensations(
                execution_id, current.workflow_name, current.workflow_version
            )
            compensate = known is not False
        self.cancel(execution_id, reason, compensate=compensate)

    def retry(self, execution_id: str) -> None:
        """Make a failed run claimable again from the step that failed."""
        current = self.query.execution_row(execution_id)
        if current["status"] != "failed":
            raise InvalidStateError(
                f"execution {execution_id} is {current['status']}; only failed executions can be retried"
            )
        if not self.storage.retry_execution(execution_id, "{}", self.clock.now_ms()):
            raise InvalidStateError(
                f"execution {execution_id} changed while retrying; look at it again"
            )
        self.notifier.notify(current["queue"])

    def send_event(self, execution_id: str, name: str, payload: Any) -> bool:
        """Deliver an event; True if a waiting step took it, False if it was buffered."""
        check_text(name, "an event name")
        current = self.query.execution_row(execution_id)
        if current["status"] in TERMINAL_STATUSES:
            raise InvalidStateError(
                f"execution {execution_id} is {current['status']}; it takes no more events"
            )
        text = self.codec.encode(payload, f"the payload of event {name!r}")
        wait = self.storage.send_event(execution_id, name, text, self.clock.now_ms())
        if wait is not None:
            self.notifier.notify(current["queue"])
        return wait is not None

    def provide_input(self, execution_id: str, name: str, value: Any) -> None:
        """Answer a pending input, or keep the answer until the run asks for it."""
        check_text(name, "an input name")
        current = self.query.execution_row(execution_id)
        if current["status"] in TERMINAL_STATUSES:
            raise InvalidStateError(
                f"execution {execution_id} is {current['status']}; it takes no more input"
            )
        now = self.clock.now_ms()
        wait = self.storage.get_pending_input(execution_id, name)
        if wait is None:
            if self.storage.list_input_waits(execution_id, name):
                raise InputAlreadyProvidedError(
                    f"input {name!r} of execution {execution_id} was already provided"
                )
            text = self.codec.encode(value, f"the value of input {name!r}")
            if not self.storage.buffer_input(execution_id, name, text, now):
                raise InputAlreadyProvidedError(
                    f"input {name!r} of execution {execution_id} was already provided and awaits the run"
                )
            return
        spec = codec.decode(wait["spec"]) or {}
        accepted = validate(wait["input_type"] or "any", spec, value)
        text = self.codec.encode(accepted, f"the value of input {name!r}")
        if not self.storage.resolve_input(wait, text, now):
            raise InputAlreadyProvidedError(
                f"input {name!r} of execution {execution_id} was already provided"
            )
        self.notifier.notify(current["queue"])
        resolved = {**wait, "status": "resolved"}
        self.pubsub.broadcast_input(
            "input_provided", input_payload(resolved, current["workflow_name"])
        )

    def cancel_waits(self, execution_id: str) -> int:
        """End every pending wait of a run; how many there were."""
        current = self.query.execution_row(execution_id)
        n = self.storage.cancel_waits(execution_id, self.clock.now_ms())
        if n:
            self.notifier.notify(current["queue"])
        return n

    # ---- cancelling -------------------------------------------------------------

    def cancel(self, execution_id: str, reason: str, *, compensate: bool = False) -> list[Row]:
        """Cancel a run and its active children. With ``compensate``, the run is handed
        to a worker that runs its compensations (the cancelled event comes when they end)."""
        error = error_plain("Cancelled", reason)
        rows = self.storage.cancel_executions(
            execution_id, codec.encode(error), self.clock.now_ms(), compensate=compensate
        )
        for row in rows:
            if row["status"] == "compensating":
                self.notifier.notify(row["queue"])
                continue
            self.pubsub.broadcast_workflow("workflow_cancelled", workflow_payload(row, error=error))
            self.observer.run_ended(row, "cancelled", error)
            if row["parent_id"]:
                self.notifier.notify("*")
        return rows

    def has_compensations(self, execution_id: str, name: str, version: str | None) -> bool | None:
        """Whether a finished step of the run has a compensation (None without the code)."""
        from .executor.compensation import compensation_of

        wf = self.definition(name, version)
        if wf is None:
            return None
        done = self.storage.completed_steps(execution_id)
        return any(
            compensation_of(wf, r["step_name"]) is not None
            for r in done
            if r["step_type"] == "step"
        )


def _version_key(version: str | None) -> tuple[int, int, str]:
    if version is None:
        return (0, 0, "")
    return (1, int(version), "") if version.isdigit() else (2, 0, version)


def step_queue(wf: Workflow, step_name: str) -> str:
    """The queue the named step runs on."""
    node = wf.program.instrs[step_name].node
    if isinstance(node, Step) and node.queue:
        return node.queue
    return wf.queue
