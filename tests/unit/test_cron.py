"""Cron in a time zone (pure): DST as Debian cron, month ends, leap days, day rules, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable.scheduler.cron import (
    CronError,
    TimezoneError,
    describe,
    fire_times,
    latest_ticks,
    next_after,
    normalize,
    zone,
)
from durable.scheduler.schedule import Timing
from durable.testing import FakeClock


def ms(text: str) -> int:
    """'2026-03-08T07:00Z' -> epoch ms."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def iso(value: int) -> str:
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def run(expr: str, tz: str, start: str, n: int) -> list[str]:
    return [iso(t) for t in fire_times(expr, tz, ms(start), n)]


# ---- DST, as Debian cron: (expression, zone, start, expected UTC fire times) ----------

DST_TABLE = [
    # New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00Z",
        ["2026-03-08T07:00Z", "2026-03-09T06:30Z"],
    ),
    ("0 2 * * *", "America/New_York", "2026-03-07T12:00Z", ["2026-03-08T07:00Z"]),
    (
        "0 * * * *",
        "America/New_York",
        "2026-03-08T06:30Z",
        ["2026-03-08T07:00Z", "2026-03-08T08:00Z"],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-03-08T06:45Z",
        ["2026-03-08T07:00Z", "2026-03-08T07:30Z"],
    ),
    # New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST (01:xx happens twice)
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00Z",
        ["2026-11-01T05:30Z", "2026-11-02T06:30Z"],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:30Z",
        ["2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z"],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T04:50Z",
        [
            "2026-11-01T05:00Z",
            "2026-11-01T05:30Z",
            "2026-11-01T06:00Z",
            "2026-11-01T06:30Z",
            "2026-11-01T07:00Z",
        ],
    ),
    # from inside the second pass, a fixed time of the repeated hour waits a day
    ("30 1 * * *", "America/New_York", "2026-11-01T06:10Z", ["2026-11-02T06:30Z"]),
    # London, spring forward 2026-03-29 01:00 GMT -> 02:00 BST
    (
        "30 1 * * *",
        "Europe/London",
        "2026-03-28T12:00Z",
        ["2026-03-29T01:00Z", "2026-03-30T00:30Z"],
    ),
    (
        "15 * * * *",
        "Europe/London",
        "2026-03-29T00:00Z",
        ["2026-03-29T00:15Z", "2026-03-29T01:15Z"],
    ),
    # London, fall back 2026-10-25 02:00 BST -> 01:00 GMT
    (
        "30 1 * * *",
        "Europe/London",
        "2026-10-24T12:00Z",
        ["2026-10-25T00:30Z", "2026-10-26T01:30Z"],
    ),
    (
        "*/30 * * * *",
        "Europe/London",
        "2026-10-24T23:50Z",
        [
            "2026-10-25T00:00Z",
            "2026-10-25T00:30Z",
            "2026-10-25T01:00Z",
            "2026-10-25T01:30Z",
            "2026-10-25T02:00Z",
        ],
    ),
    (
        "0 * * * *",
        "Europe/London",
        "2026-10-24T23:30Z",
        ["2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"],
    ),
    # zones from the dependency notes: Santiago skips midnight, Lord Howe moves 30 min
    ("0 0 * * *", "America/Santiago", "2026-09-05T12:00Z", ["2026-09-06T04:00Z"]),
    ("30 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00Z", ["2026-10-03T15:30Z"]),
]


@pytest.mark.parametrize(("expr", "tz", "start", "expected"), DST_TABLE)
def test_dst_table(expr: str, tz: str, start: str, expected: list[str]) -> None:
    assert run(expr, tz, start, len(expected)) == expected


def test_weekday_morning_in_new_york_on_a_fake_clock() -> None:
    clock = FakeClock(datetime(2026, 1, 9, 15, 0, tzinfo=UTC))  # Friday 10:00 EST
    times = run("0 9 * * MON-FRI", "America/New_York", iso(clock.now_ms()), 3)
    assert times == ["2026-01-12T14:00Z", "2026-01-13T14:00Z", "2026-01-14T14:00Z"]
    clock.set(datetime(2026, 3, 6, 15, 0, tzinfo=UTC))  # Friday before the change
    assert run("0 9 * * MON-FRI", "America/New_York", iso(clock.now_ms()), 1) == [
        "2026-03-09T13:00Z"  # 09:00 EDT
    ]


# ---- calendar -------------------------------------------------------------------------


def test_month_ends_skip_short_months() -> None:
    assert run("0 0 31 * *", "UTC", "2026-01-31T00:00Z", 3) == [
        "2026-03-31T00:00Z",
        "2026-05-31T00:00Z",
        "2026-07-31T00:00Z",
    ]


def test_last_day_of_month() -> None:
    assert run("0 0 L * *", "UTC", "2026-01-31T00:00Z", 2) == [
        "2026-02-28T00:00Z",
        "2026-03-31T00:00Z",
    ]
    assert run("0 0 L 2 *", "UTC", "2027-03-01T00:00Z", 1) == ["2028-02-29T00:00Z"]


