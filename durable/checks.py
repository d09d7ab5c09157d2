"""Checks of numeric arguments, shared by every public verb that takes one.

``bool`` is refused where a number is wanted (``True`` is an ``int`` in Python),
and so are NaN and infinities (no duration or count means either).
"""

from __future__ import annotations

import math
from typing import TypeGuard

from .errors import DurableError


def is_number(value: object) -> TypeGuard[int | float]:
    """An ``int`` or a finite ``float``, not a ``bool``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def seconds(
    value: object,
    what: str,
    *,
    positive: bool = False,
    error: type[DurableError] = DurableError,
) -> float:
    """``value`` as seconds: a number >= 0 (> 0 with ``positive``), else ``error``."""
    if not is_number(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise error(f"{what} must be a {kind} number of seconds, got {value!r}")
    return float(value)


def positive_number(value: object, what: str, *, error: type[DurableError] = DurableError) -> float:
    """``value`` as a number > 0, else ``error``."""
    if not is_number(value) or value <= 0:
        raise error(f"{what} must be a positive number, got {value!r}")
    return float(value)


def count(
    value: object,
    what: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    error: type[DurableError] = DurableError,
) -> int:
    """``value`` as an int in ``[minimum, maximum]``, else ``error``."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise error(f"{what} must be an int {bound}, got {value!r}")
    return value


def integer(value: object, what: str, *, error: type[DurableError] = DurableError) -> int:
    """``value`` as an int (any sign), else ``error``."""
    if not is_int(value):
        raise error(f"{what} must be an int, got {value!r}")
    return value
