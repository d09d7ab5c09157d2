"""Recording exceptions as JSON-safe error values (this never fails)."""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..workflow import Workflow

_MAX_TRACEBACK = 20_000


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_first(exc: BaseException) -> str:
    """The traceback without the engine's frames that led into the step, so it
    starts at the user's code (frames of durable the step called stay)."""
    te = traceback.TracebackException.from_exception(exc)
    frames = list(te.stack)
    skip = 0
    while skip < len(frames) - 1 and os.path.abspath(frames[skip].filename).startswith(_PACKAGE):
        skip += 1
    if skip:
        te.stack = traceback.StackSummary.from_list(frames[skip:])
    text = "".join(te.format())
    if skip:
        head = "Traceback (most recent call last):\n"
        note = f"  ({skip} frames of durable calling the step omitted)\n"
        text = text.replace(head, head + note, 1) if text.startswith(head) else text
    return text


def error_value(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """``{type, message, traceback}`` of an exception (+ extra fields); the traceback
    starts at the user's code.

    Whatever the exception does (a ``__str__`` that raises, lone surrogates, NULs),
    the value holds only text the database accepts.
    """
    try:
        tb = _user_first(exc)
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
