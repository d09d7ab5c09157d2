"""Retention queries: delete finished runs with everything that belongs to them.

A mixin for :class:`~durable.storage.sql_base.SqlStorage`. A run is deleted
together with its child runs (its whole tree), its step executions (and their
captured logs), its waits and pending inputs, and its inbox; a tree in which
any run is still active is left alone, so retention never orphans a running
child. Each call is one short transaction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ..models import TERMINAL_STATUSES
from .base import Row

if TYPE_CHECKING:
    from .sql_base import Tx

_TERMINAL = TERMINAL_STATUSES


class OpsStorage:
    """SQL reads and safe repairs for ``durable doctor`` and ``durable inspect``."""

    if TYPE_CHECKING:  # supplied by SqlStorage

        def _tx(self) -> AbstractContextManager[Tx]: ...

        def _read(self) -> AbstractContextManager[Tx]: ...

    def execution_waits(self, execution_id: str) -> list[Row]:
        """Every wait of a run (sleeps, events, inputs, children), oldest first."""
        with self._read() as tx:
            return tx.all("ops_execution_waits", {"id": execution_id})

    def stale_claims(self, before_ms: int, limit: int = 100) -> list[Row]:
        """Claimed runs whose worker has not heart-beaten since ``before_ms``."""
        with self._read() as tx:
            return tx.all("ops_stale_claims", {"before": before_ms, "limit": limit})

    def unwakeable_runs(self, limit: int = 100) -> list[Row]:
        """Waiting runs with no wake time and no pending wait: nothing will wake them."""
        with self._read() as tx:
            return tx.all("ops_unwakeable", {"limit": limit})

    def finished_child_waits(self, limit: int = 100) -> list[Row]:
        """Pending child waits whose child already finished (a lost notification)."""
        with self._read() as tx:
            return tx.all("ops_finished_child_waits", {"limit": limit})

    def wake_unwakeable(self, execution_id: str, now: int) -> bool:
        """Make a stuck waiting run runnable now (its step re-runs and re-checks)."""
        with self._tx() as tx:
            return tx.run("ops_wake_unwakeable", {"id": execution_id, "now": now}) == 1

    def deliver_child_result(self, child_id: str, value: str, now: int) -> None:
        """Resolve the parent's pending wait on a finished child and wake the parent
        (what the child's final checkpoint does; conditional, so at most once)."""
        from .sql_base import _notify_parent

        with self._tx() as tx:
            _notify_parent(tx, child_id, value, now)

    def schedule_runs(self, since_ms: int) -> list[Row]:
        """Finished scheduled runs since ``since_ms``, newest first per schedule."""
        with self._read() as tx:
            return tx.all("ops_schedule_runs", {"since": since_ms})

    def database_now_ms(self) -> int:
        """The database server's own clock (for skew checks only)."""
        with self._read() as tx:
            row = tx.one("ops_db_now", {})
        assert row is not None
        return int(row["now_ms"])


class RetentionStorage(OpsStorage):
    """SQL methods for retention and ``durable cleanup``."""

    if TYPE_CHECKING:  # supplied by SqlStorage

        def _tx(self) -> AbstractContextManager[Tx]: ...

        def _read(self) -> AbstractContextManager[Tx]: ...

    def count_retention_roots(self, status: str, before_ms: int) -> int:
        """How many top-level runs of ``status`` finished before ``before_ms``."""
        with self._read() as tx:
            row = tx.one("retention_count", {"status": status, "before": before_ms})
        return int(row["n"]) if row else 0

    def retention_roots(
        self, status: str, before_ms: int, after: tuple[int, str] | None, limit: int
    ) -> list[Row]:
        """Top-level runs (no parent left) of ``status`` finished before ``before_ms``,
        oldest first, after the keyset ``after`` = (completed_at, id)."""
        params = {
            "status": status,
            "before": before_ms,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        }
        with self._read() as tx:
            return tx.all("retention_candidates", params)

    def measure_execution_tree(self, root_id: str) -> tuple[int, int, bool]:
        """(runs, step executions, every run finished) of a run and its descendants."""
        with self._read() as tx:
            tree = tx.all("retention_tree", {"id": root_id})
            steps = 0
            for member in tree:
                row = tx.one("retention_count_steps", {"id": member["id"]})
                steps += int(row["n"]) if row else 0
        finished = all(m["status"] in _TERMINAL for m in tree)
        return len(tree), steps, finished

    def delete_execution_trees(self, root_ids: list[str]) -> tuple[int, int, int]:
        """Delete each finished tree, in one transaction; trees with an active run
        are skipped. Returns (runs deleted, step executions deleted, trees skipped)."""
        runs = steps = skipped = 0
        with self._tx() as tx:
            for root_id in root_ids:
                tree = tx.all("retention_tree", {"id": root_id})
                if not tree:
                    continue
                if any(m["status"] not in _TERMINAL for m in tree):
                    skipped += 1
                    continue
                for member in tree:
                    key = {"id": member["id"]}
                    steps += tx.run("retention_delete_steps", key)
                    tx.run("retention_delete_waits", key)
                    tx.run("retention_delete_inbox", key)
                    runs += tx.run("retention_delete_execution", key)
        return runs, steps, skipped
