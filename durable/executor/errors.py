"""Recording exceptions as JSON-safe error values (this never fails)."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workflow import Workflow

_MAX_TRACEBACK = 20_000


def error_value(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """``{type, message, traceback}`` of an exception (+ extra fields).

    Whatever the exception does (a ``__str__`` that raises, lone surrogates, NULs),
    the value holds only text the database accepts.
    """
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # a broken __str__ or a traceback too deep to format
        tb = f"{type(exc).__name__} (its traceback could not be formatted)"
    if len(tb) > _MAX_TRACEBACK:
        tb = tb[:_MAX_TRACEBACK] + "\n... (truncated)"
    out: dict[str, Any] = {
        "type": clean_text(type(exc).__name__),
        "message": _message(exc),
        "traceback": clean_text(tb),
    }
    out.update(extra)
    return out


def error_plain(type_name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_name, "message": message, **extra}


def clean_text(text: str) -> str:
    """``text`` as any database stores it: no NUL, no lone surrogate."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")


def _message(exc: BaseException) -> str:
    try:
        return clean_text(str(exc))
    except Exception:
        return f"<{type(exc).__name__} whose message could not be read>"


def none_input_hint(wf: Workflow, step_name: str) -> str:
    """Said when a step fails on a ``None`` input: which step returned it."""
    before = [n for n, i in wf.program.instrs.items() if i.next == step_name]
    who = f"step {before[0]!r}" if len(before) == 1 else "the step before it"
    return f" (step {step_name!r} received None: {who} returned None; return the context from it)"
