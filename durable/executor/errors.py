"""Recording exceptions as JSON-safe error values."""

from __future__ import annotations

import traceback
from typing import Any

_MAX_TRACEBACK = 20_000


def error_value(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """``{type, message, traceback}`` of an exception (+ extra fields)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(tb) > _MAX_TRACEBACK:
        tb = tb[:_MAX_TRACEBACK] + "\n... (truncated)"
    out: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc).replace("\x00", ""),
        "traceback": tb.replace("\x00", ""),
    }
    out.update(extra)
    return out


def error_plain(type_name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_name, "message": message, **extra}
