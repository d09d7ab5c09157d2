"""`durable ... | head` exits quietly: a reader that goes away is no error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from durable import Durable
from tests.e2e.cli_app import build
from tests.e2e.cli_support import APP
from tests.support.procs import ROOT


@pytest.fixture
def run_id(sqlite_url: str) -> str:
    app: Durable = build(sqlite_url)
    try:
        for i in range(30):
            app.start("greet", f"n{i}")
        return app.start("greet", "last")
    finally:
        app.close()


def _closed_reader(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``durable args`` with stdout a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write gets EPIPE, as after `head` has read its lines
    env = {**os.environ, "DURABLE_CLI_TEST_URL": url, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    try:
        return subprocess.run(
            [sys.executable, "-m", "durable", "--app", APP, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=60,
            cwd=str(ROOT),
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json"],
        ["status"],
        ["status", "--json"],
        ["inspect", "{run}"],
        ["inspect", "{run}", "--json"],
        ["events", "{run}", "--timeout", "2"],
        ["events", "{run}", "--json", "--timeout", "2"],
        ["pending"],
        ["graph", "greet"],
        ["schedules", "list"],
        ["doctor"],
        ["migrate", "--check"],
        ["--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_a_closed_pipe_is_no_error(sqlite_url: str, run_id: str, args: list[str]) -> None:
    done = _closed_reader(sqlite_url, *[a.replace("{run}", run_id) for a in args])
    assert done.stderr == "", done.stderr
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1), done.returncode
