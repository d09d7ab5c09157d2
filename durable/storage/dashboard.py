"""The SQL implementation of :class:`~durable.storage.protocols.DashboardStorage`.

Queries live in ``sql/dashboard.sql`` (PostgreSQL overrides in
``sql/postgres/dashboard.sql``). JSON search compares one value at one path of
an execution's input or context: SQLite with ``json_extract`` (typed, so
``"7"`` does not match ``7``), PostgreSQL with jsonb containment, indexed on
the input column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .base import ExecutionFilter, Row
from .filters import filter_params
from .protocols import JSON_COLUMNS, AuditEntry, JsonMatch
from .tx import TxSource


def _filter_params(flt: ExecutionFilter, matches: Sequence[JsonMatch]) -> dict[str, Any]:
    params = filter_params(flt)
    for column in JSON_COLUMNS:
        chosen = [m for m in matches if m.column == column]
        if len(chosen) > 1:
            raise ValueError(f"at most one search on {column} at a time")
        match = chosen[0] if chosen else None
        params[f"{column}_path"] = match.sqlite_path() if match else None
        params[f"{column}_value"] = _sqlite_value(match.value) if match else None
        params[f"{column}_doc"] = match.containment_doc() if match else None
    return params


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


class DashboardSqlMixin(TxSource):
    """Dashboard reads and the audit log, over the named queries of ``dashboard.sql``."""

    def dashboard_search_executions(
        self,
        flt: ExecutionFilter,
        matches: Sequence[JsonMatch],
        limit: int,
        cursor: tuple[int, str] | None,
    ) -> list[Row]:
        """Newest first, keyset-paginated on (created_at, id), with JSON matches."""
        params = {
            **_filter_params(flt, matches),
            "cursor_at": cursor[0] if cursor else None,
            "cursor_id": cursor[1] if cursor else None,
            "limit": limit,
        }
        with self._read() as tx:
            return tx.all("dashboard_search_executions", params)

    def dashboard_count_executions(
        self, flt: ExecutionFilter, matches: Sequence[JsonMatch], cap: int
    ) -> int:
        """How many executions match, counting at most ``cap``."""
        with self._read() as tx:
            row = tx.one("dashboard_count_executions", {**_filter_params(flt, matches), "cap": cap})
        return int(row["n"]) if row else 0

    def dashboard_select_ids(
        self, flt: ExecutionFilter, matches: Sequence[JsonMatch], cap: int
    ) -> list[Row]:
        """(id, status, workflow_name) of up to ``cap`` matching executions, newest first."""
        with self._read() as tx:
            return tx.all("dashboard_select_ids", {**_filter_params(flt, matches), "cap": cap})

    def dashboard_workflow_stats(self) -> list[Row]:
        with self._read() as tx:
            return tx.all("dashboard_workflow_stats", {})

    def dashboard_last_run(self, workflow: str) -> Row | None:
        with self._read() as tx:
            return tx.one("dashboard_last_run", {"workflow": workflow})

    def dashboard_buckets(self, since_ms: int, bucket_ms: int) -> tuple[list[Row], list[Row]]:
        """(created per bucket, finished per bucket and status) since ``since_ms``."""
        params = {"since": since_ms, "bucket": bucket_ms}
        with self._read() as tx:
            created = tx.all("dashboard_created_buckets", params)
            finished = tx.all("dashboard_finished_buckets", params)
        return created, finished

    def dashboard_change_marker(self) -> int | None:
        """A number that moves whenever another process changes the database
        (SQLite's data_version, PostgreSQL's WAL position)."""
        with self._read() as tx:
            row = tx.one("dashboard_change_marker", {})
        return None if row is None or row["updated_at"] is None else int(row["updated_at"])

    def dashboard_audit_insert(self, entry: AuditEntry) -> int:
        """Append one entry to the audit log; return its id."""
        params = {
            "at": entry.at,
            "actor": entry.actor,
            "role": entry.role,
            "action": entry.action,
            "target": entry.target,
            "params": entry.params,
            "outcome": entry.outcome,
            "detail": entry.detail,
            "remote": entry.remote,
        }
        with self._tx() as tx:
            row = tx.one("dashboard_audit_insert", params)
        assert row is not None
        return int(row["id"])

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
        """Newest first, keyset-paginated on id."""
        params = {
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": outcome,
            "before_id": before_id,
            "limit": limit,
        }
        with self._read() as tx:
            return tx.all("dashboard_audit_list", params)
