"""Per-step log capture: what steps log and print is kept with each attempt."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import pytest

from durable import Retry, Workflow, parallel, step
from durable.errors import ConfigurationError
from durable.logcapture import LogCapture, _StreamProxy
from durable.testing import TestApp

log = logging.getLogger("tests.steps")


@pytest.fixture(autouse=True)
def _info_logger() -> Any:
    log.setLevel(logging.INFO)
    yield
    log.setLevel(logging.NOTSET)


def _logs(t: TestApp, run_id: str, step_name: str) -> list[list[dict[str, Any]]]:
    return [s.logs for s in t.app.list_steps(run_id) if s.step_name == step_name]


def test_print_and_logging_are_captured_per_step(capsys: pytest.CaptureFixture[str]) -> None:
    def first(n: int) -> int:
        print("hello from first")
        log.info("working on %s", n)
        return n + 1

    def second(n: int) -> int:
        print("oops", file=sys.stderr)
        log.warning("careful")
        return n

    wf = Workflow("capture", [step(first), step(second)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [first_logs] = _logs(t, run_id, "first")
        [second_logs] = _logs(t, run_id, "second")
    assert [(e["source"], e["level"], e["message"]) for e in first_logs] == [
        ("stdout", "INFO", "hello from first"),
        ("logging", "INFO", "working on 1"),
    ]
    assert first_logs[1]["logger"] == "tests.steps"
    assert first_logs[0]["logger"] is None
    assert first_logs[0]["time"].endswith("Z")
    assert [(e["source"], e["message"]) for e in second_logs] == [
        ("stderr", "oops"),
        ("logging", "careful"),
    ]
    out, err = capsys.readouterr()
    assert "hello from first" not in out  # captured, not printed (no passthrough)
    assert "oops" not in err


def test_code_outside_steps_is_untouched(capsys: pytest.CaptureFixture[str]) -> None:
    def noisy(n: int) -> int:
        print("inside")
        return n

    wf = Workflow("outside", [step(noisy)])
    before = sys.stdout
    with TestApp([wf]) as t:
        t.app.start(wf, 1)
        print("before the run")
        t.run_until_idle()
        print("after the run")
    assert sys.stdout is before
    assert not isinstance(sys.stdout, _StreamProxy)
    out, _ = capsys.readouterr()
    assert out == "before the run\nafter the run\n"


def test_passthrough_also_prints(capsys: pytest.CaptureFixture[str]) -> None:
    def noisy(n: int) -> int:
        print("shown and kept")
        return n

    wf = Workflow("through", [step(noisy)])
    with TestApp([wf], log_capture=LogCapture(passthrough=True)) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [logs] = _logs(t, run_id, "noisy")
    assert [e["message"] for e in logs] == ["shown and kept"]
    assert "shown and kept" in capsys.readouterr().out


def test_switched_off_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    def chatty(n: int) -> int:
        log.info("info line")
        log.error("error line")
        print("printed")
        return n

    wf = Workflow("levels", [step(chatty)])
    with TestApp([wf], log_capture=False) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        assert _logs(t, run_id, "chatty") == [[]]
    assert "printed" in capsys.readouterr().out
    with TestApp([wf], log_capture=LogCapture(level="ERROR", stdout=False)) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [logs] = _logs(t, run_id, "chatty")
    assert [(e["level"], e["message"]) for e in logs] == [("ERROR", "error line")]
    assert "printed" in capsys.readouterr().out


def test_bounded_and_truncation_marked() -> None:
    def flood(n: int) -> int:
        print("x" * 50)
        for i in range(20):
            print(f"line {i}")
        return n

    wf = Workflow("flood", [step(flood)])
    config = LogCapture(max_entries=5, max_message_chars=10)
    with TestApp([wf], log_capture=config) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [logs] = _logs(t, run_id, "flood")
    assert len(logs) == 5
    assert logs[0]["truncated"] is True and logs[0]["message"].startswith("x" * 10)
    assert len(logs[0]["message"]) < 15
    assert [e["message"] for e in logs[1:4]] == ["line 0", "line 1", "line 2"]
    assert logs[4]["truncated"] is True
    assert "17 more entries were not kept" in logs[4]["message"]


def test_each_attempt_and_compensation_keep_their_own_logs() -> None:
    calls = {"n": 0}

    def reserve(n: int) -> int:
        print("reserving")
        return n

    def release(n: int) -> int:
        print(f"releasing {n}")
        return n

    def flaky(n: int) -> int:
        calls["n"] += 1
        print(f"attempt {calls['n']}")
        raise RuntimeError("down")

    wf = Workflow(
        "saga",
        [
            step(reserve, compensate=release),
            step(flaky, retry=Retry(max_attempts=2, backoff="constant", base=1.0, jitter=False)),
        ],
    )
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 7)
        t.run_until_idle()
        t.advance(seconds=5)
        assert t.app.get_execution(run_id).status.value == "compensated"
        attempts = _logs(t, run_id, "flaky")
        comp = _logs(t, run_id, "reserve.compensate")
    assert [[e["message"] for e in a] for a in attempts] == [["attempt 1"], ["attempt 2"]]
    assert [[e["message"] for e in a] for a in comp] == [["releasing 7"]]


def test_isolation_between_threads() -> None:
    barrier = threading.Barrier(3, timeout=10)

    def make(tag: str) -> Any:
        def body(ctx: Any) -> str:
            barrier.wait()
            for i in range(200):
                print(f"{tag} {i}")
                log.info("%s log %d", tag, i)
            return tag

        body.__name__ = f"worker_{tag}"
        return body

    wf = Workflow("threads", [parallel([step(make(t)) for t in "abc"])])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        assert t.app.get_execution(run_id).status.value == "completed"
        for tag in "abc":
            [logs] = _logs(t, run_id, f"worker_{tag}")
            assert len(logs) == 400
            assert all(e["message"].startswith(f"{tag} ") for e in logs)


def test_isolation_between_asyncio_tasks() -> None:
    async def one(ctx: Any) -> str:
        for i in range(50):
            print(f"one {i}")
            await asyncio.sleep(0)
        return "one"

    async def two(ctx: Any) -> str:
        for i in range(50):
            log.info("two %d", i)
            await asyncio.sleep(0)
        return "two"

    wf = Workflow("tasks", [parallel([step(one), step(two)])])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, None)
        t.run_until_idle()
        [one_logs] = _logs(t, run_id, "one")
        [two_logs] = _logs(t, run_id, "two")
    assert [e["message"] for e in one_logs] == [f"one {i}" for i in range(50)]
    assert [e["message"] for e in two_logs] == [f"two {i}" for i in range(50)]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="level"):
        LogCapture(level="LOUD")
    with pytest.raises(ConfigurationError, match="max_entries"):
        LogCapture(max_entries=0)
    with pytest.raises(ConfigurationError, match="log_capture"):
        LogCapture.from_option("yes")  # type: ignore[arg-type]


def test_nul_and_partial_lines_are_stored() -> None:
    def odd(n: int) -> int:
        print("no newline", end="")
        print(" then\x00more")
        print("tail", end="")
        return n

    wf = Workflow("odd", [step(odd)])
    with TestApp([wf]) as t:
        run_id = t.app.start(wf, 1)
        t.run_until_idle()
        [logs] = _logs(t, run_id, "odd")
    assert [e["message"] for e in logs] == ["no newline then\ufffdmore", "tail"]
