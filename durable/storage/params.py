"""The last check before a statement runs: parameters both backends can hold.

Every entry point checks its values first (with a message naming the value);
this backstop at the driver boundary makes sure that whatever slips through
fails the same way on SQLite and PostgreSQL, before anything is written:
a string with NUL or a lone surrogate, or an integer outside 64 bits, is a
:class:`SerializationError`, not a driver error (or, on SQLite, a stored row).
"""

from __future__ import annotations

from typing import Any

from ..codec import INT64_MAX, INT64_MIN, text_problem
from ..errors import SerializationError


def check_params(query: str, params: dict[str, Any]) -> None:
    """Raise SerializationError if a parameter of ``query`` cannot be stored."""
    for key, value in params.items():
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise SerializationError(f"{key!r} refused ({query}): {problem}")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not INT64_MIN <= value <= INT64_MAX:
                raise SerializationError(
                    f"{key!r} refused ({query}): {value if value.bit_length() < 200 else 'a number'}"
                    f" is outside the 64-bit integer range"
                )
        elif isinstance(value, list):
            check_params(query, {f"{key}[{i}]": v for i, v in enumerate(value)})
