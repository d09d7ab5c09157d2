"""Cron expressions in a time zone (pure): parse, check, next fire times.

Five fields (minute hour day-of-month month day-of-week), names of months and
days, ranges, steps, lists, ``L``/``LW``/``nL``/``n#k``, and the macros
``@hourly @daily @midnight @weekly @monthly @yearly @annually``. Fire times are
computed by cronsim, which behaves like Debian cron across DST changes:

- a fixed local time that does not exist (spring forward) fires once, at the
  first valid instant after it (the jump);
- a fixed local time that occurs twice (fall back) fires once, in the first pass;
- expressions whose minute or hour field starts with ``*`` (hourly, every N
  minutes) fire in both passes of a repeated hour.

Times go in and out as UTC epoch milliseconds.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..errors import CronError as CronError  # re-exported: users import it from here
from ..errors import TimezoneError as TimezoneError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@lru_cache(maxsize=1024)
def normalize(expression: str) -> str:
    """Check ``expression`` and return its five-field form (macros expanded).

    Raises :class:`CronError` naming the field that is wrong and why.
    """
    if not isinstance(expression, str):
        raise CronError(f"a cron expression must be a string, got {type(expression).__name__}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        fields = MACROS.get(text.lower())
        if fields is None:
            raise CronError(
                f"cron expression {expression!r}: unknown macro {text!r} "
                f"(known: {', '.join(sorted(MACROS))})"
            )
        return fields
    parts = text.split(" ") if text else []
    if len(parts) != 5:
        raise CronError(
            f"cron expression {expression!r} has {len(parts)} fields; it needs 5 "
            "(minute hour day-of-month month day-of-week) or a macro such as @daily; "
            "for sub-minute schedules use every= seconds"
        )
    for index, part in enumerate(parts):
        why = _field_problem(index, part.upper())
        if why is not None:
            raise CronError(
                f"cron expression {expression!r}: field {index + 1} "
                f"({_FIELDS[index]}) is {part!r}: {why}"
            )
    normal = " ".join(parts).upper()
    try:
        CronSim(normal, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError:  # e.g. "0 0 30 2 *": no month given has that day
        raise CronError(
            f"cron expression {expression!r} never fires: field 3 (day-of-month) "
            "names a day that none of the months in field 4 has"
        ) from None
    return normal


def _field_problem(index: int, part: str) -> str | None:
    for term in part.split(","):
        why = _term_problem(index, term)
        if why is not None:
            return why
    return None


def _term_problem(index: int, term: str) -> str | None:
    if term == "":
        return "a list item is empty"
    if index == 2 and term in ("L", "LW"):
        return None
    if index == 4 and term.endswith("L") and "/" not in term:
        if not term[:-1].isdigit():
            return "needs a day number before L, such as 5L (the last Friday)"
        return _value_problem(index, term[:-1])
    if index == 4 and "#" in term:
        day, _, nth = term.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            return f"#{nth} must be #1 to #5 (the nth weekday of the month)"
        return _value_problem(index, day)
    base, slash, step = term.partition("/")
    if slash and (not step.isdigit() or int(step) == 0):
        return f"step /{step} must be a whole number of at least 1"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    why = _value_problem(index, start)
    if why is not None:
        return why
    if dash:
        why = _value_problem(index, end)
        if why is not None:
            return why
        if _value(index, end) < _value(index, start):
            return f"range {base} starts after it ends"
    return None


def _value(index: int, token: str) -> int:
    if index == 3 and token in _MONTHS:
        return _MONTHS.index(token) + 1
    if index == 4 and token in _DAYS:
        return _DAYS.index(token)
    return int(token)


def _value_problem(index: int, token: str) -> str | None:
    low, high = _RANGES[index]
    if (index == 3 and token in _MONTHS) or (index == 4 and token in _DAYS):
        return None
    if not token.isdigit():
        names = {3: " or a name JAN-DEC", 4: " or a name SUN-SAT"}.get(index, "")
        return f"{token!r} is not a number{names}"
    if not low <= int(token) <= high:
        return f"{token} is outside {low}-{high}"
    return None


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`TimezoneError` if it does not exist."""
    if not isinstance(name, str) or not name:
        raise TimezoneError(f"a time zone must be an IANA name such as 'UTC', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimezoneError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC', "
            "'America/New_York' or 'Europe/London'"
        ) from None


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=tz)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def next_after(expression: str, timezone: str, after_ms: int) -> int:
    """The first fire time strictly after ``after_ms`` (UTC epoch ms)."""
    tz = zone(timezone)
    it = CronSim(normalize(expression), _local(after_ms, tz))
    try:
        fire = next(it)
        # cronsim walks fixed-time expressions in wall time, so from the second
        # pass of a repeated hour it can answer the first pass (in the past); and
        # across a gap it can answer a wildcard expression with the instant after
        # the gap even when that wall time does not match: skip both
        while _ms(fire) <= after_ms or (it.fixup_tz is None and not _wall_matches(it, fire)):
            fire = next(it)
    except StopIteration:
        raise CronError(f"cron expression {expression!r} does not fire in 50 years") from None
    return _ms(fire)


def _wall_matches(it: CronSim, fire: datetime) -> bool:
    wall = fire.astimezone(UTC).astimezone(fire.tzinfo)  # cronsim may answer a time in a gap
    return wall.minute in it.minutes and wall.hour in it.hours


def fire_times(expression: str, timezone: str, after_ms: int, n: int) -> list[int]:
    """The next ``n`` fire times strictly after ``after_ms``, in order."""
    out: list[int] = []
    cursor = after_ms
    for _ in range(n):
        cursor = next_after(expression, timezone, cursor)
        out.append(cursor)
    return out


def latest_ticks(
    expression: str, timezone: str, first_ms: int, now_ms: int, keep: int
) -> tuple[list[int], int]:
    """Fire times in ``[first_ms, now_ms]``: the last ``keep`` of them, oldest first,
    and the first fire time after ``now_ms``.

    Long gaps cost little: the walk starts shortly before the ``keep``-th most
    recent tick (found by iterating backwards) instead of at ``first_ms``.
    """
    tz = zone(timezone)
    start = first_ms - 1
    probe = CronSim(normalize(expression), _local(now_ms + 1000, tz), reverse=True)
    oldest = None
    for _ in range(keep):
        try:
            oldest = next(probe)
        except StopIteration:
            break
    if oldest is not None:
        # a margin absorbs any DST difference between backward and forward walks
        start = max(start, _ms(oldest - timedelta(hours=3)))
    kept: deque[int] = deque(maxlen=keep)
    cursor = start
    while True:
        cursor = next_after(expression, timezone, cursor)
        if cursor > now_ms:
            return list(kept), cursor
        if cursor >= first_ms:
            kept.append(cursor)


def describe(expression: str) -> str:
    """An English description of a (valid) expression, e.g. for a dashboard."""
    return CronSim(normalize(expression), datetime(2026, 1, 1, tzinfo=UTC)).explain()
