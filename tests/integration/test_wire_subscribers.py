"""Real ``redis-cli`` and ``psql`` subscribers read the documented JSON messages.

Each test runs a workflow on a cross-process bus while the command-line client
listens on the documented channel names, then checks every message it printed
against docs/event-message.schema.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from durable import Workflow, step
from durable.testing import TestApp
from durable.wait import wait_for_input
from tests.integration.test_pubsub_backends import redis_url

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "event-message.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
NOTIFICATION = re.compile(
    r'^Asynchronous notification "(?P<channel>.*?)" with payload "(?P<payload>.*)" '
    r"received from server process with PID \d+\.$"
)


def greet(name: str) -> str:
    return f"hello {name}"


def ask(ctx: Any) -> Any:
    return wait_for_input("manager", prompt="é" * 5000)  # > 8000 bytes once encoded


GREET = Workflow("greet", [step(greet)])
ASK = Workflow("ask", [step(ask)])


def _valid(message: dict[str, Any]) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(message)]
    assert not errors, (message.get("kind"), errors)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") or os.environ.get("DURABLE_REQUIRE_SERVICES"):
            pytest.fail(f"{tool} is not installed but CI requires this test")
        pytest.skip(f"{tool} is not installed")
    return path


class _Lines:
    """The stdout lines of a subprocess, read by a thread (never blocks the test)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._q: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))

    def next(self, timeout: float = 10.0) -> str:
        return self._q.get(timeout=timeout)


@pytest.fixture
def instance() -> str:
    return f"wire{os.getpid()}x{time.monotonic_ns() % 10**9}"


@pytest.fixture
def redis_cli() -> Iterator[list[_Lines]]:
    readers: list[_Lines] = []
    yield readers
    for reader in readers:
        reader.proc.kill()
        reader.proc.wait(10)
        reader.thread.join(10)
        assert reader.proc.stdout is not None
        reader.proc.stdout.close()


def _redis_subscribe(readers: list[_Lines], url: str, channels: list[str]) -> _Lines:
    cmd = [_need("redis-cli"), "-u", url, "SUBSCRIBE", *channels]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    lines = _Lines(proc)
    readers.append(lines)
    confirmed = 0
    while confirmed < len(channels):  # "subscribe", channel, count, for each channel
        if lines.next() == "subscribe":
            confirmed += 1
    return lines


def _redis_messages(lines: _Lines, n: int) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    while len(out) < n:
        if lines.next() == "message":
            channel = lines.next()
            out.append((channel, json.loads(lines.next())))
    return out


def test_redis_cli_subscribe_reads_the_documented_json(
    redis_cli: list[_Lines], instance: str
) -> None:
    url = redis_url()
    workflows = f"durable:{instance}:workflows"
    inputs = f"durable:{instance}:inputs"
    everything = _redis_subscribe(redis_cli, url, [workflows, inputs])
    with TestApp([GREET, ASK], name=instance, pubsub=url) as t:
        bus: Any = t.app.pubsub.server
        run_id = t.app.start(GREET, "ada")
        assert bus.flush()  # workflow_started went out before the run's own subscriber
        own = _redis_subscribe(redis_cli, url, [f"durable:{instance}:workflow:{run_id}"])
        t.run_until_idle()
        asked = t.app.start(ASK, {})
        t.run_until_idle()
        assert bus.flush()
        seen = _redis_messages(everything, 7)
        mine = _redis_messages(own, 4)

    for channel, message in seen + mine:
        _valid(message)
        assert message["topic"] == channel and message["instance"] == instance
    assert [
        (c, m["kind"], m["payload"].get("workflow_id", m["payload"]["id"])) for c, m in seen
    ] == [
        (workflows, "workflow_started", run_id),
        (workflows, "workflow_resumed", run_id),
        (workflows, "workflow_completed", run_id),
        (workflows, "workflow_started", asked),
        (workflows, "workflow_resumed", asked),
        (inputs, "input_requested", asked),
        (workflows, "workflow_waiting", asked),
    ]
    assert seen[2][1]["payload"]["status"] == "completed"
    assert seen[5][1]["payload"]["prompt"] == "é" * 5000  # Redis has no size limit
    assert [m["kind"] for _, m in mine] == [
        "workflow_resumed",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]


