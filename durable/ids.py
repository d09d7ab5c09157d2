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


def new_token() -> str:
    return os.urandom(12).hex()
