"""Apps loaded by worker subprocesses in integration tests (``--app tests.support.apps:...``).

Configured by environment: DURABLE_TEST_URL (database), DURABLE_SIDE_EFFECTS (a file
each step appends one line to), DURABLE_STEP_SLEEP (seconds each step sleeps).
"""

from __future__ import annotations

import os
import time
from typing import Any

from durable import Durable, Retry, Workflow, parallel, step
from durable.wait import sleep as durable_sleep
from durable.wait import wait_for_event, wait_for_input


def _effect(name: str, ctx: Any) -> None:
    path = os.environ.get("DURABLE_SIDE_EFFECTS")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{ctx['id']}:{name}\n".encode())
        finally:
            os.close(fd)
    pause = float(os.environ.get("DURABLE_STEP_SLEEP", "0"))
    if pause:
        time.sleep(pause)


def _make_step(name: str) -> Any:
    def body(ctx: dict[str, Any]) -> dict[str, Any]:
        _effect(name, ctx)
        return {**ctx, "done": [*ctx.get("done", []), name]}

    body.__name__ = name
    return body


FIVE = Workflow("five_steps", [step(_make_step(f"s{i}")) for i in range(1, 6)])
THREE = Workflow("three_steps", [step(_make_step(f"s{i}")) for i in range(1, 4)])


def _waiter(ctx: dict[str, Any]) -> dict[str, Any]:
    payload = wait_for_event("go", timeout=600)
    return {**ctx, "payload": payload}


def _asker(ctx: dict[str, Any]) -> dict[str, Any]:
    answer = wait_for_input("answer", type="text", prompt="say something")
    return {**ctx, "answer": answer}


def _napper(ctx: dict[str, Any]) -> dict[str, Any]:
    durable_sleep(float(ctx.get("nap", 1)))
    return ctx


_flaky_state: dict[str, int] = {}


def _flaky(ctx: dict[str, Any]) -> dict[str, Any]:
    _effect("flaky", ctx)
    n = _flaky_state[ctx["id"]] = _flaky_state.get(ctx["id"], 0) + 1
    if n == 1:
        raise ConnectionError("first call fails")
    return ctx


WAITS = Workflow("waits", [step(_waiter), step(_asker)])
NAP = Workflow("nap", [step(_napper), step(_make_step("after_nap"))])
FLAKY = Workflow("flaky", [step(_flaky, retry=Retry(max_attempts=5, base=0.05))])

ALL = [FIVE, THREE, WAITS, NAP, FLAKY]


def app() -> Durable:
    """The app worker processes load."""
    return Durable(
        os.environ["DURABLE_TEST_URL"],
        workflows=ALL,
        name="itest",
        poll_interval_seconds=0.1,
        stale_timeout_seconds=float(os.environ.get("DURABLE_STALE_TIMEOUT", "2")),
        heartbeat_interval_seconds=0.5,
        maintenance_interval_seconds=0.5,
    )


def _par_child(name: str, index: int) -> Any:
    def body(ctx: dict[str, Any]) -> str:
        _effect(name, ctx)  # children finish one after another: p1 first, p5 last
        time.sleep(float(os.environ.get("DURABLE_STEP_SLEEP", "0")) * index)
        return name

    body.__name__ = name
    return body


def _reserve(ctx: dict[str, Any]) -> dict[str, Any]:
    _effect("reserve", ctx)
    return ctx


def _release(ctx: dict[str, Any]) -> None:
    _effect("release", ctx)


def _charge(ctx: dict[str, Any]) -> dict[str, Any]:
    _effect("charge", ctx)
    return ctx


def _refund(ctx: dict[str, Any]) -> None:
    _effect("refund", ctx)


def _explode(ctx: dict[str, Any]) -> None:
    raise RuntimeError("payment provider is gone")


PARALLEL = Workflow(
    "parallel_five",
    [parallel([step(_par_child(f"p{i}", i)) for i in range(1, 6)]), step(_make_step("joined"))],
)
SAGA = Workflow(
    "saga",
    [
        step(_reserve, compensate=_release),
        step(_charge, compensate=_refund),
        step(_make_step("ship"), compensate=_make_step("unship")),
        step(_explode),
    ],
)
ALL.extend([PARALLEL, SAGA])