def _psql_listen(pg_url: str, channels: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [_need("psql"), "-X", "-q", "-At", pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None
    for channel in channels:
        proc.stdin.write(f'LISTEN "{channel}";\n')
    proc.stdin.write("SELECT 'listening';\n")
    proc.stdin.flush()
    return proc


def _psql_finish(proc: subprocess.Popen[str], extra_sql: str = "") -> list[str]:
    assert proc.stdin is not None
    out, _ = proc.communicate(f"SELECT 1;\n{extra_sql}\\q\n", timeout=30)
    return out.splitlines()


def _notifications(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for line in lines:
        match = NOTIFICATION.match(line)
        if match:
            out.append((match["channel"], json.loads(match["payload"])))
    return out


def test_psql_listen_reads_the_documented_json_and_large_payloads_by_reference(
    pg_url: str, instance: str
) -> None:
    long_instance = instance + "-with-a-rather-long-name"
    with TestApp([GREET, ASK], url=pg_url, name=long_instance, pubsub="postgres") as t:
        run_id = t.app.start(GREET, "ada")
        run_topic = f"durable:{long_instance}:workflow:{run_id}"
        assert len(run_topic.encode()) > 63
        # the documented rule for long topics, computed here from the docs, not the code
        run_channel = "durable:h:" + hashlib.sha256(run_topic.encode()).hexdigest()[:40]
        workflows = f"durable:{long_instance}:workflows"
        inputs = f"durable:{long_instance}:inputs"
        bus: Any = t.app.pubsub.server
        assert bus.flush()  # workflow_started went out before psql listens
        proc = _psql_listen(pg_url, [workflows, inputs, run_channel])
        _wait_for_line(proc, "listening")
        t.run_until_idle()
        asked = t.app.start(ASK, {})
        t.run_until_idle()
        assert bus.flush()
        lines = _psql_finish(proc)
        got = _notifications(lines)
        refs = [m["payload_ref"] for _, m in got if "payload_ref" in m]
        assert len(refs) == 1  # input_requested on the inputs topic (ASK's own topic: not followed)
        bodies = [
            json.loads(line)
            for line in _psql_finish(
                _psql_listen(pg_url, []),
                "".join(
                    f"SELECT body FROM durable.pubsub_payloads WHERE id = {r};\n" for r in refs
                ),
            )
            if line.startswith("{")
        ]

    for channel, message in got:
        _valid(message)
        assert message["instance"] == long_instance
        assert channel == (run_channel if message["topic"] == run_topic else message["topic"])
    on_workflows = [m["kind"] for _, m in got if m["topic"] == workflows]
    assert on_workflows == [
        "workflow_resumed",
        "workflow_completed",
        "workflow_started",
        "workflow_resumed",
        "workflow_waiting",
    ]
    on_run = [m["kind"] for _, m in got if m["topic"] == run_topic]
    assert on_run == [
        "workflow_resumed",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert len(bodies) == 1
    for body in bodies:
        _valid(body)
        assert body["kind"] == "input_requested" and body["payload"]["workflow_id"] == asked
        assert body["payload"]["prompt"] == "é" * 5000


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() == text:
            return
    raise AssertionError(f"psql never printed {text!r}")


def test_the_sqlite_outbox_rows_carry_the_same_json(tmp_path: Path, instance: str) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path}/wire.db"
    with TestApp([GREET], url=url, name=instance, pubsub="sqlite") as t:
        run_id = t.app.start(GREET, "ada")
        t.run_until_idle()
        bus: Any = t.app.pubsub.server
        assert bus.flush()
        with sqlite3.connect(f"{tmp_path}/wire.db") as conn:
            bodies = [json.loads(r[0]) for r in conn.execute("SELECT body FROM pubsub_outbox")]
        conn.close()
    for message in bodies:
        _valid(message)
    run_topic = f"durable:{instance}:workflow:{run_id}"
    assert [m["kind"] for m in bodies if m["topic"] == run_topic] == [
        "workflow_started",
        "workflow_resumed",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
