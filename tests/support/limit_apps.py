"""The app worker processes load in the queue-limit tests (``--app tests.support.limit_apps:app``).

Configured by environment: DURABLE_TEST_URL (database), DURABLE_TEST_LIMITS (JSON
keyword arguments of QueueLimits for queue ``limited``; ``per_key`` keys on the
input's ``key``), DURABLE_SPANS (a file each step appends ``run key start end`` to,
from its own clock) and DURABLE_STEP_SLEEP (seconds each step works).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from durable import Durable, QueueLimits, Workflow, step


def _record(ctx: dict[str, Any]) -> dict[str, Any]:
    started = time.time()
    time.sleep(float(os.environ.get("DURABLE_STEP_SLEEP", "0")))
    ended = time.time()
    fd = os.open(os.environ["DURABLE_SPANS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx['n']} {ctx.get('key', '-')} {started:.6f} {ended:.6f}\n".encode())
    finally:
        os.close(fd)
    return ctx


def _prepare(ctx: dict[str, Any]) -> dict[str, Any]:
    return ctx


def _key(value: dict[str, Any]) -> str:
    return str(value["key"])


# the limited step is routed to its own queue: the run starts on "default"
LIMITED = Workflow(
    "limited",
    [step(_prepare), step(_record, name="work", queue="limited"), step(_prepare, name="after")],
)


def limits() -> dict[str, QueueLimits]:
    options = json.loads(os.environ.get("DURABLE_TEST_LIMITS", "{}"))
    if options.get("per_key"):
        options["key"] = _key
    return {"limited": QueueLimits(**options)} if options else {}


def app() -> Durable:
    return Durable(
        os.environ["DURABLE_TEST_URL"],
        workflows=[LIMITED],
        name="limits",
        limits=limits(),
        poll_interval_seconds=0.1,
        stale_timeout_seconds=float(os.environ.get("DURABLE_STALE_TIMEOUT", "2")),
        heartbeat_interval_seconds=0.5,
        maintenance_interval_seconds=0.5,
    )


def spans(path: str) -> list[tuple[str, str, float, float]]:
    """The recorded spans: (run number, key, start, end)."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                n, key, start, end = line.split()
                out.append((n, key, float(start), float(end)))
    return out


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = level = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def peak_in_window(times: list[float], window: float) -> int:
    """The most instants inside any closed window of ``window`` seconds."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best