def test_leap_day_waits_for_a_leap_year() -> None:
    assert run("0 12 29 2 *", "UTC", "2026-01-01T00:00Z", 2) == [
        "2028-02-29T12:00Z",
        "2032-02-29T12:00Z",
    ]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Debian: both fields restricted -> either matches (Feb 1 2026 is a Sunday)
    assert run("0 0 13 * FRI", "UTC", "2026-02-01T00:00Z", 3) == [
        "2026-02-06T00:00Z",
        "2026-02-13T00:00Z",
        "2026-02-20T00:00Z",
    ]


def test_day_of_month_and_day_of_week_when_one_starts_with_a_star() -> None:
    # "*/2" starts with '*': both must match (odd days that are Fridays)
    assert run("0 0 */2 * FRI", "UTC", "2026-02-01T00:00Z", 2) == [
        "2026-02-13T00:00Z",
        "2026-02-27T00:00Z",
    ]


def test_names_lists_ranges_steps_and_sunday_as_seven() -> None:
    assert run("0 8-10/2 * JAN,mar sun", "UTC", "2026-01-01T00:00Z", 3) == [
        "2026-01-04T08:00Z",
        "2026-01-04T10:00Z",
        "2026-01-11T08:00Z",
    ]
    assert run("0 0 * * 7", "UTC", "2026-01-01T00:00Z", 1) == ["2026-01-04T00:00Z"]


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros(macro: str, fields: str) -> None:
    assert normalize(macro) == fields
    assert fire_times(macro, "Europe/London", ms("2026-06-01T00:00Z"), 2) == fire_times(
        fields, "Europe/London", ms("2026-06-01T00:00Z"), 2
    )


def test_next_after_is_strictly_after() -> None:
    assert iso(next_after("0 9 * * *", "UTC", ms("2026-01-05T09:00Z"))) == "2026-01-06T09:00Z"
    assert iso(next_after("0 9 * * *", "UTC", ms("2026-01-05T08:59Z") + 59_999)) == (
        "2026-01-05T09:00Z"
    )


def test_describe() -> None:
    assert "9:00" in describe("0 9 * * MON-FRI") or "09:00" in describe("0 9 * * MON-FRI")


# ---- errors name the field and why ----------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 25 * * *", ["field 2 (hour)", "25 is outside 0-23"]),
        ("60 * * * *", ["field 1 (minute)", "outside 0-59"]),
        ("0 0 0 * *", ["field 3 (day-of-month)", "outside 1-31"]),
        ("0 0 * 13 *", ["field 4 (month)", "outside 1-12"]),
        ("0 0 * * 8", ["field 5 (day-of-week)", "outside 0-7"]),
        ("0 0 * FOO *", ["field 4 (month)", "JAN-DEC"]),
        ("0 0 * * FUNDAY", ["field 5 (day-of-week)", "SUN-SAT"]),
        ("*/0 * * * *", ["field 1 (minute)", "step /0"]),
        ("0 0 * * 5-1", ["field 5", "starts after it ends"]),
        ("0 0 1,,2 * *", ["field 3", "empty"]),
        ("0 0 * * 1#6", ["field 5", "#1 to #5"]),
        ("0 0 30 2 *", ["never fires", "day-of-month"]),
        ("0 9 * *", ["has 4 fields", "needs 5"]),
        ("0 0 9 * * *", ["has 6 fields", "every="]),
        ("", ["has 0 fields"]),
        ("@fortnightly", ["unknown macro", "@daily"]),
    ],
)
def test_invalid_expressions_say_which_field_and_why(expr: str, words: list[str]) -> None:
    with pytest.raises(CronError) as info:
        normalize(expr)
    for word in words:
        assert word in str(info.value)


def test_unknown_time_zone() -> None:
    with pytest.raises(TimezoneError, match="Mars/Olympus"):
        zone("Mars/Olympus")
    with pytest.raises(TimezoneError):
        zone("")


# ---- catch-up windows ------------------------------------------------------------------


def test_latest_ticks_over_a_long_gap_is_cheap_and_exact() -> None:
    first = ms("2025-01-01T00:00Z")
    now = ms("2026-01-05T09:30Z")
    ticks, upcoming = latest_ticks("*/5 * * * *", "UTC", first, now, 3)
    assert [iso(t) for t in ticks] == [
        "2026-01-05T09:20Z",
        "2026-01-05T09:25Z",
        "2026-01-05T09:30Z",
    ]
    assert iso(upcoming) == "2026-01-05T09:35Z"
    ticks, _ = latest_ticks("0 9 * * *", "UTC", ms("2026-01-04T09:00Z"), now, 100)
    assert [iso(t) for t in ticks] == ["2026-01-04T09:00Z", "2026-01-05T09:00Z"]


