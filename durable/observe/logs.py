"""Log records for what an operator must see: failed attempts, failed runs, recoveries.

Every record carries its facts as structured fields (``extra``): ``execution_id``,
``workflow_name``, ``step_name``, ``attempt``, ``status``, ``error_type``,
``error_message``, ``next_retry_at`` (ISO 8601 UTC), ``worker_id``. With
:class:`JsonFormatter` (``durable worker --log-format json``) each record is one JSON
object per line with those fields at the top level.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..models import ms_to_iso
from ..storage import Row
from . import BaseObserver

run_log = logging.getLogger("durable.executor")
worker_log = logging.getLogger("durable.worker")

#: terminal statuses that mean something went wrong (logged at ERROR)
FAILED_ENDINGS = frozenset({"failed", "compensated", "compensation_failed"})


def _error(text_or_value: Any) -> dict[str, Any]:
    if isinstance(text_or_value, str):
        try:
            value = json.loads(text_or_value)
        except ValueError:
            return {"type": None, "message": text_or_value}
    else:
        value = text_or_value
    return value if isinstance(value, dict) else {}


class LogObserver(BaseObserver):
    """WARNING per failed attempt, ERROR per run ending failed, compensated or
    compensation_failed, INFO per recovered run."""

    def attempt_ended(self, workflow_name: str, attempt: Row) -> None:
        if attempt["status"] != "failed" or not run_log.isEnabledFor(logging.WARNING):
            return
        error = _error(attempt.get("error"))
        next_at = attempt.get("next_retry_at")
        retry = f"; retry at {ms_to_iso(next_at)}" if next_at is not None else "; no retry left"
        kind = "compensation" if attempt.get("step_type") == "compensation" else "step"
        run_log.warning(
            "%s %r of %s (execution %s) failed on attempt %d: %s: %s%s",
            kind,
            attempt["step_name"],
            workflow_name,
            attempt["execution_id"],
            attempt["attempt"],
            error.get("type"),
            error.get("message"),
            retry,
            extra={
                "execution_id": attempt["execution_id"],
                "workflow_name": workflow_name,
                "step_name": attempt["step_name"],
                "step_type": attempt.get("step_type"),
                "attempt": attempt["attempt"],
                "error_type": error.get("type"),
                "error_message": error.get("message"),
                "next_retry_at": ms_to_iso(next_at),
            },
        )

    def run_ended(self, execution: Row, status: str, error: dict[str, Any] | None) -> None:
        if status not in FAILED_ENDINGS:
            return
        error = error or {}
        run_log.error(
            "execution %s of %s ended %s: %s: %s",
            execution["id"],
            execution["workflow_name"],
            status,
            error.get("type"),
            error.get("message"),
            extra={
                "execution_id": execution["id"],
                "workflow_name": execution["workflow_name"],
                "status": status,
                "step_name": error.get("step") or execution.get("current_step"),
                "error_type": error.get("type"),
                "error_message": error.get("message"),
            },
        )

    def runs_recovered(self, rows: Sequence[Row], worker_id: str | None) -> None:
        for row in rows:
            worker_log.info(
                "recovered execution %s of %s: worker %s stopped heart-beating",
                row["id"],
                row["workflow_name"],
                row.get("locked_by"),
                extra={
                    "execution_id": row["id"],
                    "workflow_name": row["workflow_name"],
                    "dead_worker_id": row.get("locked_by"),
                    "worker_id": worker_id,
                },
            )


_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's ``extra``
    fields, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_CLI_HANDLER = "durable-cli"


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Set up the root logger for a command-line process (``text`` or ``json`` to stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.set_name(_CLI_HANDLER)
    root = logging.getLogger()
    # replace only what an earlier call set up: handlers of others (the per-step log
    # capture, a host's own) stay
    for old in list(root.handlers):
        if old.get_name() == _CLI_HANDLER:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
