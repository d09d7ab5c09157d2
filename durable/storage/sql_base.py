"""The shared SQL layer: domain operations over named queries.

A dialect subclass supplies connections (``_tx`` for an atomic write,
``_read`` for reads), translates driver errors into :class:`StorageError`,
and applies migrations. Everything else lives here once.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ExecutionIdConflictError, LostClaimError
from ..limits import QueueLimits
from ..models import TERMINAL_STATUSES
from .base import Checkpoint, ExecutionFilter, KnownWorkflows, Row, WaitFilter
from .dashboard import DashboardSqlMixin
from .filters import filter_params, id_prefix
from .limiter import claim_limited, hold_reason, queue_usage
from .ops import OpsSqlMixin
from .retention import RetentionSqlMixin
from .schedules import ScheduleSqlMixin
from .tx import TxSource, consume_inbox, notify_parent, resolve_and_wake

TERMINAL = TERMINAL_STATUSES


_EXEC_DEFAULTS: dict[str, Any] = {
    "workflow_version": None,
    "trace_context": None,
    "status": "pending",
    "priority": 0,
    "input": None,
    "context": None,
    "current_step": None,
    "parent_id": None,
    "parent_step": None,
    "schedule_name": None,
    "schedule_tick_at": None,
    "wake_at": None,
    "limit_keys": None,
}

_WAIT_DEFAULTS: dict[str, Any] = {
    "name": "",
    "mode": "one",
    "status": "pending",
    "value": None,
    "timeout_at": None,
    "input_type": None,
    "prompt": None,
    "metadata": None,
    "spec": None,
    "child_id": None,
    "resolved_at": None,
}

_STEP_DEFAULTS: dict[str, Any] = {
    "result": None,
    "error": None,
    "logs": None,
    "completed_at": None,
    "duration_ms": None,
    "next_retry_at": None,
}


class SqlStorage(ScheduleSqlMixin, DashboardSqlMixin, OpsSqlMixin, RetentionSqlMixin, TxSource):
    """Domain operations shared by the SQLite, memory and PostgreSQL backends: the
    core :class:`Storage` here, each extension protocol in its own mixin."""

    dialect = "sql"

    # ---- executions -----------------------------------------------------

    def create_executions(self, rows: list[Row], now: int) -> list[bool]:
        created: list[bool] = []
        with self._tx() as tx:
            for row in rows:
                if tx.run("insert_execution", {**_EXEC_DEFAULTS, **row, "now": now}):
                    created.append(True)
                    continue
                stored = tx.one("get_execution", {"id": row["id"]})
                assert stored is not None
                if stored["workflow_name"] != row["workflow_name"]:
                    raise ExecutionIdConflictError(
                        f"run id {row['id']!r} is taken by a run of workflow "
                        f"{stored['workflow_name']!r}; it cannot start workflow "
                        f"{row['workflow_name']!r} (nothing was started)"
                    )
                created.append(False)
        return created

    def get_execution(self, execution_id: str) -> Row | None:
        with self._read() as tx:
            return tx.one("get_execution", {"id": execution_id})

    def find_ids_by_prefix(self, prefix: str, limit: int) -> list[str]:
        params = {"id_prefix": id_prefix(prefix), "limit": limit}
        with self._read() as tx:
            return [r["id"] for r in tx.all("find_ids_by_prefix", params)]

    def find_ids_by_suffix(self, suffix: str, limit: int) -> list[str]:
        params = {"id_suffix": id_prefix(suffix), "limit": limit}
        with self._read() as tx:
            return [r["id"] for r in tx.all("find_ids_by_suffix", params)]

    def list_executions(
        self, flt: ExecutionFilter, limit: int, cursor: tuple[int, str] | None
    ) -> list[Row]:
        params = {
            **filter_params(flt),
            "cursor_at": cursor[0] if cursor else None,
            "cursor_id": cursor[1] if cursor else None,
            "limit": limit,
        }
        with self._read() as tx:
            return tx.all("list_executions", params)

    def list_children(self, execution_id: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("list_children", {"id": execution_id})

    def list_steps(self, execution_id: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("list_steps", {"id": execution_id})

    def completed_steps(self, execution_id: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("completed_steps", {"id": execution_id})

    # ---- the worker's path -------------------------------------------------

    def known_params(self, known: KnownWorkflows) -> dict[str, Any]:
        """The parameters of the ``_known_workflow`` claim fragment (a dialect may
        pass arrays instead of JSON)."""
        return {"known_names": known.names_json, "known_versions": known.versions_json}

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
        params = {
            "claim_queue": queue,
            "claim_limit": limit,
            "worker_id": worker_id,
            "claim_token": token,
            "now": now,
            **self.known_params(known),
        }
        if limits is not None:
            with self._tx() as tx:
                return claim_limited(tx, params, limits)
        with self._auto() as tx:
            return tx.all("claim", params)

    def queue_usage(self, queue: str, limits: QueueLimits, now: int) -> Row:
        with self._read() as tx:
            return queue_usage(tx, queue, limits, now)

    def hold_reason(self, row: Row, limits: QueueLimits, now: int) -> str | None:
        with self._read() as tx:
            return hold_reason(tx, row, limits, now)

    def prune_key_buckets(self, queue: str, before: int) -> int:
        with self._auto() as tx:
            return tx.run("limit_key_buckets_prune", {"claim_queue": queue, "before": before})

    def claim_suspect(self, queue: str, worker_id: str, token: str, now: int) -> Row | None:
        params = {"claim_queue": queue, "worker_id": worker_id, "claim_token": token, "now": now}
        with self._auto() as tx:
            rows = tx.all("claim_suspect", params)
        return rows[0] if rows else None

    def suspect_waiting(self, queue: str, now: int) -> bool:
        with self._read() as tx:
            return tx.one("suspect_waiting", {"claim_queue": queue, "now": now}) is not None

    def release_claim(
        self, execution_id: str, token: str, now: int, wake_at: int, crash_error: str | None
    ) -> bool:
        params = {
            "id": execution_id,
            "token": token,
            "now": now,
            "wake_at": wake_at,
            "crash": 0 if crash_error is None else 1,
            "crash_error": crash_error,
        }
        with self._auto() as tx:
            return tx.run("release_claim", params) == 1

    def refund_death(self, execution_id: str) -> None:
        with self._auto() as tx:
            tx.run("refund_death", {"id": execution_id})

    def release_token(self, token: str, now: int) -> int:
        with self._auto() as tx:
            return tx.run("release_token", {"token": token, "now": now})

    def save(self, checkpoint: Checkpoint) -> bool:
        now = checkpoint.now
        ex = checkpoint.execution
        with self._tx() as tx:
            query = "save_progress" if ex.get("progress_only") else "save_execution"
            if tx.run(query, {**ex, "now": now}) != 1:
                return False
            for step in checkpoint.steps:
                tx.run("insert_step", {**_STEP_DEFAULTS, **step})
            for wait in checkpoint.waits:
                tx.run("insert_wait", {**_WAIT_DEFAULTS, **wait, "now": now})
            for child in checkpoint.children:
                tx.run("insert_execution", {**_EXEC_DEFAULTS, **child, "now": now})
            if checkpoint.reset_waits_of is not None:
                tx.run(
                    "reset_step_waits",
                    {"execution_id": ex["id"], "step_name": checkpoint.reset_waits_of},
                )
            if checkpoint.cleanup_waits:
                tx.run("cancel_pending_waits", {"execution_id": ex["id"], "now": now})
            if checkpoint.notify_parent is not None:
                notify_parent(tx, *checkpoint.notify_parent, now)
            for m in checkpoint.messages:  # events that must not outlive a crash
                params = {"channel": m.channel, "body": m.text, "origin": m.origin, "now": now}
                tx.one("commit_message", params)
            if checkpoint.claim_next is not None:
                queue, worker_id, token, known = checkpoint.claim_next
                claim = {
                    "claim_queue": queue,
                    "claim_limit": 1,
                    "worker_id": worker_id,
                    **self.known_params(known),
                }
                checkpoint.claimed = tx.all("claim", {**claim, "claim_token": token, "now": now})
        return True

    def register_waits(
        self, execution_id: str, token: str, rows: list[Row], now: int, children: list[Row]
    ) -> list[Row]:
        with self._tx() as tx:
            tx.one("lock_execution", {"id": execution_id})
            owner = tx.one("get_execution", {"id": execution_id})
            if owner is None or owner["lock_token"] != token:
                raise LostClaimError(
                    f"execution {execution_id} is no longer claimed by this worker"
                )
            for child in children:
                tx.run("insert_execution", {**_EXEC_DEFAULTS, **child, "now": now})
            for row in rows:
                tx.run("insert_wait", {**_WAIT_DEFAULTS, **row, "now": now})
            first = rows[0]
            key = {"execution_id": execution_id, "step_name": first["step_name"]}
            group = [w for w in tx.all("waits_for_step", key) if w["seq"] == first["seq"]]
            for wait in group:
                if wait["status"] != "pending" or wait["kind"] not in ("event", "input"):
                    continue
                if consume_inbox(tx, wait, now) and wait["mode"] == "any":
                    tx.run(
                        "cancel_wait_siblings",
                        {**key, "seq": wait["seq"], "id": wait["id"], "now": now},
                    )
                    break
            return [w for w in tx.all("waits_for_step", key) if w["seq"] == first["seq"]]

    def waits_for_step(self, execution_id: str, step_name: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("waits_for_step", {"execution_id": execution_id, "step_name": step_name})

    def expire_waits(self, wait_ids: list[str], now: int) -> list[str]:
        expired = []
        with self._tx() as tx:
            for wait_id in wait_ids:
                if tx.run(
                    "resolve_wait",
                    {"id": wait_id, "status": "timed_out", "value": None, "now": now},
                ):
                    expired.append(wait_id)
        return expired

    # ---- from outside a run -------------------------------------------------

    def send_event(self, execution_id: str, name: str, payload: str, now: int) -> Row | None:
        with self._tx() as tx:
            tx.one("lock_execution", {"id": execution_id})
            inserted = tx.one(
                "inbox_insert",
                {
                    "execution_id": execution_id,
                    "kind": "event",
                    "name": name,
                    "payload": payload,
                    "now": now,
                },
            )
            assert inserted is not None
            wait = tx.one(
                "first_pending_wait", {"execution_id": execution_id, "kind": "event", "name": name}
            )
            if wait is None:
                return None
            tx.run("inbox_consume", {"id": inserted["id"], "wait_id": wait["id"], "now": now})
            resolve_and_wake(tx, wait, payload, now)
            return wait

    def get_pending_input(self, execution_id: str, name: str) -> Row | None:
        with self._read() as tx:
            return tx.one(
                "first_pending_wait", {"execution_id": execution_id, "kind": "input", "name": name}
            )

    def list_input_waits(self, execution_id: str, name: str) -> list[Row]:
        with self._read() as tx:
            return tx.all("input_waits_named", {"execution_id": execution_id, "name": name})

    def resolve_input(self, wait: Row, value: str, now: int) -> bool:
        with self._tx() as tx:
            tx.one("lock_execution", {"id": wait["execution_id"]})
            return resolve_and_wake(tx, wait, value, now)

    def reopen_wait(self, wait_id: str, now: int) -> None:
        """Put a wait back to pending (a buffered input failed validation)."""
        with self._auto() as tx:
            tx.run("reopen_wait", {"id": wait_id})

    def buffer_input(self, execution_id: str, name: str, value: str, now: int) -> bool:
        params = {
            "execution_id": execution_id,
            "kind": "input",
            "name": name,
            "payload": value,
            "now": now,
        }
        with self._tx() as tx:
            tx.one("lock_execution", {"id": execution_id})
            if tx.one("inbox_oldest", params) is not None:
                return False
            tx.one("inbox_insert", params)
            return True

    def cancel_executions(
        self, execution_id: str, error: str, now: int, *, compensate: bool = False
    ) -> list[Row]:
        with self._tx() as tx:
            root = tx.one("get_execution", {"id": execution_id})
            if root is None or root["status"] in TERMINAL:
                return []
            targets = [root, *tx.all("active_descendants", {"id": execution_id})]
            ids = {t["id"] for t in targets}
            cancelled: list[Row] = []
            for target in targets:
                query = (
                    "cancel_to_compensate"
                    if compensate and target["id"] == execution_id
                    else "cancel_execution"
                )
                if not tx.run(query, {"id": target["id"], "error": error, "now": now}):
                    continue
                tx.run("cancel_waiting_step", {"execution_id": target["id"]})
                tx.run("cancel_pending_waits", {"execution_id": target["id"], "now": now})
                tx.run("inbox_discard", {"execution_id": target["id"]})
                row = tx.one("get_execution", {"id": target["id"]})
                assert row is not None
                cancelled.append(row)
                if target["parent_id"] and target["parent_id"] not in ids:
                    value = json.dumps({"status": "cancelled", "error": json.loads(error)})
                    notify_parent(tx, target["id"], value, now)
            return cancelled

    def cancel_waits(self, execution_id: str, now: int) -> int:
        with self._tx() as tx:
            n = tx.run("cancel_pending_waits", {"execution_id": execution_id, "now": now})
            if n:
                tx.run("wake_execution", {"id": execution_id, "now": now})
            return n

    def retry_execution(self, execution_id: str, attempts: str, now: int) -> bool:
        with self._auto() as tx:
            return (
                tx.run("retry_execution", {"id": execution_id, "attempts": attempts, "now": now})
                == 1
            )

    def recover_stale(self, stale_before: int, now: int) -> list[Row]:
        recovered = []
        with self._tx() as tx:
            for row in tx.all("stale_claims", {"stale_before": stale_before}):
                params = {
                    "id": row["id"],
                    "token": row["lock_token"],
                    "stale_before": stale_before,
                    "dead": row["dead"],
                    "now": now,
                }
                counts = tx.one("recover_claim", params)
                if counts is not None:  # the dead worker's id, as it was before the release
                    del row["lock_token"]
                    recovered.append({**row, **counts})
        return recovered

    def release_worker_claims(self, worker_id: str, now: int) -> int:
        with self._auto() as tx:
            return tx.run("release_worker_claims", {"worker_id": worker_id, "now": now})

    def heartbeat(self, worker: Row, now: int, tokens: list[str]) -> None:
        with self._tx() as tx:
            tx.run("upsert_worker", {"limits": None, "workflows": None, **worker, "now": now})
            if tokens:
                params = {"worker_id": worker["id"], "now": now, "tokens": json.dumps(tokens)}
                tx.run("heartbeat_claims", params)

    def remove_worker(self, worker_id: str) -> None:
        with self._auto() as tx:
            tx.run("delete_worker", {"id": worker_id})

    def delete_dead_workers(self, before: int) -> int:
        with self._auto() as tx:
            return tx.run("delete_dead_workers", {"before": before})

    def list_workers(self) -> list[Row]:
        with self._read() as tx:
            return tx.all("list_workers", {})

    def runnable_groups(self, now: int) -> list[Row]:
        with self._read() as tx:
            return tx.all("runnable_groups", {"now": now})

    def queue_counts(self) -> list[Row]:
        with self._read() as tx:
            return tx.all("queue_counts", {})

    def status_counts(self, since_ms: int | None) -> list[Row]:
        with self._read() as tx:
            return tx.all("status_counts", {"since": since_ms})

    def list_pending_waits(self, kind: str, flt: WaitFilter, limit: int) -> list[Row]:
        params = {
            "kind": kind,
            "execution_id": flt.execution_id,
            "workflow": flt.workflow,
            "name": flt.name,
            "expires_before": flt.expires_before_ms,
            "limit": limit,
        }
        with self._read() as tx:
            return tx.all("list_pending_waits", params)
