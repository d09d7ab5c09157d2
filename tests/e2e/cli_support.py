"""Run ``durable`` as a real subprocess against the test app (tests/e2e/cli_app.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from tests.support.procs import ROOT

APP = "tests.e2e.cli_app:app"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def durable(url: str, *args: str, app: str | None = APP, timeout: float = 60) -> Result:
    env = {**os.environ, "DURABLE_CLI_TEST_URL": url, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env.pop("DURABLE_APP", None)
    prefix = ["--app", app] if app else []
    proc = subprocess.run(
        [sys.executable, "-m", "durable", *prefix, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
