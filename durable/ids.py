"""Time-ordered ids (UUID version 7 layout) so new rows append to indexes.

Within one process ids are strictly increasing, even inside one millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # [ms, counter]


def new_id() -> str:
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
            if _last[1] >= 1 << 12:
                ms += 1
                _last[1] = 0
        else:
            _last[1] = 0
        _last[0] = ms
        counter = _last[1]
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0x2 << 62 | rand
    return str(uuid.UUID(int=value))


#: how many trailing hex digits make a short id
SHORT_ID_LENGTH = 12


def short_id(execution_id: str) -> str:
    """The short form shown in tables, the dashboard and the demo: the id's last group
    (12 hex digits, 48 random bits). The leading digits are a millisecond timestamp, so
    runs started close together share them; the last group tells them apart. The CLI
    accepts it wherever it takes an id."""
    return execution_id[-SHORT_ID_LENGTH:]


def new_token() -> str:
    return os.urandom(12).hex()


#: the longest id a caller may give a run (``start(..., id=...)``)
MAX_EXECUTION_ID_LENGTH = 200
_CHILD_NAMESPACE = uuid.UUID("6f0a3c52-8f6e-4d7e-9a51-1f2d0c7b9e14")


def check_execution_id(value: object) -> str:
    """A caller's run id: a string of 1 to 200 characters without control characters."""
    from .errors import DurableError

    if not isinstance(value, str):
        raise DurableError(f"a run id must be a string, got {type(value).__name__} {value!r}")
    if not value:
        raise DurableError("a run id must not be empty")
    if len(value) > MAX_EXECUTION_ID_LENGTH:
        raise DurableError(
            f"a run id has at most {MAX_EXECUTION_ID_LENGTH} characters, got {len(value)} "
            f"({value[:20]!r}...)"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise DurableError(f"a run id must not contain control characters, got {value!r}")
    return value


def child_id(parent_id: str, step_name: str, seq: int) -> str:
    """The id of the child a step starts: the same for every attempt of that step, so a
    retried or re-run parent step never starts a second child."""
    return str(uuid.uuid5(_CHILD_NAMESPACE, f"{parent_id}\x00{step_name}\x00{seq}"))
