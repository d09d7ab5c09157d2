"""The app the CLI tests drive: ``--app e2e.cli_app:app``, database from
``DURABLE_CLI_TEST_URL``."""

from __future__ import annotations

import logging
import os
from typing import Any

from durable import Durable, Workflow, step
from durable.control import call_workflow
from durable.wait import wait_for_choice, wait_for_event

log = logging.getLogger("cli_app")
log.setLevel(logging.INFO)


def greet(name: Any) -> str:
    print(f"greeting {name}")
    log.info("greeted %s", name)
    return f"hello {name}"


def explode(_: Any) -> None:
    raise ValueError("boom on purpose")


def choose(ctx: Any) -> Any:
    return {"size": wait_for_choice("size", choices=["small", "large"], prompt="Which size?")}


def listen(ctx: Any) -> Any:
    return {"got": wait_for_event("go")}


def parent_step(ctx: Any) -> Any:
    return {"child": call_workflow("greet", "kid")}


GREET = Workflow("greet", [step(greet)])
EXPLODE = Workflow("explode", [step(explode)])
CHOOSE = Workflow("choose", [step(choose)])
LISTEN = Workflow("listen", [step(listen)])
PARENT = Workflow("parent", [step(parent_step)])

WORKFLOWS = [GREET, EXPLODE, CHOOSE, LISTEN, PARENT]


def build(url: str, **options: Any) -> Durable:
    options.setdefault("poll_interval_seconds", 0.1)
    options.setdefault("heartbeat_interval_seconds", 0.5)
    options.setdefault("stale_timeout_seconds", 5.0)
    return Durable(url, workflows=WORKFLOWS, **options)


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use, so importing this module opens nothing
        return build(os.environ["DURABLE_CLI_TEST_URL"])
    raise AttributeError(name)
