"""When the executor fails while holding a claim: establish, release, count.

A checkpoint whose commit raised may have committed (a connection dropped
during COMMIT) or not. Nothing in memory is trusted after that: the stored row
says what happened. While our token is still on the row, the claim ends with
the run exactly as stored (``running`` becomes ``pending``, a terminal status is
never touched) and, when the failure was the run's own doing (not the database
being away), one crash is counted on the run's budget. When the database cannot
be read, the claim is left to stale-claim recovery: the worker stops
heart-beating it as soon as the runner returns.

A run that reached its budget (``crash_budget``, executor failures and worker
deaths since its last checkpoint) is failed by the next runner that claims it,
with an error naming the cause; see :func:`budget_error`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseGoneError, StorageError, WriteRejectedError
from .attempt import encode_error
from .errors import error_plain, error_value
from .state import RunState

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("durable.executor")

#: how soon a run released after a crash of its own may be claimed again
CRASH_RETRY_DELAY_MS = 1000
_MAX_BACKOFF_SECONDS = 2.0


def counts_as_crash(exc: BaseException) -> bool:
    """A failure of the run itself (a bug, a value the database refuses), as opposed to
    the database being away (which costs a run nothing)."""
    return not isinstance(exc, StorageError) or isinstance(exc, WriteRejectedError)


def settle_claim(
    engine: Engine, run: RunState, exc: BaseException, should_stop: Callable[[], bool]
) -> None:
    """Establish from the database what a failed claim left, and end the claim there."""
    crash = counts_as_crash(exc)
    crash_error = encode_error(error_value(exc)) if crash else None
    inflight = run.inflight
    next_token = inflight.claim_next[2] if inflight and inflight.claim_next else None
    give_up_at = time.monotonic() + engine.config.stale_timeout_seconds
    delay = 0.05
    while True:
        try:
            _settle_once(engine, run, crash_error, next_token)
            return
        except StorageError as err:
            if (
                isinstance(err, DatabaseGoneError)
                or time.monotonic() >= give_up_at
                or should_stop()
            ):
                log.error(
                    "execution %s: the database cannot tell what the failed commit left (%s); "
                    "the claim is left to stale-claim recovery",
                    run.id,
                    err,
                )
                return
            time.sleep(delay)
            delay = min(_MAX_BACKOFF_SECONDS, delay * 2)


def _settle_once(
    engine: Engine, run: RunState, crash_error: str | None, next_token: str | None
) -> None:
    storage = engine.storage
    now = engine.clock.now_ms()
    row = storage.get_execution(run.id)
    if row is not None and row["lock_token"] == run.token:
        wake = now + CRASH_RETRY_DELAY_MS if crash_error is not None else now
        storage.release_claim(run.id, run.token, now, wake, crash_error)
        log.warning(
            "execution %s: released at step %r as stored (status %s)%s",
            run.id,
            row["current_step"],
            row["status"],
            "; one crash counted on its budget" if crash_error is not None else "",
        )
        engine.notifier.notify(row["queue"])
    elif row is not None:
        log.warning(
            "execution %s: the commit went through or the claim was taken over (stored: "
            "status %s, step %r); nothing to undo",
            run.id,
            row["status"],
            row["current_step"],
        )
    if next_token is not None and storage.release_token(next_token, now):
        # the failed commit did claim our next run: no thread runs it, hand it back
        engine.notifier.notify("*")


def refund_death(engine: Engine, run: RunState) -> None:
    """Our claim was taken over while this worker was alive: when stale recovery took it
    (the database was out of our reach for longer than the stale timeout), it charged the
    run a worker death that did not happen. Take it back (best effort)."""
    try:
        engine.storage.refund_death(run.id)
    except StorageError as exc:
        log.warning("execution %s: could not take back the death counted on it (%s)", run.id, exc)


def budget_error(row: dict[str, Any], budget: int) -> dict[str, Any] | None:
    """The error that ends a run that crashed the engine ``budget`` times, or None."""
    crashes = int(row.get("crashes") or 0)
    if crashes < budget:
        return None
    deaths = int(row.get("deaths") or 0)
    step = row.get("current_step")
    if deaths >= crashes:
        message = f"the worker process died {crashes} times while running step `{step}`"
        return error_plain("WorkerCrashError", message, crashes=crashes)
    last = row.get("crash_error")
    detail = ""
    if last:
        try:
            cause = json.loads(last)
            detail = f"; last error: {cause.get('type')}: {cause.get('message')}"
        except ValueError:
            detail = ""
    message = (
        f"the executor failed {crashes} times while running step `{step}` "
        f"({deaths} of them worker deaths){detail}"
    )
    return error_plain("ExecutorCrashError", message, crashes=crashes)
