"""The SQL implementation of :class:`~durable.storage.protocols.OpsStorage`:
reads and safe repairs for ``durable doctor`` and ``durable inspect``
(queries in ``sql/ops.sql``)."""

from __future__ import annotations

from .base import Row
from .tx import TxSource, notify_parent


class OpsSqlMixin(TxSource):
    """Operations reads and repairs, mixed into SqlStorage."""

    def execution_waits(self, execution_id: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("ops_execution_waits", {"id": execution_id})

    def stale_claims(self, before_ms: int, limit: int = 100) -> list[Row]:
        with self._read() as tx:
            return tx.all("ops_stale_claims", {"before": before_ms, "limit": limit})

    def unwakeable_runs(self, limit: int = 100) -> list[Row]:
        with self._read() as tx:
            return tx.all("ops_unwakeable", {"limit": limit})

    def finished_child_waits(self, limit: int = 100) -> list[Row]:
        with self._read() as tx:
            return tx.all("ops_finished_child_waits", {"limit": limit})

    def wake_unwakeable(self, execution_id: str, now: int) -> bool:
        with self._tx() as tx:
            return tx.run("ops_wake_unwakeable", {"id": execution_id, "now": now}) == 1

    def deliver_child_result(self, child_id: str, value: str, now: int) -> None:
        with self._tx() as tx:
            notify_parent(tx, child_id, value, now)

    def schedule_runs(self, since_ms: int) -> list[Row]:
        with self._read() as tx:
            return tx.all("ops_schedule_runs", {"since": since_ms})

    def database_now_ms(self) -> int:
        with self._read() as tx:
            row = tx.one("ops_db_now", {})
        assert row is not None
        return int(row["now_ms"])
