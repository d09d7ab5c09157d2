"""The one source of time. Inject a Clock; tests use ``durable.testing.FakeClock``."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current UTC time as epoch milliseconds."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds``; return early (True) when ``wake`` is set."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is None:
            time.sleep(max(0.0, seconds))
            return False
        return wake.wait(max(0.0, seconds))


def to_ms(value: datetime, what: str = "datetime") -> int:
    """An aware datetime to epoch milliseconds; naive datetimes are refused."""
    from .errors import DurableError

    if not isinstance(value, datetime):
        raise DurableError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DurableError(
            f"{what} must be timezone-aware (got naive {value.isoformat()}); "
            "use datetime(..., tzinfo=timezone.utc) or a ZoneInfo"
        )
    return int(value.timestamp() * 1000)
