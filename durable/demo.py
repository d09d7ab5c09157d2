"""The demo behind ``durable demo``: a few workflows on SQLite, followed live."""

from __future__ import annotations

import os
import random
import threading
from typing import Any

import click

from .app import Durable
from .ids import short_id
from .retry import Retry
from .workflow import Workflow, step

_flaky_calls: dict[str, int] = {}


def reserve(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "reserved": True}


def charge(order: dict[str, Any]) -> dict[str, Any]:
    # fails twice per order, then succeeds: the retry waits off the worker
    n = _flaky_calls[order["id"]] = _flaky_calls.get(order["id"], 0) + 1
    if n < 3:
        raise ConnectionError(f"payment gateway timeout (call {n})")
    return {**order, "charge_id": f"ch_{random.randint(1000, 9999)}"}


def ship(order: dict[str, Any]) -> dict[str, Any]:
    if order.get("address") is None:
        raise ValueError("order has no shipping address")
    return {**order, "shipped": True}


ORDER = Workflow(
    "process_order",
    [
        step(reserve),
        step(charge, retry=Retry(max_attempts=4, backoff="exponential", base=0.2)),
        step(ship),
    ],
)

_COLORS = {"completed": "green", "failed": "red", "started": "cyan", "waiting": "yellow"}


def _describe(kind: str, payload: dict[str, Any]) -> str:
    if kind.startswith("step_"):
        extra = ""
        if payload.get("error"):
            extra = f"  {payload['error']['type']}: {payload['error']['message']}"
        if payload.get("next_retry_at"):
            extra += f"  (retry at {payload['next_retry_at']})"
        return f"{short_id(payload['workflow_id'])}   {payload['step_name']:<8} attempt {payload['attempt']}{extra}"
    return f"{short_id(payload['id'])} {payload['workflow_name']} [{payload['status']}]"


def _follow(app: Durable, run_id: str, lock: threading.Lock) -> None:
    """Print one run's events (its topic carries workflow and step events) until it ends."""
    sub = app.subscribe(app.pubsub.workflow_topic(run_id))
    for event in sub:
        color = next((c for k, c in _COLORS.items() if k in event.kind), None)
        with lock:
            click.secho(f"{event.kind:<20} {_describe(event.kind, event.payload)}", fg=color)
        if event.kind in ("workflow_completed", "workflow_failed", "workflow_cancelled"):
            break
    app.pubsub.unsubscribe(sub)


DEFAULT_DB = "sqlite:///durable-demo.db"


def demo_app() -> Durable:
    """The demo's app, for the other commands: ``durable --app durable.demo:demo_app
    list`` (database from ``DURABLE_DEMO_DB``, ``durable-demo.db`` by default)."""
    return Durable(os.environ.get("DURABLE_DEMO_DB", DEFAULT_DB), workflows=[ORDER], name="demo")


def next_steps(url: str, run_id: str) -> list[str]:
    """Commands that open the demo's database (printed at the end of the demo)."""
    env = "" if url == DEFAULT_DB else f"DURABLE_DEMO_DB={url} "
    cli = f"{env}durable --app durable.demo:demo_app"
    return [
        f"{cli} list                  # the runs above",
        f"{cli} inspect {short_id(run_id)}    # one run: steps, errors, logs",
        f"{cli} dashboard             # the web dashboard on http://127.0.0.1:8080/",
    ]


def run_demo(url: str) -> None:
    app = Durable(url, workflows=[ORDER], name="demo", poll_interval_seconds=0.1)
    click.echo(f"Durable demo on {url}: two orders, one retries and completes, one fails.\n")
    lock = threading.Lock()
    runs = [
        app.start(ORDER, {"id": "o-1", "address": "1 Main St"}, scheduled_at=None),
        app.start(ORDER, {"id": "o-2", "address": None}),
    ]
    followers = [threading.Thread(target=_follow, args=(app, r, lock), daemon=True) for r in runs]
    for f in followers:
        f.start()
    app.start_worker({"default": 4})
    for f in followers:
        f.join(30)
    for run_id in runs:
        e = app.get_execution(run_id)
        click.echo(f"\n{e.workflow_name} {short_id(e.id)}: {e.status.value}")
        for s in app.list_steps(run_id):
            err = f"  {s.error['type']}: {s.error['message']}" if s.error else ""
            click.echo(
                f"  {s.step_name:<8} attempt {s.attempt} {s.status.value:<9} {s.duration_ms} ms{err}"
            )
    app.close()
    click.echo("\nNext steps (the runs stay in the database):")
    for line in next_steps(url, runs[-1]):
        click.echo(f"  {line}")
