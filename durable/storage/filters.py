"""Parameters of the shared SQL filter fragments (``_execution_filter``)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import DurableError
from .base import ExecutionFilter


def id_prefix(prefix: str) -> str:
    """``prefix`` as matched: literally (``%``, ``_`` and ``\\`` are plain characters),
    and never empty (an empty prefix would match every run)."""
    if not isinstance(prefix, str) or not prefix:
        raise DurableError("an id prefix must not be empty; give at least one character")
    return prefix


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
        "id_prefix": None if flt.id_prefix is None else id_prefix(flt.id_prefix),
    }
