"""Schedules on a FakeClock: API, declared schedules, catch-up, overlap, events, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from durable import Durable, DurableError, Schedule, Workflow, step
from durable.errors import DefinitionError, SerializationError, WorkflowNotFoundError
from durable.scheduler import (
    CronError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    TimezoneError,
)
from durable.scheduler.scheduler import CATCH_UP_ALL_LIMIT
from durable.testing import FakeClock, TestApp
from durable.wait import wait_for_event

START = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)  # a Monday


def echo(value: Any) -> Any:
    return value


def hold(value: Any) -> Any:
    return wait_for_event("release")


REPORT = Workflow("report", [step(echo)])
HOLD = Workflow("hold", [step(hold)])


@pytest.fixture
def t() -> Iterator[TestApp]:
    with TestApp([REPORT, HOLD], clock=FakeClock(START)) as app:
        yield app


def schedule_events(t: TestApp) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.payload) for e in t.events if e.kind.startswith("schedule_")]


def runs_of(t: TestApp, name: str) -> list[Any]:
    return list(reversed(t.app.list_executions(schedule=name, limit=1000).items))


# ---- the API --------------------------------------------------------------------------


def test_create_get_list_update_delete(t: TestApp) -> None:
    s = t.app.schedules
    info = s.create("nightly", "report", cron="0 2 * * *", input={"k": 1}, queue="default")
    assert info.name == "nightly" and info.workflow_name == "report"
    assert info.cron == "0 2 * * *" and info.every_seconds is None
    assert info.enabled and not info.declared and info.skipped_count == 0
    assert info.next_run_at == datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
    assert info.input == {"k": 1} and info.created_at == START
    s.create("tick", HOLD, every=30, enabled=False)
    assert [i.name for i in s.list()] == ["nightly", "tick"]
    assert [i.name for i in s.list(workflow="hold")] == ["tick"]
    assert [i.name for i in s.list(enabled=False)] == ["tick"]
    assert s.get("tick").next_run_at is None

    updated = s.update("nightly", cron="0 9 * * MON-FRI", timezone="America/New_York")
    assert updated.next_run_at == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    assert updated.input == {"k": 1}
    switched = s.update("nightly", every=3600)
    assert switched.cron is None and switched.every_seconds == 3600
    assert switched.next_run_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert s.update("nightly", input=[1, 2], priority=5).priority == 5

    s.delete("nightly")
    with pytest.raises(ScheduleNotFoundError, match="nightly"):
        s.get("nightly")
    assert [i.name for i in s.list()] == ["tick"]


def test_next_fire_times_are_aware_and_in_the_schedule_zone(t: TestApp) -> None:
    s = t.app.schedules
    s.create("ny", "report", cron="0 9 * * MON-FRI", timezone="America/New_York")
    times = s.next_fire_times("ny", 3)
    ny = ZoneInfo("America/New_York")
    assert times == [
        datetime(2026, 1, 5, 9, 0, tzinfo=ny),
        datetime(2026, 1, 6, 9, 0, tzinfo=ny),
        datetime(2026, 1, 7, 9, 0, tzinfo=ny),
    ]
    assert all(x.tzinfo is not None for x in times)
    later = s.next_fire_times("ny", 1, after=datetime(2026, 3, 6, 15, 0, tzinfo=UTC))
    assert later[0].astimezone(UTC) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # EDT


def test_async_twins(t: TestApp) -> None:
    s = t.app.schedules

    async def go() -> None:
        await s.create_async("a", "report", every=60)
        assert (await s.get_async("a")).every_seconds == 60
        assert len(await s.list_async()) == 1
        await s.update_async("a", every=120)
        await s.disable_async("a")
        await s.enable_async("a")
        assert len(await s.next_fire_times_async("a", 2)) == 2
        assert await s.trigger_async("a")
        await s.delete_async("a")

    asyncio.run(go())
    assert s.list() == []


# ---- firing -------------------------------------------------------------------------


def test_a_tick_starts_one_run_with_schedule_name_and_tick_time(t: TestApp) -> None:
    t.app.schedules.create("hourly", "report", cron="@hourly", input={"n": 1})
    t.advance(minutes=29)
    assert runs_of(t, "hourly") == []
    t.advance(minutes=1)
    [run] = runs_of(t, "hourly")
    assert run.schedule_name == "hourly"
    assert run.schedule_tick_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert run.status == "completed" and run.result == {"n": 1}
    t.run_until_idle()
    assert len(runs_of(t, "hourly")) == 1
    info = t.app.schedules.get("hourly")
    assert info.last_execution_id == run.id
    assert info.last_tick_at == run.schedule_tick_at
    assert info.next_run_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_dst_spring_forward_fires_once_at_the_jump() -> None:
    clock = FakeClock(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    with TestApp([REPORT], clock=clock) as t:
        t.app.schedules.create("ny", "report", cron="30 2 * * *", timezone="America/New_York")
        for _ in range(90):
            t.advance(minutes=30)
        ticks = [r.schedule_tick_at for r in runs_of(t, "ny")]
        assert ticks == [
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 EDT
            datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
        ]


def test_dst_fall_back_fixed_time_once_hourly_twice() -> None:
    clock = FakeClock(datetime(2026, 11, 1, 4, 0, tzinfo=UTC))
    with TestApp([REPORT], clock=clock) as t:
        t.app.schedules.create("fixed", "report", cron="30 1 * * *", timezone="America/New_York")
        t.app.schedules.create("hourly", "report", cron="0 * * * *", timezone="America/New_York")
        for _ in range(8):
            t.advance(minutes=30)
        assert len(runs_of(t, "fixed")) == 1
        hourly = [
            r.schedule_tick_at.astimezone(ZoneInfo("America/New_York"))
            for r in runs_of(t, "hourly")
        ]
        assert [h.strftime("%H:%M%z") for h in hourly] == [
            "01:00-0400",
            "01:00-0500",
            "02:00-0500",
            "03:00-0500",
        ]


# ---- catch-up ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("latest", [datetime(2026, 1, 5, 13, 0, tzinfo=UTC)]),
        ("all", [datetime(2026, 1, 5, h, 0, tzinfo=UTC) for h in range(9, 14)]),
        ("none", []),
    ],
)
def test_catch_up_after_an_outage(t: TestApp, policy: str, expected: list[datetime]) -> None:
    t.app.schedules.create("hourly", "report", cron="@hourly", catch_up=policy)
    t.clock.advance(hours=4, minutes=45)  # no worker ran from 08:30 to 13:15
    t.run_until_idle()
    assert [r.schedule_tick_at for r in runs_of(t, "hourly")] == expected
    assert t.app.schedules.get("hourly").next_run_at == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    t.advance(minutes=45)
    assert len(runs_of(t, "hourly")) == len(expected) + 1  # back on time: 14:00 runs


def test_catch_up_none_still_runs_a_tick_seen_a_little_late(t: TestApp) -> None:
    t.app.schedules.create("hourly", "report", cron="@hourly", catch_up="none")
    t.clock.advance(minutes=30, seconds=20)
    t.run_until_idle()
    assert len(runs_of(t, "hourly")) == 1


def test_catch_up_all_is_bounded(t: TestApp) -> None:
    t.app.schedules.create("minutely", "report", every=60, catch_up="all")
    t.clock.advance(days=1)
    t.run_until_idle()
    ticks = [r.schedule_tick_at for r in runs_of(t, "minutely")]
    assert len(ticks) == CATCH_UP_ALL_LIMIT
    assert ticks[-1] == START + timedelta(days=1)  # the most recent ones are kept
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)


# ---- overlap -------------------------------------------------------------------------


def test_overlap_skip_records_the_skip_and_resumes_after_the_run_ends(t: TestApp) -> None:
    t.app.schedules.create("held", "hold", every=60, overlap="skip")
    t.advance(seconds=60)
    [first] = runs_of(t, "held")
    assert first.status == "waiting"
    t.advance(seconds=60)
    t.advance(seconds=60)
    assert len(runs_of(t, "held")) == 1
    assert t.app.schedules.get("held").skipped_count == 2
    t.app.send_event(first.id, "release", "ok")
    t.run_until_idle()
    assert t.app.get_execution(first.id).status == "completed"
    t.advance(seconds=60)
    assert len(runs_of(t, "held")) == 2


def test_overlap_allow_starts_a_run_per_tick(t: TestApp) -> None:
    t.app.schedules.create("held", "hold", every=60)
    for _ in range(3):
        t.advance(seconds=60)
    assert len(runs_of(t, "held")) == 3
    assert t.app.schedules.get("held").skipped_count == 0


# ---- events --------------------------------------------------------------------------


def test_toggle_and_trigger_events_and_nothing_for_create_update_delete(t: TestApp) -> None:
    s = t.app.schedules
    s.create("a", "report", every=60)
    s.update("a", every=120)
    assert schedule_events(t) == []
    s.disable("a")
    s.disable("a")  # already off: no second event
    s.enable("a")
    run_id = s.trigger("a")
    t.advance(seconds=120)
    s.delete("a")
    events = schedule_events(t)
    at = "2026-01-05T08:30:00Z"
    assert events[:3] == [
        ("schedule_toggled", {"name": "a", "workflow": "report", "enabled": False, "at": at}),
        ("schedule_toggled", {"name": "a", "workflow": "report", "enabled": True, "at": at}),
        (
            "schedule_triggered",
            {
                "name": "a",
                "workflow": "report",
                "execution_id": run_id,
                "tick_at": at,
                "manual": True,
            },
        ),
    ]
    [(kind, payload)] = events[3:]
    assert kind == "schedule_triggered"
    assert payload["manual"] is False and payload["tick_at"] == "2026-01-05T08:32:00Z"
    assert t.app.get_execution(payload["execution_id"]).schedule_name == "a"
    assert t.app.get_execution(run_id).schedule_tick_at == START
    topics = {e.topic for e in t.events if e.kind.startswith("schedule_")}
    assert topics == {t.app.pubsub.schedules_topic()}


def test_trigger_runs_even_when_disabled_and_overlapping(t: TestApp) -> None:
    s = t.app.schedules
    s.create("held", "hold", every=3600, overlap="skip", enabled=False)
    first = s.trigger("held")
    second = s.trigger("held")
    t.run_until_idle()
    assert {r.id for r in runs_of(t, "held")} == {first, second}


# ---- declared schedules ----------------------------------------------------------------


def _declared(*schedules: Schedule) -> Workflow:
    return Workflow("daily", [step(echo)], schedules=list(schedules))


def test_declared_schedules_are_created_updated_and_retired(sqlite_url: str) -> None:
    clock = FakeClock(START)
    v1 = _declared(
        Schedule("morning", cron="0 9 * * *", input={"v": 1}),
        Schedule("gone-soon", every=600, enabled=False),
    )
    with TestApp([v1], url=sqlite_url, clock=clock) as t:
        infos = {i.name: i for i in t.app.schedules.list()}
        assert infos["morning"].declared and infos["morning"].enabled
        assert not infos["gone-soon"].enabled
        t.app.schedules.disable("morning")  # a run-time choice survives restarts
        t.app.schedules.enable("gone-soon")

    clock.advance(hours=1)
    v2 = _declared(Schedule("morning", cron="0 10 * * *", input={"v": 2}))
    with TestApp([v2], url=sqlite_url, clock=clock) as t:
        morning = t.app.schedules.get("morning")
        assert morning.cron == "0 10 * * *" and morning.input == {"v": 2}
        assert not morning.enabled
        retired = t.app.schedules.get("gone-soon")
        assert not retired.enabled and not retired.declared
        kinds = schedule_events(t)
        assert kinds == [
            (
                "schedule_toggled",
                {
                    "name": "gone-soon",
                    "workflow": "daily",
                    "enabled": False,
                    "at": "2026-01-05T09:30:00Z",
                },
            )
        ]
        t.app.schedules.delete("gone-soon")
        t.app.schedules.enable("morning")

    other = Workflow("other", [step(echo)])
    with TestApp([other], url=sqlite_url, clock=clock) as t:
        # an app that does not register "daily" leaves its schedules alone
        assert t.app.schedules.get("morning").declared
        assert t.app.schedules.get("morning").enabled


def test_declared_schedule_keeps_its_missed_tick_across_a_restart(sqlite_url: str) -> None:
    clock = FakeClock(START)
    wf = _declared(Schedule("morning", cron="0 9 * * *"))
    with TestApp([wf], url=sqlite_url, clock=clock) as t:
        assert t.app.schedules.get("morning").next_run_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    clock.advance(hours=2)  # down over 09:00
    with TestApp([wf], url=sqlite_url, clock=clock) as t:
        t.run_until_idle()
        [run] = runs_of(t, "morning")
        assert run.schedule_tick_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_name_declared_twice_is_an_error() -> None:
    a = Workflow("a", [step(echo)], schedules=[Schedule("same", every=60)])
    b = Workflow("b", [step(echo)], schedules=[Schedule("same", every=60)])
    app = Durable("memory://", [a, b])
    try:
        with pytest.raises(DefinitionError, match="declared twice"):
            app.schedules.list()
    finally:
        app.close()


# ---- exactly once, by storage ----------------------------------------------------------


def test_two_apps_on_one_file_fire_each_tick_once(sqlite_url: str) -> None:
    clock = FakeClock(START)
    with (
        TestApp([REPORT], url=sqlite_url, clock=clock) as a,
        TestApp([REPORT], url=sqlite_url, clock=clock) as b,
    ):
        a.app.schedules.create("fast", "report", every=1, catch_up="all")
        sa, sb = a.app.schedules.scheduler(), b.app.schedules.scheduler()
        for _ in range(10):
            clock.advance(seconds=1)
            sa.run_once()
            sb.run_once()
        ticks = [r.schedule_tick_at for r in runs_of(a, "fast")]
        assert len(ticks) == 10 and len(set(ticks)) == 10


def test_a_tick_already_recorded_is_not_fired_again(t: TestApp) -> None:
    t.app.schedules.create("m", "report", every=60)
    t.advance(seconds=60)
    assert len(runs_of(t, "m")) == 1
    storage: Any = t.app.storage
    with storage._tx() as tx:  # set the schedule back, as a lost update would
        tx.run(
            "advance_schedule",
            {
                "name": "m",
                "expected": int((START.timestamp() + 120) * 1000),
                "next_run_at": int((START.timestamp() + 60) * 1000),
                "now": 0,
            },
        )
    t.run_until_idle()
    assert len(runs_of(t, "m")) == 1  # the fire record's unique key refused it


# ---- bad input: clear errors, nothing stored ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"cron": "0 25 * * *"}, CronError, "field 2 (hour)"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Base"}, TimezoneError, "Mars/Base"),
        ({"every": 0}, DefinitionError, "positive"),
        ({"every": -5}, DefinitionError, "positive"),
        ({"every": 0.2}, DefinitionError, "at least 1"),
        ({}, DefinitionError, "exactly one of cron= or every="),
        ({"cron": "@daily", "every": 60}, DefinitionError, "exactly one"),
        ({"every": 60, "input": {"f": object()}}, SerializationError, "$.f"),
        ({"every": 60, "catch_up": "some"}, DefinitionError, "catch_up"),
        ({"every": 60, "overlap": "queue"}, DefinitionError, "overlap"),
        ({"every": 60, "priority": "high"}, DefinitionError, "priority"),
    ],
)
def test_bad_create_says_why_and_stores_nothing(
    t: TestApp, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as info:
        t.app.schedules.create("bad", "report", **kwargs)
    assert words in str(info.value)
    assert isinstance(info.value, DurableError)
    assert t.app.schedules.list() == []


def test_other_bad_input(t: TestApp) -> None:
    s = t.app.schedules
    with pytest.raises(WorkflowNotFoundError, match="nope"):
        s.create("x", "nope", every=60)
    s.create("x", "report", every=60)
    with pytest.raises(ScheduleExistsError, match="already exists"):
        s.create("x", "report", cron="@daily")
    assert s.get("x").every_seconds == 60
    for call in (s.get, s.delete, s.enable, s.disable, s.trigger, s.next_fire_times):
        with pytest.raises(ScheduleNotFoundError, match="no schedule named 'y'"):
            call("y")
    with pytest.raises(ScheduleNotFoundError):
        s.update("y", every=5)
    with pytest.raises(DurableError, match="timezone-aware"):
        s.next_fire_times("x", after=datetime(2026, 1, 1))
    with pytest.raises(DurableError, match="cannot change enabled"):
        s.update("x", enabled=False)
    with pytest.raises(CronError):
        s.update("x", cron="61 * * * *")
    with pytest.raises(DurableError, match="n must be"):
        s.next_fire_times("x", 0)
    assert s.get("x").every_seconds == 60 and s.get("x").cron is None


def test_bad_declaration_fails_at_definition_time() -> None:
    with pytest.raises(CronError, match="field 5"):
        Schedule("x", cron="0 9 * * FUNDAY")
    with pytest.raises(DefinitionError, match="non-empty name"):
        Schedule("", every=60)


def test_advance_is_one_jump_unless_walked_tick_by_tick(t: TestApp) -> None:
    t.app.schedules.create("hourly", "report", cron="@hourly")  # catch_up="latest"
    t.advance(hours=2)  # 08:30 -> 10:30 in one jump: the 09:00 and 10:00 ticks are one run
    assert [r.schedule_tick_at.hour for r in runs_of(t, "hourly")] == [10]
    t.advance(hours=3, step_seconds=600)  # 10:30 -> 13:30 in 10-minute steps: every tick
    assert [r.schedule_tick_at.hour for r in runs_of(t, "hourly")] == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="step_seconds"):
        t.advance(hours=1, step_seconds=0)
