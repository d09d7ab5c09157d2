"""``app.schedules``: manage schedules at run time, from any process.

Every verb has an ``_async`` twin. Names are unique per instance. Create,
update and delete publish nothing; enable/disable publish ``schedule_toggled``
(only when the state changes) and every started run ``schedule_triggered``.

Declared schedules (``Workflow(..., schedules=[Schedule(...)])``) are stored
when the app first touches its database: created, or updated by name when the
code changed (a changed cron, interval or time zone reschedules it; otherwise
its next tick, and any missed ticks, are kept). Their enabled state is only set
at creation: enable/disable at run time survive restarts. A stored declared
schedule whose workflow is registered in this app but no longer declares it is
disabled and turned into a run-time schedule (``declared=False``), kept with its
history: delete it, or enable it, by hand.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import codec
from ..checks import count
from ..clock import to_ms
from ..errors import DefinitionError, DurableError
from ..models import ScheduleInfo, ms_to_datetime
from ..pubsub.payloads import schedule_toggled_payload, schedule_triggered_payload
from ..storage import Row, ScheduleStorage
from ..twins import async_twin
from ..workflow import Workflow
from .cron import zone
from .schedule import Schedule, ScheduleExistsError, ScheduleNotFoundError, Timing
from .scheduler import Scheduler

if TYPE_CHECKING:
    from ..engine import Engine
    from ..queue.worker import Worker

log = logging.getLogger("durable.scheduler")

_UPDATABLE = ("cron", "every", "timezone", "input", "queue", "priority", "catch_up", "overlap")
_TIMING = ("cron", "every_ms", "timezone")
_DEFINITION = ("workflow_name", *_TIMING, "input", "queue", "priority", "catch_up", "overlap")


def to_schedule_info(row: Row) -> ScheduleInfo:
    """A stored schedule row as the public record."""
    created = ms_to_datetime(row["created_at"])
    updated = ms_to_datetime(row["updated_at"])
    assert created is not None and updated is not None
    every = row["every_ms"]
    return ScheduleInfo(
        name=row["name"],
        workflow_name=row["workflow_name"],
        cron=row["cron"],
        every_seconds=None if every is None else every / 1000,
        timezone=row["timezone"],
        input=codec.decode(row["input"]),
        queue=row["queue"],
        priority=row["priority"],
        enabled=bool(row["enabled"]),
        catch_up=row["catch_up"],
        overlap=row["overlap"],
        next_run_at=ms_to_datetime(row["next_run_at"]),
        last_run_at=ms_to_datetime(row["last_run_at"]),
        last_tick_at=ms_to_datetime(row["last_tick_at"]),
        last_execution_id=row["last_execution_id"],
        declared=bool(row["declared"]),
        skipped_count=row["skipped_count"],
        created_at=created,
        updated_at=updated,
    )


def _definition(
    spec: Schedule, workflow_name: str, declared: bool, value_codec: codec.Codec
) -> Row:
    return {
        "name": spec.name,
        "workflow_name": workflow_name,
        "cron": spec.cron,
        "every_ms": spec.every_ms,
        "timezone": spec.timezone,
        "input": value_codec.encode(spec.input, f"the input of schedule {spec.name!r}"),
        "queue": spec.queue,
        "priority": spec.priority,
        "catch_up": spec.catch_up,
        "overlap": spec.overlap,
        "declared": int(declared),
    }


def _timing(row: Row) -> Timing:
    return Timing(row["cron"], row["every_ms"], row["timezone"])


class ScheduleManager:
    """The run-time schedule API of one app (``app.schedules``)."""

    def __init__(self, engine: Engine, ready: Callable[[], Engine]) -> None:
        self._engine = engine
        self._ready_app = ready
        self._synced: set[str] = set()
        self._sync_lock = threading.Lock()
        #: seconds between scheduler passes in each worker (ticks fire at most this late)
        self.interval_seconds = 1.0

    # ---- wiring ---------------------------------------------------------------------

    @property
    def storage(self) -> ScheduleStorage:
        return self._engine.storage

    def _ready(self) -> Engine:
        return self._ready_app()  # migrates if needed, then ensure_declared()

    def attach(self, worker: Worker) -> Scheduler:
        """Give a worker a scheduler: a thread of its own once started, and a
        maintenance hook for workers driven by hand (``TestApp.run_until_idle``)."""
        scheduler = Scheduler(self._engine, self.storage, self.interval_seconds)
        worker.maintenance_hooks.append(scheduler.maintenance_hook)
        worker.background_loops.append(("scheduler", scheduler.loop))
        return scheduler

    def scheduler(self) -> Scheduler:
        """A scheduler for this app, not started (call ``run_once`` or ``loop``)."""
        self._ready()
        return Scheduler(self._engine, self.storage, self.interval_seconds)

    # ---- declared schedules -------------------------------------------------------------

    def ensure_declared(self) -> None:
        """Store the schedules declared on registered workflows not synced yet
        (called once the schema is ready; idempotent and cheap afterwards)."""
        registry = self._engine.registry
        if registry.keys() <= self._synced:
            return
        with self._sync_lock:
            pending = [wf for name, wf in registry.items() if name not in self._synced]
            if not pending:
                return
            declared = _declared(registry.values())
            for wf in pending:
                for spec in wf.schedules:
                    self._sync_one(spec, wf.name)
            self._retire_orphans({wf.name for wf in pending}, declared)
            self._synced.update(wf.name for wf in pending)

    def _sync_one(self, spec: Schedule, workflow_name: str) -> None:
        storage = self.storage
        now = self._engine.clock.now_ms()
        wanted = _definition(spec, workflow_name, True, self._engine.codec)
        current = storage.get_schedule(spec.name)
        if current is None:
            upcoming = Timing(spec.cron, spec.every_ms, spec.timezone).next_after(now)
            row = {**wanted, "enabled": int(spec.enabled), "next_run_at": upcoming}
            if spec.enabled is False:
                row["next_run_at"] = None
            if storage.insert_schedule(row, now):
                return
            current = storage.get_schedule(spec.name)  # another process stored it first
            if current is None:
                return
        if all(current[k] == wanted[k] for k in (*_DEFINITION, "declared")):
            return
        reschedule = any(current[k] != wanted[k] for k in _TIMING)
        upcoming = Timing(spec.cron, spec.every_ms, spec.timezone).next_after(now)
        storage.update_schedule({**wanted, "next_run_at": upcoming}, reschedule, now)
        log.info("declared schedule %r updated from the code", spec.name)

    def _retire_orphans(self, workflows: set[str], declared: dict[str, str]) -> None:
        for row in self.storage.list_schedules(None, None):
            if (
                row["declared"]
                and row["workflow_name"] in workflows
                and row["name"] not in declared
            ):
                log.warning(
                    "schedule %r is no longer declared on workflow %r: disabled and kept "
                    "as a run-time schedule (delete it with app.schedules.delete)",
                    row["name"],
                    row["workflow_name"],
                )
                now = self._engine.clock.now_ms()
                self.storage.update_schedule({**row, "declared": 0}, False, now)
                self._set_enabled(row["name"], False)

    # ---- the API --------------------------------------------------------------------

    def create(
        self,
        name: str,
        workflow: Workflow | str,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        input: Any = None,
        queue: str | None = None,
        priority: int = 0,
        enabled: bool = True,
        catch_up: str = "latest",
        overlap: str = "allow",
    ) -> ScheduleInfo:
        """Store a new schedule of ``workflow``: ``cron=`` (five fields or a macro, read
        in ``timezone``) or ``every=`` seconds. Nothing is stored if any argument is
        invalid; ScheduleExistsError if the name is taken."""
        engine = self._ready()
        wf = engine.workflow(workflow)
        spec = Schedule(
            name,
            cron=cron,
            every=every,
            timezone=timezone,
            input=input,
            queue=queue,
            priority=priority,
            enabled=enabled,
            catch_up=catch_up,  # type: ignore[arg-type]
            overlap=overlap,  # type: ignore[arg-type]
        )
        now = engine.clock.now_ms()
        upcoming = Timing(spec.cron, spec.every_ms, spec.timezone).next_after(now)
        row = {
            **_definition(spec, wf.name, False, self._engine.codec),
            "enabled": int(enabled),
            "next_run_at": upcoming if enabled else None,
        }
        if not self.storage.insert_schedule(row, now):
            raise ScheduleExistsError(
                f"a schedule named {name!r} already exists; change it with "
                f"app.schedules.update({name!r}, ...) or choose another name"
            )
        return self.get(name)

    def get(self, name: str) -> ScheduleInfo:
        """The schedule named ``name`` (ScheduleNotFoundError if none)."""
        self._ready()
        return to_schedule_info(self._row(name))

    def list(
        self, *, workflow: Workflow | str | None = None, enabled: bool | None = None
    ) -> builtins.list[ScheduleInfo]:
        """Every schedule, by name; optionally of one workflow, or only (not) enabled."""
        self._ready()
        wf_name = workflow.name if isinstance(workflow, Workflow) else workflow
        if enabled is not None and not isinstance(enabled, bool):
            raise DurableError(f"enabled must be True, False or None, got {enabled!r}")
        return [to_schedule_info(r) for r in self.storage.list_schedules(wf_name, enabled)]

    def update(self, /, name: str, **changes: Any) -> ScheduleInfo:
        """Change ``cron``, ``every``, ``timezone``, ``input``, ``queue``, ``priority``,
        ``catch_up`` or ``overlap``. Giving ``cron`` drops ``every`` and the other way
        round. A new cron, interval or time zone moves the next tick to the first one
        after now. A declared schedule takes its declaration back at the next app start."""
        engine = self._ready()
        unknown = sorted(set(changes) - set(_UPDATABLE))
        if unknown:
            raise DurableError(
                f"update() cannot change {', '.join(unknown)}; it takes {', '.join(_UPDATABLE)} "
                "(use enable()/disable() to switch a schedule on or off)"
            )
        row = self._row(name)
        fields: dict[str, Any] = {
            "cron": row["cron"],
            "every": None if row["every_ms"] is None else row["every_ms"] / 1000,
            "timezone": row["timezone"],
            "input": codec.decode(row["input"]),
            "queue": row["queue"],
            "priority": row["priority"],
            "catch_up": row["catch_up"],
            "overlap": row["overlap"],
        }
        if changes.get("cron") is not None and "every" not in changes:
            fields["every"] = None
        if changes.get("every") is not None and "cron" not in changes:
            fields["cron"] = None
        fields.update(changes)
        spec = Schedule(name, **fields)
        wanted = _definition(spec, row["workflow_name"], bool(row["declared"]), self._engine.codec)
        now = engine.clock.now_ms()
        reschedule = any(row[k] != wanted[k] for k in _TIMING)
        upcoming = Timing(spec.cron, spec.every_ms, spec.timezone).next_after(now)
        if not self.storage.update_schedule({**wanted, "next_run_at": upcoming}, reschedule, now):
            raise self._not_found(name)
        return self.get(name)

    def delete(self, name: str) -> None:
        """Delete the schedule (its past runs stay). A declared schedule comes back at
        the next app start unless it is removed from the code."""
        self._ready()
        if not self.storage.delete_schedule(name):
            raise self._not_found(name)

    def enable(self, name: str) -> ScheduleInfo:
        """Switch the schedule on; its next tick is the first after now (ticks while it
        was off are not caught up). Publishes ``schedule_toggled`` if it was off."""
        self._ready()
        self._set_enabled(name, True)
        return self.get(name)

    def disable(self, name: str) -> ScheduleInfo:
        """Switch the schedule off (runs already started go on). Publishes
        ``schedule_toggled`` if it was on."""
        self._ready()
        self._set_enabled(name, False)
        return self.get(name)

    def trigger(self, name: str) -> str:
        """Start a run of the schedule now, by hand (whatever its overlap policy or
        enabled state); return the execution id. Its tick time is now."""
        engine = self._ready()
        row = self._row(name)
        wf = engine.workflow(row["workflow_name"])
        now = engine.clock.now_ms()
        execution = engine.execution_row(
            wf,
            codec.decode(row["input"]),
            queue=row["queue"],
            priority=row["priority"],
            schedule_name=name,
            schedule_tick_at=now,
        )
        if not self.storage.trigger_schedule(name, execution, now):
            raise self._not_found(name)
        engine.announce_started(execution, now)
        engine.pubsub.broadcast_schedule(
            "schedule_triggered", schedule_triggered_payload(row, execution["id"], now, True)
        )
        return str(execution["id"])

    def next_fire_times(
        self, name: str, n: int = 5, *, after: datetime | None = None
    ) -> builtins.list[datetime]:
        """The next ``n`` fire times (aware, in the schedule's time zone), after
        ``after`` (an aware datetime) or from the schedule's next tick."""
        engine = self._ready()
        count(n, "n", maximum=1000)
        row = self._row(name)
        if after is not None:
            start = to_ms(after, "after")
        elif row["next_run_at"] is not None:
            start = row["next_run_at"] - 1
        else:
            start = engine.clock.now_ms()
        tz = zone(row["timezone"])
        return [
            datetime.fromtimestamp(ms / 1000, tz=tz) for ms in _timing(row).fire_times(start, n)
        ]

    # ---- helpers ------------------------------------------------------------------

    def _row(self, name: str) -> Row:
        if not isinstance(name, str):
            raise DurableError(f"a schedule name must be a string, got {name!r}")
        row = self.storage.get_schedule(name)
        if row is None:
            raise self._not_found(name)
        return row

    def _not_found(self, name: str) -> ScheduleNotFoundError:
        known = [r["name"] for r in self.storage.list_schedules(None, None)[:20]]
        hint = f" (known: {', '.join(known)})" if known else " (there are no schedules)"
        return ScheduleNotFoundError(f"no schedule named {name!r}{hint}")

    def _set_enabled(self, name: str, enabled: bool) -> None:
        row = self._row(name)
        now = self._engine.clock.now_ms()
        upcoming = _timing(row).next_after(now) if enabled else None
        if self.storage.set_schedule_enabled(name, enabled, upcoming, now):
            self._engine.pubsub.broadcast_schedule(
                "schedule_toggled",
                schedule_toggled_payload(name, row["workflow_name"], enabled, now),
            )

    # ---- async forms -------------------------------------------------------------

    create_async = async_twin(create)
    get_async = async_twin(get)
    list_async = async_twin(list)
    update_async = async_twin(update)
    delete_async = async_twin(delete)
    enable_async = async_twin(enable)
    disable_async = async_twin(disable)
    trigger_async = async_twin(trigger)
    next_fire_times_async = async_twin(next_fire_times)


def _declared(workflows: Iterable[Workflow]) -> dict[str, str]:
    """Schedule name -> workflow name over every registered workflow; a name
    declared twice is a DefinitionError."""
    out: dict[str, str] = {}
    for wf in workflows:
        for spec in wf.schedules:
            if not isinstance(spec, Schedule):
                raise DefinitionError(
                    f"workflow {wf.name!r}: schedules= takes Schedule objects, got {spec!r}"
                )
            other = out.get(spec.name)
            if other is not None:
                raise DefinitionError(
                    f"schedule {spec.name!r} is declared twice (workflows {other!r} and "
                    f"{wf.name!r}); schedule names are unique per app"
                )
            out[spec.name] = wf.name
    return out
