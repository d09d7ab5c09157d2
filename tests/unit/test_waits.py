"""Waiting primitives on a FakeClock: sleep, timers, events, inputs, timeouts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest

from durable import Retry, Workflow, step
from durable.errors import (
    ExecutionNotFoundError,
    InputAlreadyProvidedError,
    InputValidationError,
    InvalidStateError,
)
from durable.inputs import Field
from durable.testing import FakeClock, TestApp
from durable.wait import (
    end_of_day,
    next_business_day,
    next_weekday,
    schedule_at,
    sleep,
    wait_for_all,
    wait_for_any,
    wait_for_approval,
    wait_for_choice,
    wait_for_event,
    wait_for_form,
    wait_for_input,
    wait_for_text,
)


def one_step(fn, **options) -> Workflow:
    return Workflow(fn.__name__, [step(fn, **options)])


def test_sleep_holds_nothing_and_wakes_on_time(url):
    entries = []

    def napper(x):
        entries.append(x)
        sleep(3600)
        return "rested"

    wf = one_step(napper)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "waiting" and e.locked_by is None
        assert e.scheduled_at == t.clock.now() + timedelta(hours=1)
        assert t.advance(3599) == 0
        t.advance(1)
        assert t.app.get_execution(run_id).result == "rested"
        assert entries == [1, 1]  # the code before the wait ran again on wake-up
        kinds = t.kinds(run_id)
        assert kinds.count("workflow_resumed") == 2 and "workflow_waiting" in kinds
        waiting = next(e for e in t.events_of(run_id) if e.kind == "workflow_waiting").payload
        assert waiting["waiting_for"] == [{"type": "sleep", "until": "2026-01-05T10:00:00Z"}]


def test_timers_fire_even_if_no_worker_ran_at_the_deadline(url):
    def napper(x):
        sleep(60)
        return "ok"

    wf = one_step(napper)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.clock.advance(days=30)  # nobody ran for a month
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "completed"


def test_schedule_at_and_calendar_helpers(url):
    clock = FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # a Friday

    def until(x):
        schedule_at(next_business_day(time(9, 0), tz="America/New_York"))
        return "monday"

    wf = one_step(until)
    with TestApp([wf], url=url, clock=clock) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        monday_9_ny = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
        assert t.app.get_execution(run_id).scheduled_at == monday_9_ny
        clock.set(monday_9_ny)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == "monday"


def test_calendar_helpers_values(url):
    clock = FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # Friday 10:00 in New York
    seen = {}

    def probe(x):
        seen["next_mon"] = next_weekday("monday", time(8, 0), tz="Europe/Paris")
        seen["next_fri"] = next_weekday(4, time(9, 0), tz="UTC")
        seen["eod"] = end_of_day(tz="America/New_York")
        seen["nbd"] = next_business_day()
        return None

    wf = one_step(probe)
    with TestApp([wf], url=url, clock=clock) as t:
        t.app.start(wf, 1)
        t.run_until_idle()
    assert seen["next_mon"].isoformat() == "2026-11-30T08:00:00+01:00"
    assert seen["next_fri"].isoformat() == "2026-12-04T09:00:00+00:00"  # today 09:00 already passed
    assert seen["eod"].isoformat() == "2026-11-28T00:00:00-05:00"
    assert seen["nbd"].isoformat() == "2026-11-30T09:00:00+00:00"


def test_schedule_at_refuses_naive_datetimes(url):
    def naive(x):
        schedule_at(datetime(2030, 1, 1))

    wf = one_step(naive)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and "timezone-aware" in e.error["message"]


def test_wait_for_event_returns_the_payload(url):
    def waiter(x):
        return wait_for_event("paid")

    wf = one_step(waiter)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        pending = t.app.list_pending_events()
        assert [(p.execution_id, p.event_name, p.workflow_name) for p in pending] == [
            (run_id, "paid", "waiter")
        ]
        assert t.app.send_event(run_id, "paid", {"amount": 5}) is True
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == {"amount": 5}
        assert t.app.list_pending_events() == []


def test_events_sent_early_are_buffered_and_each_consumed_once(url):
    def two_waits(x):
        first = wait_for_event("tick")
        second = wait_for_event("tick")
        return [first, second]

    wf = one_step(two_waits)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        assert t.app.send_event(run_id, "tick", 1) is False  # buffered: nobody waits yet
        assert t.app.send_event(run_id, "tick", 2) is False
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == [1, 2]


def test_send_event_errors(url):
    def waiter(x):
        return wait_for_event("x")

    wf = one_step(waiter)
    with TestApp([wf], url=url) as t:
        with pytest.raises(ExecutionNotFoundError):
            t.app.send_event("missing", "x", 1)
        run_id = t.app.start(wf, 1)
        t.app.cancel(run_id)
        with pytest.raises(InvalidStateError, match="takes no more events"):
            t.app.send_event(run_id, "x", 1)


def test_event_timeout_value_and_timeout_error(url):
    def with_value(x):
        return wait_for_event("never", timeout=60, timeout_value="late")

    def without_value(x):
        return wait_for_event("never", timeout=60)

    a, b = one_step(with_value), one_step(without_value)
    with TestApp([a, b], url=url) as t:
        ra, rb = t.app.start(a, 1), t.app.start(b, 1)
        t.run_until_idle()
        t.advance(60)
        assert t.app.get_execution(ra).result == "late"
        eb = t.app.get_execution(rb)
        assert eb.status == "failed" and eb.error["type"] == "WaitTimeoutError"
        assert "timed out waiting for event 'never'" in eb.error["message"]


def test_a_retry_re_arms_a_timed_out_wait(url):
    def patient(x):
        return wait_for_event("go", timeout=60)

    wf = one_step(patient, retry=Retry(max_attempts=2, base=1))
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.advance(60)  # first attempt times out, the retry is scheduled
        t.advance(1)  # the retry waits again
        assert t.app.get_execution(run_id).status == "waiting"
        t.app.send_event(run_id, "go", "finally")
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == "finally"


def test_wait_for_any_returns_which_event_fired(url):
    def either(x):
        return wait_for_any(["approved", "rejected"], timeout=100)

    wf = one_step(either)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.app.send_event(run_id, "rejected", {"why": "no"})
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == ("rejected", {"why": "no"})


def test_wait_for_all_collects_every_payload(url):
    def both(x):
        return wait_for_all(["a", "b"])

    wf = one_step(both)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.app.send_event(run_id, "b", 2)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status == "waiting"
        t.app.send_event(run_id, "a", 1)
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == {"a": 1, "b": 2}


def test_wait_for_all_timeout_ends_the_wait_for_good(url):
    def both(x):
        return wait_for_all(["a", "b"], timeout=30, timeout_value="partial")

    wf = one_step(both)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.app.send_event(run_id, "a", 1)
        t.advance(30)
        e = t.app.get_execution(run_id)
        assert e.status == "completed" and e.result == "partial"  # not back to waiting


def approve_step(x):
    return wait_for_approval("manager", prompt="Ship it?", timeout=86400, metadata={"amount": 10})


def test_approval_input_flow_and_events(url):
    wf = one_step(approve_step)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [pending] = t.app.list_pending_inputs()
        assert (pending.input_name, pending.input_type, pending.prompt) == (
            "manager",
            "approval",
            "Ship it?",
        )
        assert pending.metadata == {"amount": 10}
        assert pending.spec == {"choices": ["approved", "rejected"]}
        assert pending.timeout_at == t.clock.now() + timedelta(days=1)
        with pytest.raises(InputValidationError, match="'approved' or 'rejected'"):
            t.app.provide_input(run_id, "manager", "maybe")
        assert t.app.get_execution(run_id).status == "waiting"  # still waiting
        t.app.provide_input(run_id, "manager", "approved")
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == "approved"
        inputs = [e for e in t.events if e.topic == t.app.pubsub.inputs_topic()]
        assert [e.kind for e in inputs] == ["input_requested", "input_provided"]
        requested = inputs[0].payload
        assert requested["input_name"] == "manager" and requested["input_type"] == "approval"
        assert requested["prompt"] == "Ship it?" and requested["choices"] == [
            "approved",
            "rejected",
        ]
        assert requested["timeout_at"] == "2026-01-06T09:00:00Z"
        assert "value" not in inputs[1].payload
        assert "input_requested" in t.kinds(run_id) and "input_provided" in t.kinds(run_id)


def test_typed_inputs_validate(url):
    def choose(x):
        return wait_for_choice("size", choices=["S", "M", "L"])

    def text(x):
        return wait_for_text("note")

    def form(x):
        return wait_for_form(
            "details", fields=[Field("qty", "integer"), Field("gift", "boolean", required=False)]
        )

    wfs = [one_step(choose), one_step(text), one_step(form)]
    with TestApp(wfs, url=url) as t:
        rc, rt, rf = (t.app.start(w, 1) for w in wfs)
        t.run_until_idle()
        with pytest.raises(InputValidationError, match="not one of the choices") as choice:
            t.app.provide_input(rc, "size", "XL")
        assert choice.value.errors == {"value": str(choice.value)}
        with pytest.raises(InputValidationError, match="must be a string") as wrong:
            t.app.provide_input(rt, "note", 5)
        assert list(wrong.value.errors) == ["value"]
        with pytest.raises(InputValidationError) as info:
            t.app.provide_input(rf, "details", {"qty": "three", "color": "red"})
        assert info.value.errors == {"qty": "must be an integer", "color": "unknown field"}
        with pytest.raises(InputValidationError, match="qty: is required"):
            t.app.provide_input(rf, "details", {})
        t.app.provide_input(rc, "size", "M")
        t.app.provide_input(rt, "note", "hello")
        t.app.provide_input(rf, "details", {"qty": 3})
        t.run_until_idle()
        assert [t.app.get_execution(r).result for r in (rc, rt, rf)] == ["M", "hello", {"qty": 3}]


def test_exactly_one_of_two_racing_answers_wins(url):
    wf = one_step(approve_step)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        outcomes = []

        def answer(value):
            try:
                t.app.provide_input(run_id, "manager", value)
                outcomes.append(("ok", value))
            except InputAlreadyProvidedError:
                outcomes.append(("refused", value))

        threads = [threading.Thread(target=answer, args=(v,)) for v in ("approved", "rejected")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
        winner = next(v for o, v in outcomes if o == "ok")
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == winner
        with pytest.raises(InvalidStateError, match="takes no more input"):
            t.app.provide_input(run_id, "manager", "approved")


def test_input_given_before_the_wait_is_kept_and_checked(url):
    def late_ask(x):
        sleep(10)
        return wait_for_approval("ok")

    wf = one_step(late_ask)
    with TestApp([wf], url=url) as t:
        good, bad = t.app.start(wf, 1), t.app.start(wf, 2)
        t.app.provide_input(good, "ok", "approved")
        t.app.provide_input(bad, "ok", "perhaps")  # kept as given; checked at the wait
        with pytest.raises(InputAlreadyProvidedError):
            t.app.provide_input(good, "ok", "rejected")
        t.run_until_idle()
        t.advance(10)
        assert t.app.get_execution(good).result == "approved"
        assert t.app.get_execution(bad).status == "waiting"  # the bad early value was refused
        assert [p.execution_id for p in t.app.list_pending_inputs()] == [bad]
        t.app.provide_input(bad, "ok", "rejected")
        t.run_until_idle()
        assert t.app.get_execution(bad).result == "rejected"


def test_input_timeout_value(url):
    def ask(x):
        return wait_for_input("x", timeout=5, timeout_value="default")

    wf = one_step(ask)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        t.advance(5)
        assert t.app.get_execution(run_id).result == "default"
        assert t.app.list_pending_inputs() == []


def test_cancel_wait_ends_the_wait(url):
    def waiter(x):
        return wait_for_event("never", timeout_value="gave up")

    wf = one_step(waiter)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert t.app.cancel_wait(run_id) == 1
        t.run_until_idle()
        assert t.app.get_execution(run_id).result == "gave up"


def test_cancelling_a_waiting_run_cleans_up_inputs_and_events(url):
    def both(x):
        wait_for_any(["a", "b"])
        return wait_for_approval("final")

    def asker(x):
        return wait_for_approval("boss")

    wf, wf2 = one_step(both), one_step(asker)
    with TestApp([wf, wf2], url=url) as t:
        r1, r2 = t.app.start(wf, 1), t.app.start(wf2, 1)
        t.app.send_event(r1, "zzz", 1)  # buffered, never consumed
        t.run_until_idle()
        assert len(t.app.list_pending_events()) == 2 and len(t.app.list_pending_inputs()) == 1
        t.app.cancel(r1)
        t.app.cancel(r2)
        assert t.app.list_pending_events() == [] and t.app.list_pending_inputs() == []
        with pytest.raises(InvalidStateError):
            t.app.provide_input(r2, "boss", "approved")


def test_a_thousand_waiting_runs(url):
    def waiter(x):
        return wait_for_event("go")

    wf = one_step(waiter)
    with TestApp([wf], url=url) as t:
        ids = t.app.start_many(wf, list(range(1000)))
        t.run_until_idle()
        assert t.app.query.status_counts() == {"waiting": 1000}
        for i in ids:
            t.app.send_event(i, "go", i)
        t.run_until_idle()
        assert t.app.query.status_counts() == {"completed": 1000}


def test_wait_outside_a_step_is_a_clear_error():
    with pytest.raises(Exception, match=r"sleep\(\) can only be called inside a step"):
        sleep(1)


def test_a_run_that_times_out_while_waiting_leaves_no_pending_input(url):
    def ask(x):
        return wait_for_approval("boss")

    wf = Workflow("late", [step(ask)], timeout=60)
    with TestApp([wf], url=url) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert len(t.app.list_pending_inputs()) == 1
        t.advance(60)
        e = t.app.get_execution(run_id)
        assert e.status == "failed" and e.error["type"] == "WorkflowTimeoutError"
        assert t.app.list_pending_inputs() == []
