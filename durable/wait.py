"""Waiting inside a step: sleep, timers, external events and human input.

Every primitive here is called inside a step body. When the answer is not
there yet, the step leaves through a ``Suspend`` signal and the run holds
nothing (no worker slot, thread or connection). When the wait ends the step
runs again from its top, and each wait call returns its recorded value, so
the code *before* a wait in the same step runs again: put side effects in
their own steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import checks, codec
from .clock import to_ms
from .errors import (
    DurableError,
    InputValidationError,
    WaitCancelledError,
    WaitTimeoutError,
)
from .inputs import Field, build_spec, validate
from .models import ms_to_iso
from .runtime import StepRuntime, current_runtime
from .storage import Row

MISSING: Any = object()


def _deadline(rt: StepRuntime, timeout: float | None) -> int | None:
    if timeout is None:
        return None
    return _after(rt, checks.seconds(timeout, "timeout"), "timeout")


def _after(rt: StepRuntime, seconds: float, what: str) -> int:
    """``now + seconds`` in epoch ms, refused if it does not fit a 64-bit column."""
    if seconds > codec.MAX_SECONDS:
        raise DurableError(f"{what} of {seconds!r} seconds is too far away")
    return codec.check_int(rt.now_ms() + int(seconds * 1000), f"{what} (epoch ms)")


def sleep(seconds: float) -> None:
    """Pause the workflow for ``seconds``; the run is woken when the time comes."""
    delay = checks.seconds(seconds, "sleep() seconds")
    rt = current_runtime("sleep")
    _sleep_until(rt, _after(rt, delay, "sleep()"), "sleep")


def schedule_at(when: datetime) -> None:
    """Pause the workflow until the aware datetime ``when``."""
    rt = current_runtime("schedule_at")
    _sleep_until(rt, to_ms(when, "schedule_at()"), "schedule_at")


def _sleep_until(rt: StepRuntime, until_ms: int, what: str) -> None:
    seq = rt.next_seq()
    group = rt.existing(seq) or rt.register(seq, [{"kind": "sleep", "timeout_at": until_ms}])
    fire_at = int(group[0]["timeout_at"])
    if rt.now_ms() >= fire_at:
        return
    rt.suspend({"type": what, "until": ms_to_iso(fire_at)}, fire_at)


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DurableError(
            f"unknown time zone {tz!r}; use an IANA name like 'Europe/Paris'"
        ) from exc


def _local_now(tz: str | None) -> datetime:
    rt = current_runtime("calendar helpers")
    return datetime.fromtimestamp(rt.now_ms() / 1000, tz=_zone(tz))


def next_business_day(at: dtime = dtime(9, 0), tz: str | None = None) -> datetime:
    """The next Monday-to-Friday at ``at`` (local to ``tz``), after today. Pass it to schedule_at."""
    now = _local_now(tz)
    day = now.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, at, tzinfo=now.tzinfo)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def next_weekday(day: int | str, at: dtime = dtime(9, 0), tz: str | None = None) -> datetime:
    """The next given weekday (0=Monday or 'monday') at ``at``, strictly after now."""
    if isinstance(day, str):
        if day.lower() not in _WEEKDAYS:
            raise DurableError(f"unknown weekday {day!r}")
        day = _WEEKDAYS.index(day.lower())
    if not 0 <= day <= 6:
        raise DurableError(f"weekday must be 0 (Monday) to 6 (Sunday), got {day!r}")
    now = _local_now(tz)
    candidate: date = now.date() + timedelta(days=(day - now.weekday()) % 7)
    result = datetime.combine(candidate, at, tzinfo=now.tzinfo)
    if result <= now:
        result = datetime.combine(candidate + timedelta(days=7), at, tzinfo=now.tzinfo)
    return result


def end_of_day(tz: str | None = None) -> datetime:
    """Midnight at the end of today (local to ``tz``): the first instant of tomorrow."""
    now = _local_now(tz)
    return datetime.combine(now.date() + timedelta(days=1), dtime(0, 0), tzinfo=now.tzinfo)


# ---- events ---------------------------------------------------------------


def wait_for_event(name: str, *, timeout: float | None = None, timeout_value: Any = MISSING) -> Any:
    """Wait for ``send_event(execution_id, name, payload)``; return the payload.

    Events sent before the workflow reaches this call are buffered per
    execution and consumed here, oldest first; each event is consumed once.
    """
    rt = current_runtime("wait_for_event")
    _check_name(name)
    seq = rt.next_seq()
    group = rt.existing(seq) or rt.register(
        seq, [{"kind": "event", "name": name, "timeout_at": _deadline(rt, timeout)}]
    )
    row = _settle(rt, seq, group)
    if row["status"] == "resolved":
        return codec.decode(row["value"])
    if row["status"] == "pending":
        _suspend_group(rt, group, {"type": "event", "event": name})
    return _no_answer(row, timeout_value, f"event {name!r}")


def wait_for_any(
    names: Sequence[str], *, timeout: float | None = None, timeout_value: Any = MISSING
) -> Any:
    """Wait for the first of several events; return ``(name, payload)``."""
    rt = current_runtime("wait_for_any")
    names = _check_names(names)
    seq = rt.next_seq()
    deadline = _deadline(rt, timeout)
    group = rt.existing(seq) or rt.register(
        seq, [{"kind": "event", "name": n, "mode": "any", "timeout_at": deadline} for n in names]
    )
    group = _settle_group(rt, seq, group)
    for row in group:
        if row["status"] == "resolved":
            return (row["name"], codec.decode(row["value"]))
    if any(r["status"] == "pending" for r in group):
        _suspend_group(rt, group, {"type": "any_event", "events": list(names)})
    return _no_answer(group[0], timeout_value, f"any of events {list(names)!r}")


def wait_for_all(
    names: Sequence[str], *, timeout: float | None = None, timeout_value: Any = MISSING
) -> Any:
    """Wait until every named event arrived; return ``{name: payload}``.

    On timeout the whole group ends: ``timeout_value`` is returned (or
    WaitTimeoutError raised) even if some events arrived.
    """
    rt = current_runtime("wait_for_all")
    names = _check_names(names)
    seq = rt.next_seq()
    deadline = _deadline(rt, timeout)
    group = rt.existing(seq) or rt.register(
        seq, [{"kind": "event", "name": n, "mode": "all", "timeout_at": deadline} for n in names]
    )
    group = _settle_group(rt, seq, group)
    if all(r["status"] == "resolved" for r in group):
        return {r["name"]: codec.decode(r["value"]) for r in group}
    pending = [r for r in group if r["status"] == "pending"]
    if pending and not any(r["status"] in ("timed_out", "cancelled") for r in group):
        _suspend_group(rt, group, {"type": "all_events", "events": [r["name"] for r in pending]})
    ended = next(r for r in group if r["status"] in ("timed_out", "cancelled"))
    return _no_answer(ended, timeout_value, f"all of events {list(names)!r}")


# ---- human input ------------------------------------------------------------


def wait_for_input(
    name: str,
    *,
    type: str = "any",
    prompt: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    choices: Sequence[Any] | None = None,
    fields: Sequence[Field | Mapping[str, Any]] | None = None,
    timeout: float | None = None,
    timeout_value: Any = MISSING,
) -> Any:
    """Wait for ``provide_input(execution_id, name, value)``; return the value.

    The value is validated against ``type`` when it is provided; a bad value is
    refused with InputValidationError and the workflow keeps waiting.
    Input names are unique within one execution.
    """
    rt = current_runtime("wait_for_input")
    _check_name(name)
    spec = build_spec(type, choices, fields)
    seq = rt.next_seq()
    group = rt.existing(seq)
    if group is None:
        row = {
            "kind": "input",
            "name": name,
            "input_type": type,
            "prompt": _prompt(prompt),
            "metadata": rt.engine.codec.encode(dict(metadata or {}), "input metadata"),
            "spec": rt.engine.codec.encode(spec, "input spec"),
            "timeout_at": _deadline(rt, timeout),
        }
        group = rt.register(seq, [row])
    row = _settle(rt, seq, group)
    if row["status"] == "resolved":
        value = codec.decode(str(row["value"]))
        try:
            return validate(type, spec, value)
        except InputValidationError:
            # a value buffered before the wait did not fit the declared type: ask again
            rt.engine.storage.reopen_wait(str(row["id"]), rt.now_ms())
            row = rt.reload(seq)[0]
            rt.engine.announce_input(rt, row)
    if row["status"] == "pending":
        _suspend_group(rt, [row], {"type": "input", "input": name, "input_type": type})
    return _no_answer(row, timeout_value, f"input {name!r}")


def wait_for_approval(name: str, *, prompt: str | None = None, **options: Any) -> Any:
    """Wait for ``"approved"`` or ``"rejected"`` (True/False are accepted too)."""
    return wait_for_input(name, type="approval", prompt=prompt, **options)


def wait_for_choice(
    name: str, *, choices: Sequence[Any], prompt: str | None = None, **options: Any
) -> Any:
    """Wait for one of ``choices``."""
    return wait_for_input(name, type="choice", choices=choices, prompt=prompt, **options)


def wait_for_text(name: str, *, prompt: str | None = None, **options: Any) -> Any:
    """Wait for a string."""
    return wait_for_input(name, type="text", prompt=prompt, **options)


def wait_for_form(
    name: str,
    *,
    fields: Sequence[Field | Mapping[str, Any]],
    prompt: str | None = None,
    **options: Any,
) -> Any:
    """Wait for an object whose fields match ``fields`` (required, typed)."""
    return wait_for_input(name, type="form", fields=fields, prompt=prompt, **options)


# ---- shared -------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise DurableError(f"a wait name must be a non-empty string, got {name!r}")
    codec.check_text(name, "a wait name")


def _prompt(prompt: str | None) -> str | None:
    if prompt is None:
        return None
    return codec.check_text(prompt, "an input prompt", empty=True, max_chars=100_000)


def _check_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not names:
        raise DurableError("pass a non-empty list of event names")
    out = list(names)
    for n in out:
        _check_name(n)
    if len(set(out)) != len(out):
        raise DurableError(f"event names repeat in {out!r}")
    return out


def _settle(rt: StepRuntime, seq: int, group: list[Row]) -> Row:
    return _settle_group(rt, seq, group)[0]


def _settle_group(rt: StepRuntime, seq: int, group: list[Row]) -> list[Row]:
    """Expire the group's pending waits whose deadline passed (atomically)."""
    now = rt.now_ms()
    due = [
        r["id"]
        for r in group
        if r["status"] == "pending" and r["timeout_at"] is not None and now >= r["timeout_at"]
    ]
    if not due:
        return group
    if len(due) != len([r for r in group if r["status"] == "pending"]):
        return group
    rt.engine.storage.expire_waits(due, now)
    return rt.reload(seq)


def _suspend_group(rt: StepRuntime, group: list[Row], what: dict[str, Any]) -> None:
    deadlines = [
        r["timeout_at"] for r in group if r["status"] == "pending" and r["timeout_at"] is not None
    ]
    wake = min(deadlines) if deadlines else None
    if wake is not None:
        what = {**what, "timeout_at": ms_to_iso(wake)}
    rt.suspend(what, wake)


def _no_answer(row: Row, timeout_value: Any, what: str) -> Any:
    if timeout_value is not MISSING:
        return timeout_value
    if row["status"] == "cancelled":
        raise WaitCancelledError(f"the wait for {what} was cancelled")
    raise WaitTimeoutError(f"timed out waiting for {what}")