def test_interval_ticks_count_from_the_epoch() -> None:
    timing = Timing(None, 60_000, "America/New_York")
    assert timing.next_after(ms("2026-01-05T09:00Z") + 1) == ms("2026-01-05T09:01Z")
    ticks, upcoming = timing.due(ms("2026-01-05T09:00Z"), ms("2026-01-05T09:05Z") + 10, 2)
    assert [iso(t) for t in ticks] == ["2026-01-05T09:04Z", "2026-01-05T09:05Z"]
    assert iso(upcoming) == "2026-01-05T09:06Z"
    assert timing.due(ms("2026-01-05T09:06Z"), ms("2026-01-05T09:05Z"), 2)[0] == []


# ---- property: cronsim against a brute-force minute oracle of Debian's rules ---------

# Lord Howe (30-minute DST) is left out: across its fall-back cronsim 2.8 skips
# 02:00-02:29 of the new standard time for hour-stepped wildcard expressions
# ("* */2 * * *"); its fixed-time behaviour is covered in DST_TABLE.
CHANGES = [  # (zone, a 2026 DST change, UTC)
    ("America/New_York", "2026-03-08T07:00Z"),
    ("America/New_York", "2026-11-01T06:00Z"),
    ("Europe/London", "2026-03-29T01:00Z"),
    ("Europe/London", "2026-10-25T01:00Z"),
    ("America/Santiago", "2026-04-05T03:00Z"),
    ("America/Santiago", "2026-09-06T04:00Z"),
    ("Asia/Beirut", "2026-03-28T22:00Z"),
    ("Asia/Beirut", "2026-10-24T21:00Z"),
]


@st.composite
def cron_field(draw: st.DrawFn, low: int, high: int) -> tuple[str, set[int]]:
    kind = draw(st.sampled_from(["star", "step", "list", "range"]))
    if kind == "star":
        return "*", set(range(low, high + 1))
    if kind == "step":
        step = draw(st.integers(2, max(2, (high - low) // 2)))
        return f"*/{step}", set(range(low, high + 1, step))
    if kind == "range":
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, min(high, a + 4)))
        return f"{a}-{b}", set(range(a, b + 1))
    values = sorted(draw(st.sets(st.integers(low, high), min_size=1, max_size=4)))
    return ",".join(map(str, values)), set(values)


def _imaginary(naive: datetime, tz: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive


def oracle(
    fields: list[tuple[str, set[int]]], tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Every fire time in (start, end], minute by minute, by Debian cron's rules."""
    (mt, minutes), (ht, hours), (dt, doms), (_, months), (wt, dows) = fields
    day_and = dt.startswith("*") or wt.startswith("*")
    dows = {d % 7 for d in dows}

    def matches(local: datetime) -> bool:
        if local.minute not in minutes or local.hour not in hours or local.month not in months:
            return False
        dom, dow = local.day in doms, (local.weekday() + 1) % 7 in dows
        return dom and dow if day_and else dom or dow

    out: list[datetime] = []
    if not mt.startswith("*") and not ht.startswith("*"):
        # fixed times walk the wall clock: a missing time fires at the jump, a
        # repeated one in its first pass only
        naive = start.astimezone(tz).replace(tzinfo=None, second=0) - timedelta(hours=3)
        stop = end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
        while naive <= stop:
            if matches(naive):
                real = naive
                while _imaginary(real, tz):
                    real += timedelta(minutes=1)
                fire = real.replace(tzinfo=tz, fold=0).astimezone(UTC)
                if start < fire <= end and (not out or fire > out[-1]):
                    out.append(fire)
            naive += timedelta(minutes=1)
        return out
    t = start.replace(second=0) + timedelta(minutes=1)
    while t <= end:
        if matches(t.astimezone(tz).replace(tzinfo=None)):
            out.append(t)
        t += timedelta(minutes=1)
    return out


@settings(max_examples=60, deadline=None)
@given(
    change=st.sampled_from(CHANGES),
    offset_minutes=st.integers(-18 * 60, 6 * 60),
    minute=cron_field(0, 59),
    hour=cron_field(0, 23),
    dom=st.one_of(st.just(("*", set(range(1, 32)))), cron_field(1, 31)),
    dow=st.one_of(st.just(("*", set(range(0, 7)))), cron_field(0, 7)),
)
def test_cronsim_matches_a_minute_oracle_across_dst(
    change: tuple[str, str],
    offset_minutes: int,
    minute: tuple[str, set[int]],
    hour: tuple[str, set[int]],
    dom: tuple[str, set[int]],
    dow: tuple[str, set[int]],
) -> None:
    name, when = change
    tz = ZoneInfo(name)
    start = datetime.fromtimestamp(ms(when) / 1000, tz=UTC) + timedelta(minutes=offset_minutes)
    end = start + timedelta(hours=30)
    fields = [minute, hour, dom, ("*", set(range(1, 13))), dow]
    expr = " ".join(text for text, _ in fields)
    expected = oracle(fields, tz, start, end)
    got: list[datetime] = []
    cursor = int(start.timestamp() * 1000)
    while True:
        cursor = next_after(expr, name, cursor)
        if cursor > end.timestamp() * 1000:
            break
        got.append(datetime.fromtimestamp(cursor / 1000, tz=UTC))
    assert got == expected, expr
