"""The SQL implementation of :class:`~durable.storage.protocols.ScheduleStorage`.

Exactly once per tick is a property of storage, not of leader election: a
scheduler advances a schedule's ``next_run_at`` with a compare-and-set, records
the tick in ``schedule_fires`` (primary key: schedule name and tick time) and
inserts the run, all in one transaction. A second scheduler that saw the same
due row changes nothing; a scheduler killed mid-way commits nothing, and the
tick stays due for the next one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .base import Row
from .protocols import Fired, FirePass, Planner
from .tx import Tx, TxSource


class ScheduleSqlMixin(TxSource):
    """Schedules over the named queries of ``schedules.sql`` (mixed into SqlStorage)."""

    def insert_schedule(self, row: Row, now: int) -> bool:
        with self._tx() as tx:
            return tx.run("insert_schedule", {**row, "now": now}) == 1

    def get_schedule(self, name: str) -> Row | None:
        with self._read() as tx:
            return tx.one("get_schedule", {"name": name})

    def list_schedules(self, workflow: str | None, enabled: bool | None) -> list[Row]:
        flag = None if enabled is None else int(enabled)
        with self._read() as tx:
            return tx.all("list_schedules", {"workflow": workflow, "enabled": flag})

    def update_schedule(self, row: Row, reschedule: bool, now: int) -> bool:
        with self._tx() as tx:
            params = {**row, "reschedule": int(reschedule), "now": now}
            return tx.run("update_schedule", params) == 1

    def set_schedule_enabled(
        self, name: str, enabled: bool, next_run_at: int | None, now: int
    ) -> bool:
        params = {"name": name, "enabled": int(enabled), "next_run_at": next_run_at, "now": now}
        with self._tx() as tx:
            return tx.run("set_schedule_enabled", params) == 1

    def delete_schedule(self, name: str) -> bool:
        with self._tx() as tx:
            tx.run("delete_schedule_fires", {"name": name})
            return tx.run("delete_schedule", {"name": name}) == 1

    def fire_due_schedules(
        self, now: int, workflows: Sequence[str], limit: int, plan: Planner
    ) -> FirePass:
        names = json.dumps(sorted(workflows))
        fired: list[Fired] = []
        with self._tx() as tx:
            rows = tx.all("due_schedules", {"now": now, "workflows": names, "limit": limit})
            for row in rows:
                todo = plan(row)
                if todo is None:
                    continue
                moved = tx.run(
                    "advance_schedule",
                    {
                        "name": row["name"],
                        "expected": row["next_run_at"],
                        "next_run_at": todo.next_run_at,
                        "now": now,
                    },
                )
                if moved != 1:  # another scheduler handled this schedule first
                    continue
                for tick_at, execution in todo.runs:
                    done = _fire_tick(tx, row, tick_at, execution, now)
                    if done is not None:
                        fired.append(done)
        return FirePass(fired, len(rows))

    def next_schedule_due(self, workflows: Sequence[str]) -> int | None:
        with self._read() as tx:
            row = tx.one("next_schedule_due", {"workflows": json.dumps(sorted(workflows))})
        return None if row is None else int(row["next_run_at"])

    def trigger_schedule(self, name: str, execution: Row, now: int) -> bool:
        with self._tx() as tx:
            if tx.one("get_schedule", {"name": name}) is None:
                return False
            tx.run(
                "insert_execution",
                {"limit_keys": None, "trace_context": None, **execution, "now": now},
            )
            tx.run(
                "record_schedule_run",
                {
                    "name": name,
                    "tick_at": execution["schedule_tick_at"],
                    "execution_id": execution["id"],
                    "now": now,
                },
            )
            return True

    def prune_schedule_fires(self, before: int) -> int:
        with self._tx() as tx:
            return tx.run("prune_schedule_fires", {"before": before})


def _fire_tick(tx: Tx, schedule: Row, tick_at: int, execution: Row, now: int) -> Fired | None:
    name = schedule["name"]
    skip = (
        schedule["overlap"] == "skip" and tx.one("schedule_active_run", {"name": name}) is not None
    )
    key = {
        "name": name,
        "tick_at": tick_at,
        "outcome": "skipped" if skip else "started",
        "execution_id": None if skip else execution["id"],
        "now": now,
    }
    if tx.run("insert_schedule_fire", key) != 1:  # this tick was already fired
        return None
    if skip:
        tx.run("record_schedule_skip", {"name": name, "tick_at": tick_at})
        return Fired(schedule, tick_at, None)
    tx.run("insert_execution", {"limit_keys": None, "trace_context": None, **execution, "now": now})
    tx.run(
        "record_schedule_run",
        {"name": name, "tick_at": tick_at, "execution_id": execution["id"], "now": now},
    )
    return Fired(schedule, tick_at, execution)
