"""The run search shared by the dashboard, ``list_executions(search=...)`` and
``durable list --search``: ``input.order.id = o-7``, ``context.total = 12``,
``result.charge_id = "ch-1"`` (several joined by ``and``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import codec
from .errors import SerializationError
from .storage.protocols import JsonMatch

KEY_RE = re.compile(r"^[A-Za-z0-9_$-]{1,100}$")
_SEARCH_RE = re.compile(r"^\s*(input|context|result)((?:\.[^.=\s]+)+)\s*=\s*(.*?)\s*$")


def parse_search(text: str) -> list[JsonMatch]:
    """``input.order.id = o-7`` (several joined by `` and ``) into JSON matches; a
    ValueError says what cannot be read.

    The value is read as JSON when it parses (``7``, ``true``, ``"7"``), else as text.
    """
    out: list[JsonMatch] = []
    for part in re.split(r"\s+and\s+|\s*&&\s*", text.strip(), flags=re.IGNORECASE):
        if not part:
            continue
        m = _SEARCH_RE.match(part)
        if not m:
            raise ValueError(
                f"cannot read search {part!r}: write input.key.subkey = value "
                "(or context.key = value, result.key = value)"
            )
        column, dotted, raw = m.group(1), m.group(2), m.group(3)
        keys = tuple(dotted.split(".")[1:])
        for key in keys:
            if not KEY_RE.match(key):
                raise ValueError(f"search key {key!r} may hold only letters, digits, _ $ and -")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        try:  # what cannot be stored cannot match: say so instead of failing in SQL
            codec.encode(value, f"search value of {column}{dotted}")
        except SerializationError as exc:
            raise ValueError(str(exc)) from None
        if any(m.column == column for m in out):
            raise ValueError(f"search on {column} at most once")
        out.append(JsonMatch(column, keys, value))  # type: ignore[arg-type]
    return out
