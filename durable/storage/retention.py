"""The SQL implementation of :class:`~durable.storage.protocols.RetentionStorage`:
delete finished runs with everything that belongs to them. A run is deleted
together with its child runs (its whole tree), its step executions (and their
captured logs), its waits and pending inputs, and its inbox; a tree in which
any run is still active is left alone, so retention never orphans a running
child. Each call is one short transaction.
"""

from __future__ import annotations

from ..models import TERMINAL_STATUSES
from .base import Row
from .tx import TxSource

_TERMINAL = TERMINAL_STATUSES


class RetentionSqlMixin(TxSource):
    """Retention deletes over the named queries of ``retention.sql``."""

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
