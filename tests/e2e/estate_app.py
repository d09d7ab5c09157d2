"""Objects the estate CLI tests point ``--app`` at (database from ``DURABLE_CLI_TEST_URL``)."""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette

api = Starlette()  # a web application, not a Durable app
answer = 42


def not_an_app() -> dict[str, int]:
    return {"x": 1}


def __getattr__(name: str) -> Any:
    if name == "client":  # an app without workflows: starts runs by name
        from durable import Durable

        return Durable(os.environ["DURABLE_CLI_TEST_URL"], poll_interval_seconds=0.1)
    raise AttributeError(name)
