"""The scheduler: fires due schedules. Every worker runs one; storage makes each
tick fire once however many run (see ``storage/schedules.py``).

It never scans every schedule: an idle pass reads the head of the
``next_run_at`` index (one query), then sleeps until the earliest due time or
``interval_seconds``, whichever comes first.

Missed ticks (no scheduler was running) follow the schedule's ``catch_up``:
``"latest"`` starts one run for the most recent missed tick; ``"all"`` starts
one run per missed tick, at most :data:`CATCH_UP_ALL_LIMIT` (the most recent
ones; older ones are dropped with a warning); ``"none"`` drops ticks seen more
than :data:`MISSED_AFTER_SECONDS` late.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import codec
from ..errors import DurableError
from ..models import ms_to_iso
from ..pubsub.payloads import schedule_triggered_payload
from ..storage import Row, ScheduleStorage
from ..storage.protocols import Fired, TickPlan
from .schedule import Timing

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("durable.scheduler")

CATCH_UP_ALL_LIMIT = 100
MISSED_AFTER_SECONDS = 60.0
BATCH = 100
PRUNE_EVERY_MS = 3_600_000
KEEP_FIRES_MS = 86_400_000


class Scheduler:
    """Fires the due schedules of the workflows registered with ``engine``.

    ``run_once()`` is one pass (tests call it, or ``TestApp.run_until_idle``
    through the worker's maintenance hook); ``loop(stop)`` runs passes in a
    worker thread until ``stop`` is set.
    """

    def __init__(
        self, engine: Engine, storage: ScheduleStorage, interval_seconds: float = 1.0
    ) -> None:
        self.engine = engine
        self.storage = storage
        self.interval_seconds = interval_seconds
        self._looping = False
        self._pruned_at = 0

    def run_once(self) -> int:
        """Fire every schedule due now; return how many runs were started."""
        now = self.engine.clock.now_ms()
        workflows = sorted(self.engine.registry)
        if not workflows:
            return 0
        started = 0
        while True:
            result = self.storage.fire_due_schedules(
                now, workflows, BATCH, lambda row: self._plan(row, now)
            )
            started += self._announce(result.fired, now)
            if result.due < BATCH:
                break
        if now - self._pruned_at >= PRUNE_EVERY_MS:
            self._pruned_at = now
            self.storage.prune_schedule_fires(now - KEEP_FIRES_MS)
        return started

    def maintenance_hook(self) -> None:
        """A pass from the worker's maintenance loop, unless ``loop`` already runs."""
        if not self._looping:
            self.run_once()

    def loop(self, stop: threading.Event) -> None:
        """Run passes until ``stop`` is set (a worker thread)."""
        self._looping = True
        backoff = 0.0
        try:
            while not stop.is_set():
                try:
                    delay = self._step()
                    backoff = 0.0
                except DurableError as exc:
                    backoff = min(30.0, backoff * 2 or 0.5)
                    log.warning("scheduler pass failed (%s); retrying in %.1fs", exc, backoff)
                    delay = backoff
                except Exception:
                    log.exception("scheduler pass failed")
                    delay = self.interval_seconds
                stop.wait(delay)
        finally:
            self._looping = False

    def _step(self) -> float:
        """Fire if something is due; return how long to sleep."""
        workflows = sorted(self.engine.registry)
        if not workflows:
            return self.interval_seconds
        due = self.storage.next_schedule_due(workflows)
        now = self.engine.clock.now_ms()
        if due is not None and due <= now:
            self.run_once()
            due = self.storage.next_schedule_due(workflows)
            now = self.engine.clock.now_ms()
        if due is None:
            return self.interval_seconds
        return min(self.interval_seconds, max(0.01, (due - now) / 1000))

    # ---- one schedule -----------------------------------------------------------

    def _plan(self, row: Row, now: int) -> TickPlan | None:
        wf = self.engine.registry.get(row["workflow_name"])
        if wf is None:  # another process registers this workflow: leave it to them
            return None
        try:
            timing = Timing(row["cron"], row["every_ms"], row["timezone"])
            keep = CATCH_UP_ALL_LIMIT if row["catch_up"] == "all" else 1
            ticks, upcoming = timing.due(row["next_run_at"], now, keep)
            ticks = self._apply_catch_up(row, ticks, now)
            value = codec.decode(row["input"])
            runs = [
                (
                    tick,
                    self.engine.execution_row(
                        wf,
                        value,
                        queue=row["queue"],
                        priority=row["priority"],
                        schedule_name=row["name"],
                        schedule_tick_at=tick,
                    ),
                )
                for tick in ticks
            ]
        except DurableError as exc:
            log.error(
                "schedule %r cannot fire (%s); fix it with app.schedules.update", row["name"], exc
            )
            return None
        return TickPlan(upcoming, runs)

    def _apply_catch_up(self, row: Row, ticks: list[int], now: int) -> list[int]:
        first = row["next_run_at"]
        if not ticks:
            return ticks
        if row["catch_up"] == "none" and now - ticks[-1] > MISSED_AFTER_SECONDS * 1000:
            log.info(
                "schedule %r: missed ticks since %s dropped (catch_up='none')",
                row["name"],
                ms_to_iso(first),
            )
            return []
        if ticks[0] > first:
            kind = "missed ticks" if row["catch_up"] == "all" else "older missed ticks"
            log.log(
                logging.WARNING if row["catch_up"] == "all" else logging.INFO,
                "schedule %r: %s from %s to %s dropped (catch_up=%r runs %s)",
                row["name"],
                kind,
                ms_to_iso(first),
                ms_to_iso(ticks[0]),
                row["catch_up"],
                f"the {CATCH_UP_ALL_LIMIT} most recent" if row["catch_up"] == "all" else "one",
            )
        return ticks

    def _announce(self, fired: Sequence[Fired], now: int) -> int:
        started = 0
        for item in fired:
            name = item.schedule["name"]
            if item.execution is None:
                log.info(
                    "schedule %r skipped its tick at %s: the previous run is unfinished "
                    "(overlap='skip')",
                    name,
                    ms_to_iso(item.tick_at),
                )
                continue
            started += 1
            self.engine.announce_started(item.execution, now)
            self.engine.pubsub.broadcast_schedule(
                "schedule_triggered",
                schedule_triggered_payload(
                    item.schedule, item.execution["id"], item.tick_at, False
                ),
            )
        return started
