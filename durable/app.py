"""``Durable``: the facade users hold. Every verb has a sync form and an
``_async`` form (``start`` / ``start_async``) with the same arguments."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from . import checks, codec
from .clock import Clock, SystemClock, to_ms
from .engine import Engine, EngineConfig
from .errors import (
    ConfigurationError,
    DatabaseGoneError,
    DurableError,
    InvalidStateError,
    SchemaError,
    StepError,
    StorageError,
)
from .limits import QueueLimits, check_limits
from .logcapture import LogCapture
from .models import (
    Execution,
    Page,
    PendingEvent,
    PendingInput,
    StepExecution,
)
from .notify import Notifier
from .observe import default_observers
from .pubsub import Bus, PubSub, Subscription
from .query import Query
from .queue.worker import Worker
from .retention import Retention, RetentionPass
from .scheduler.manager import ScheduleManager
from .signals import open_signals
from .storage import StorageBackend, WaitFilter, open_storage
from .twins import async_twin
from .workflow import Workflow

log = logging.getLogger("durable")


class Durable:
    """A Durable instance: one database, one bus, the registered workflows.

    >>> from durable import Durable, Workflow, step
    >>> wf = Workflow("double", [step(lambda n: n * 2, name="double")])
    >>> app = Durable("memory://", workflows=[wf])
    >>> run_id = app.start(wf, 21)
    >>> app.get_execution(run_id).status
    <ExecutionStatus.PENDING: 'pending'>
    >>> app.close()
    """

    def __init__(
        self,
        url: str = "sqlite:///durable.db",
        workflows: Iterable[Workflow] = (),
        *,
        name: str = "durable",
        schema: str | None = None,
        clock: Clock | None = None,
        pubsub: bool | str | Bus | None = True,
        notifier: Notifier | None = None,
        auto_migrate: bool = True,
        queues: Mapping[str, int] | None = None,
        limits: Mapping[str, QueueLimits] | None = None,
        poll_interval_seconds: float = 0.5,
        stale_timeout_seconds: float = 30.0,
        heartbeat_interval_seconds: float = 5.0,
        maintenance_interval_seconds: float = 5.0,
        crash_budget: int = 5,
        storage: StorageBackend | None = None,
        storage_options: Mapping[str, Any] | None = None,
        log_capture: bool | LogCapture | None = True,
        retention: Retention | Mapping[str, Any] | None = None,
        telemetry: bool | None = None,
        max_value_bytes: int = codec.DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigurationError(f"name must be a non-empty string without ':', got {name!r}")
        for label, value in (
            ("poll_interval_seconds", poll_interval_seconds),
            ("stale_timeout_seconds", stale_timeout_seconds),
            ("heartbeat_interval_seconds", heartbeat_interval_seconds),
            ("maintenance_interval_seconds", maintenance_interval_seconds),
        ):
            checks.positive_number(value, label, error=ConfigurationError)
        if not checks.is_int(crash_budget) or crash_budget < 1:
            raise ConfigurationError(f"crash_budget must be an int >= 1, got {crash_budget!r}")
        if heartbeat_interval_seconds >= stale_timeout_seconds:
            raise ConfigurationError(
                "heartbeat_interval_seconds must be shorter than stale_timeout_seconds"
            )
        limits = check_limits(limits)
        self._options: dict[str, Any] = {
            "name": name,
            "clock": clock,
            "pubsub": pubsub,
            "notifier": notifier,
            "auto_migrate": auto_migrate,
            "queues": queues,
            "poll_interval_seconds": poll_interval_seconds,
            "stale_timeout_seconds": stale_timeout_seconds,
            "heartbeat_interval_seconds": heartbeat_interval_seconds,
            "maintenance_interval_seconds": maintenance_interval_seconds,
            "storage_options": storage_options,
            "log_capture": log_capture,
            "retention": retention,
            "limits": limits,
        }
        self._own_storage = storage is None
        try:
            value_codec = codec.Codec(max_value_bytes)
        except DurableError as exc:
            raise ConfigurationError(str(exc)) from None
        self.name = name
        self.url = url
        if storage is not None and schema is not None:
            raise ConfigurationError("pass schema= to your storage object, not to Durable")
        self.storage: StorageBackend = storage or open_storage(
            url, schema=schema, **dict(storage_options or {})
        )
        #: the PostgreSQL schema of the tables (None for SQLite: one file, one namespace)
        self.schema: str | None = getattr(self.storage, "schema", None)
        signals = open_signals(
            self.storage, name=name, pubsub=pubsub, notifier=notifier, clock=clock
        )
        self._owns_bus = signals.owns_bus
        self.pubsub = PubSub(name, signals.bus, signals.commit)
        config = EngineConfig(
            poll_interval_seconds=poll_interval_seconds,
            stale_timeout_seconds=stale_timeout_seconds,
            heartbeat_interval_seconds=heartbeat_interval_seconds,
            maintenance_interval_seconds=maintenance_interval_seconds,
            crash_budget=crash_budget,
        )
        self.engine = Engine(
            name=name,
            storage=self.storage,
            clock=clock or SystemClock(),
            pubsub=self.pubsub,
            notifier=signals.notifier,
            config=config,
            limits=limits,
            codec=value_codec,
        )
        # logs always; OpenTelemetry with telemetry=True, or None and it is installed
        self.engine.observer = default_observers(self.engine, telemetry)
        self.engine.register(workflows)
        self.query: Query = self.engine.query
        self._auto_migrate = auto_migrate
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._default_queues = dict(queues) if queues else None
        self._worker: Worker | None = None
        self.capture_hook: Any = None
        self.log_capture = LogCapture.from_option(log_capture)
        if self.log_capture is not None:
            self.capture_hook = self.log_capture.hook
        self.retention = Retention.from_option(retention)
        #: run-time schedule API: create/get/list/update/delete/enable/disable/trigger
        self.schedules = ScheduleManager(self.engine, self.ready)

    # ---- setup --------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    @property
    def workflows(self) -> dict[str, Workflow]:
        return dict(self.engine.registry)

    def register(self, *workflows: Workflow) -> None:
        """Add workflows after construction."""
        self.engine.register(workflows)

    def get_workflow(self, name: str) -> Workflow:
        return self.engine.workflow(name)

    def with_schema(self, schema: str) -> Durable:
        """The same app (workflows and options) on another PostgreSQL schema of the same
        database; this app is closed. Used by ``durable --schema``."""
        if not self._own_storage:
            raise ConfigurationError("an app built on your own storage object cannot switch schema")
        workflows = [wf for versions in self.engine.versions.values() for wf in versions.values()]
        other = Durable(self.url, workflows, schema=schema, **self._options)
        self.close()
        return other

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names. On PostgreSQL, an older
        database's tables found in schema ``public`` are first moved into this app's
        schema (stop the old workers first)."""
        done = self.storage.migrate(relocate=True)
        self._schema_ready = True
        return done

    def pending_migrations(self) -> list[str]:
        return self.storage.pending_migrations()

    def ready(self) -> Engine:
        """The engine, once the schema is current (migrated first with ``auto_migrate``,
        else SchemaError) and the declared schedules are stored. Every verb calls it;
        front ends (CLI, dashboard) call it before reading through ``app.query``."""
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    if self._auto_migrate:
                        self.storage.migrate()
                    else:
                        missing = self.storage.pending_migrations()
                        if missing:
                            raise SchemaError(
                                f"the database schema is not current (pending: {', '.join(missing)}); "
                                "run `durable migrate --app <module:attribute>`"
                            )
                    self._schema_ready = True
        self.schedules.ensure_declared()
        return self.engine

    # ---- starting and reading --------------------------------------------------------

    def start(
        self,
        workflow: Workflow | str,
        input: Any = None,
        *,
        id: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
    ) -> str:
        """Store a new execution (status pending) and return its id.

        ``id``: the caller's own run id (1 to 200 characters). Starting again with an
        id already stored returns it and starts nothing (decided in one transaction,
        so racing callers get one run); the same id under another workflow raises
        ExecutionIdConflictError. ``priority``: higher runs first within a queue.
        ``scheduled_at``: an aware datetime before which the run does not start.
        An app without workflows (a client) starts by name; its runs wait for a
        worker that has the code.
        """
        engine = self.ready()
        wake = to_ms(scheduled_at, "scheduled_at") if scheduled_at is not None else None
        ids = None if id is None else [id]
        return engine.start(
            workflow, [input], ids=ids, queue=queue, priority=priority, wake_at=wake
        )[0]

    def start_many(
        self,
        workflow: Workflow | str,
        inputs: Sequence[Any],
        *,
        ids: Sequence[str] | None = None,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
    ) -> list[str]:
        """Start one execution per input in a single transaction (all or none).

        ``ids``: one caller id per input (see ``start``); ids already stored start
        nothing and are returned as they are.
        """
        engine = self.ready()
        wake = to_ms(scheduled_at, "scheduled_at") if scheduled_at is not None else None
        return engine.start(
            workflow, list(inputs), ids=ids, queue=queue, priority=priority, wake_at=wake
        )

    def get_execution(self, execution_id: str) -> Execution:
        """The execution with this id (ExecutionNotFoundError if none)."""
        self.ready()
        return self.query.get_execution(execution_id)

    def list_executions(
        self,
        *,
        workflow: str | None = None,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        parent_id: str | None = None,
        schedule: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Newest first. Pass ``page.next_cursor`` as ``cursor`` for the next page.

        ``search``: runs by what they hold, as the dashboard searches:
        ``"input.order.id = o-7"``, ``"context.total = 12"``, ``"result.charge_id = ch-1"``
        (several joined by ``and``; the value is JSON when it parses, else text)."""
        self.ready()
        return self.query.list_executions(
            workflow=workflow,
            status=status,
            queue=queue,
            parent_id=parent_id,
            schedule=schedule,
            since=since,
            until=until,
            search=search,
            limit=limit,
            cursor=cursor,
        )

    def list_steps(self, execution_id: str) -> list[StepExecution]:
        """Every step attempt of a run, oldest first (attempts, durations, errors)."""
        self.ready()
        return self.query.list_steps(execution_id)

    def list_children(self, execution_id: str) -> list[Execution]:
        self.ready()
        return self.query.list_children(execution_id)

    def wait_for_completion(self, execution_id: str, timeout: float | None = None) -> Execution:
        """Block until the run reaches a terminal status; TimeoutError after ``timeout``."""
        if timeout is not None:
            checks.seconds(timeout, "timeout")
        return self.ready().wait_for_completion(execution_id, timeout)

    # ---- acting on runs ----------------------------------------------------------------

    def cancel(
        self, execution_id: str, reason: str = "cancelled", *, compensate: bool = False
    ) -> Execution:
        """Cancel a run and its running children; pending inputs and events go too, and
        the step it waited in is recorded as cancelled. Nothing is undone unless
        ``compensate=True``: then the compensations of its finished steps run in
        reverse order (on a worker that has the code) and the run ends ``compensated``
        or ``compensation_failed`` (status ``compensating`` until then)."""
        self.ready().cancel_execution(execution_id, reason, compensate=compensate)
        return self.query.get_execution(execution_id)

    def retry(self, execution_id: str) -> Execution:
        """Run a failed execution again from the step that failed."""
        self.ready().retry(execution_id)
        return self.query.get_execution(execution_id)

    def send_event(self, execution_id: str, name: str, payload: Any = None) -> bool:
        """Deliver an event to a run. Returns True if a waiting step took it, False if
        it was buffered for a wait the run has not reached yet."""
        engine = self.ready()
        return engine.send_event(execution_id, name, payload)

    def provide_input(self, execution_id: str, name: str, value: Any) -> None:
        """Answer a pending input (validated against its declared type).

        Raises InputValidationError (the run keeps waiting), InputAlreadyProvidedError
        when someone answered first, InvalidStateError for a finished run. An input
        given before the run asks for it is kept and checked when the run gets there.
        """
        self.ready().provide_input(execution_id, name, value)

    def list_pending_inputs(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | None = None,
        name: str | None = None,
        expiring_before: datetime | None = None,
        limit: int = 100,
    ) -> list[PendingInput]:
        self.ready()
        flt = WaitFilter(
            execution_id, workflow, name, to_ms(expiring_before) if expiring_before else None
        )
        return self.query.pending_inputs(flt, limit)

    def list_pending_events(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | None = None,
        name: str | None = None,
        expiring_before: datetime | None = None,
        limit: int = 100,
    ) -> list[PendingEvent]:
        self.ready()
        flt = WaitFilter(
            execution_id, workflow, name, to_ms(expiring_before) if expiring_before else None
        )
        return self.query.pending_events(flt, limit)

    def cancel_wait(self, execution_id: str) -> int:
        """End every pending wait of a run: each wait call returns its ``timeout_value``
        (or raises WaitCancelledError). Returns how many waits were cancelled."""
        return self.ready().cancel_waits(execution_id)

    def result(self, execution_id: str, timeout: float | None = None) -> Any:
        """Wait for the run and return its result; StepError if it did not complete."""
        execution = self.wait_for_completion(execution_id, timeout)
        if execution.status.value != "completed":
            raise StepError(execution.error or {"type": execution.status.value, "message": ""})
        return execution.result

    # ---- pub/sub -----------------------------------------------------------------

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription:
        """Shortcut for ``app.pubsub.subscribe``."""
        if self.pubsub.server is not None:
            self.ready()  # a database-backed bus reads its tables
        return self.pubsub.subscribe(topic, buffer=buffer)

    # ---- workers -------------------------------------------------------------------

    def worker(self, queues: Mapping[str, int] | None = None, **options: Any) -> Worker:
        """A worker bound to this app (not started)."""
        engine = self.ready()
        if not engine.registry:
            raise ConfigurationError(
                "this app registers no workflows, so a worker would have nothing to run; "
                "pass workflows=[...] to the app that runs workers (an app without workflows "
                "can still start runs by name)"
            )
        if queues is None:
            queues = self._default_queues or self._all_queues()
        chosen = dict(queues)
        worker = Worker(engine, chosen, capture=self.capture_hook, **options)
        self.schedules.attach(worker)
        if self.retention is not None:
            worker.maintenance_hooks.append(RetentionPass(engine, self.retention))
        return worker

    def _all_queues(self) -> dict[str, int]:
        """Exactly the queues the registered workflows and their steps use."""
        return dict.fromkeys(sorted(self.engine.queues()), 10)

    def start_worker(self, /, queues: Mapping[str, int] | None = None, **options: Any) -> Worker:
        """Start a worker in background threads of this process (one per app)."""
        if self._worker is not None:
            raise InvalidStateError("this app already runs a worker; call stop_worker() first")
        self._worker = self.worker(queues, **options).start()
        if self.log_capture is not None:
            self.log_capture.pin()  # steps then only switch a context variable
        return self._worker

    def stop_worker(self, grace_seconds: float = 30.0) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(grace_seconds)
            if self.log_capture is not None:
                self.log_capture.unpin()

    def run_worker(
        self, queues: Mapping[str, int] | None = None, grace_seconds: float = 30.0
    ) -> None:
        """Run a worker in the foreground until SIGTERM or SIGINT (graceful shutdown)."""
        stop = threading.Event()

        def _on_signal(signum: int, frame: Any) -> None:
            log.info("signal %s: shutting down gracefully", signum)
            stop.set()

        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            worker = self._start_when_reachable(queues, stop)
            if worker is None:
                return
            while not stop.wait(1.0) and worker.fatal is None:
                pass
            if worker.fatal is not None:  # e.g. the database file was deleted
                raise worker.fatal
        finally:
            self.stop_worker(grace_seconds)
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _start_when_reachable(
        self, queues: Mapping[str, int] | None, stop: threading.Event
    ) -> Worker | None:
        """A worker process outlives a database that is away when it starts (a restart,
        a dropped connection): it retries with backoff; a wrong schema or URL still
        stops it at once."""
        delay = 0.0  # a dropped connection: at once, on a fresh one
        while True:
            try:
                return self.start_worker(queues)
            except StorageError as exc:
                if isinstance(exc, SchemaError | DatabaseGoneError):
                    raise
                log.warning("cannot start the worker yet (%s); retrying in %.1fs", exc, delay)
            if stop.wait(delay):
                return None
            delay = min(5.0, delay * 2 or 0.25)

    def close(self) -> None:
        """Stop the worker (if any), close the bus this app owns and the database."""
        self.stop_worker()
        if self._owns_bus and self.pubsub.server is not None:
            self.pubsub.server.close()
        self.engine.notifier.close()
        self.storage.close()

    def __enter__(self) -> Durable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Durable:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    # ---- async forms (durable.twins: each runs its sync verb off the event loop) --------

    start_async = async_twin(start)
    start_many_async = async_twin(start_many)
    get_execution_async = async_twin(get_execution)
    list_executions_async = async_twin(list_executions)
    list_steps_async = async_twin(list_steps)
    list_children_async = async_twin(list_children)
    cancel_async = async_twin(cancel)
    retry_async = async_twin(retry)
    send_event_async = async_twin(send_event)
    provide_input_async = async_twin(provide_input)
    list_pending_inputs_async = async_twin(list_pending_inputs)
    list_pending_events_async = async_twin(list_pending_events)
    cancel_wait_async = async_twin(cancel_wait)
    migrate_async = async_twin(migrate)
    pending_migrations_async = async_twin(pending_migrations)
    ready_async = async_twin(ready)
    subscribe_async = async_twin(subscribe)
    start_worker_async = async_twin(start_worker)
    stop_worker_async = async_twin(stop_worker)
    close_async = async_twin(close)

    async def wait_for_completion_async(
        self, execution_id: str, timeout: float | None = None
    ) -> Execution:
        """Async form of :meth:`wait_for_completion`: waits on the run's events without
        holding a thread (each read of the run goes off the event loop)."""
        if timeout is not None:
            checks.seconds(timeout, "timeout")
        loop = asyncio.get_running_loop()
        engine = await asyncio.to_thread(self.ready)
        deadline = None if timeout is None else loop.time() + timeout
        pubsub = engine.pubsub
        topic = pubsub.workflow_topic(execution_id)
        sub = pubsub.subscribe(topic, buffer=16) if pubsub.server is not None else None
        try:
            while True:
                execution = await asyncio.to_thread(self.query.get_execution, execution_id)
                if execution.is_finished:
                    return execution
                left = 0.25 if deadline is None else min(0.25, deadline - loop.time())
                if left <= 0:
                    raise TimeoutError(
                        f"execution {execution_id} is still {execution.status.value}"
                    )
                if sub is None:
                    await asyncio.sleep(left)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub._aget(), left)
        finally:
            if sub is not None:
                pubsub.unsubscribe(sub)

    async def result_async(self, execution_id: str, timeout: float | None = None) -> Any:
        """Async form of :meth:`result` (waits without holding a thread)."""
        execution = await self.wait_for_completion_async(execution_id, timeout)
        if execution.status.value != "completed":
            raise StepError(execution.error or {"type": execution.status.value, "message": ""})
        return execution.result

    async def run_worker_async(
        self, queues: Mapping[str, int] | None = None, grace_seconds: float = 30.0
    ) -> None:
        """Run a worker until this task is cancelled, then stop it gracefully (in-flight
        steps get ``grace_seconds``). For an asyncio host's lifespan."""
        starting = asyncio.ensure_future(self.start_worker_async(queues))
        try:
            await asyncio.shield(starting)
            await asyncio.Event().wait()
        finally:
            # cancelled while starting: let the start finish, so that it is stopped
            with contextlib.suppress(Exception):
                await starting
            await asyncio.shield(self.stop_worker_async(grace_seconds))
