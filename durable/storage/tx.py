"""What the SQL storage mixins share: the transaction handle and the wait helpers.

``TxSource`` declares how a mixin opens a transaction (the dialect class
supplies it); the wait helpers are the steps of delivering a value to a wait,
used both by the core operations and by the operator's repairs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from .base import Row


class Tx(Protocol):
    """A cursor-like handle inside one transaction, running named queries."""

    def run(self, name: str, params: dict[str, Any]) -> int:
        """Execute a write; the number of rows it changed."""
        ...

    def all(self, name: str, params: dict[str, Any]) -> list[Row]: ...

    def one(self, name: str, params: dict[str, Any]) -> Row | None: ...


class TxSource:
    """Base of every SQL mixin: transactions come from the dialect class."""

    def _tx(self) -> AbstractContextManager[Tx]:
        """One atomic transaction (committed on exit, rolled back on error)."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Tx]:
        """For reads only: a dialect may use a cheaper handle."""
        return self._tx()

    def _auto(self) -> AbstractContextManager[Tx]:
        """For a single write statement: a dialect may skip the explicit transaction."""
        return self._tx()


def consume_inbox(tx: Tx, wait: Row, now: int) -> bool:
    """Match the oldest buffered event/input to ``wait``; True if one was consumed."""
    key = {"execution_id": wait["execution_id"], "kind": wait["kind"], "name": wait["name"]}
    entry = tx.one("inbox_oldest", key)
    if entry is None:
        return False
    if not tx.run("inbox_consume", {"id": entry["id"], "wait_id": wait["id"], "now": now}):
        return False
    # a buffered input is validated by the step that reads it (see wait.py)
    tx.run(
        "resolve_wait",
        {"id": wait["id"], "status": "resolved", "value": entry["payload"], "now": now},
    )
    return True


def resolve_and_wake(tx: Tx, wait: Row, value: str, now: int) -> bool:
    """Resolve a pending wait with ``value`` and wake its run when its group is done
    (``any``: siblings are cancelled; ``all``: only the last one wakes). False if the
    wait was no longer pending."""
    if not tx.run(
        "resolve_wait", {"id": wait["id"], "status": "resolved", "value": value, "now": now}
    ):
        return False
    key = {"execution_id": wait["execution_id"], "step_name": wait["step_name"], "seq": wait["seq"]}
    if wait["mode"] == "any":
        tx.run("cancel_wait_siblings", {**key, "id": wait["id"], "now": now})
    elif wait["mode"] == "all":
        remaining = tx.one("count_group_pending", key)
        if remaining is not None and remaining["n"]:
            return True
    tx.run("wake_execution", {"id": wait["execution_id"], "now": now})
    return True


def notify_parent(tx: Tx, child_id: str, value: str, now: int) -> None:
    """Deliver a finished child's outcome to its parent's pending child wait, if any."""
    wait = tx.one("pending_child_wait", {"child_id": child_id})
    if wait is not None:
        resolve_and_wake(tx, wait, value, now)
