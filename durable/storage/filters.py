"""Parameters of the shared SQL filter fragments (``_execution_filter``)."""

from __future__ import annotations

import json
from typing import Any

from .base import ExecutionFilter


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ids that start with ``prefix`` (wildcards removed)."""
    return prefix.replace("\\", "").replace("%", "").replace("_", "") + "%"


def filter_params(flt: ExecutionFilter) -> dict[str, Any]:
    """The parameters of the ``_execution_filter`` SQL fragment."""
    return {
        "workflow": flt.workflow,
        "statuses": json.dumps(list(flt.statuses)) if flt.statuses else None,
        "queue": flt.queue,
        "parent_id": flt.parent_id,
        "schedule": flt.schedule,
        "since": flt.since_ms,
        "until": flt.until_ms,
        "pattern": like_prefix(flt.id_prefix) if flt.id_prefix else None,
    }
