"""``durable events``: a run's history then its live events, or every run's events live."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..app import Durable
from ..errors import PubSubNotConfiguredError
from ..pubsub import Event, Subscription
from ..pubsub.history import TERMINAL_KINDS, event_key, run_history
from .common import app_of, json_option, resolve

#: how often a followed run's history is read again from the database
_RESCAN_SECONDS = 1.0


class _Enough(Exception):
    """--count events were printed."""


class _Printer:
    def __init__(self, as_json: bool, count: int | None) -> None:
        self.as_json = as_json
        self.count = count
        self.printed = 0
        self.seen: set[tuple[str, str]] = set()

    def show(self, event: Event, *, once: bool = False) -> None:
        """Print an event (``once``: unless an event with its key was printed)."""
        if once:
            key = event_key(event)
            if key in self.seen:
                return
            self.seen.add(key)
        _print_event(event.to_dict(), self.as_json)
        self.printed += 1
        if self.count is not None and self.printed >= self.count:
            raise _Enough


@click.command()
@click.argument("execution_id", required=False)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    type=click.Choice(["workflows", "inputs", "schedules"]),
    help="topics to follow without an ID (default: all three)",
)
@click.option("--count", "-n", default=None, type=click.IntRange(1), help="stop after N events")
@click.option("--timeout", default=None, type=float, help="stop after this many seconds")
@json_option
@click.pass_context
def events(
    ctx: click.Context,
    execution_id: str | None,
    topics: tuple[str, ...],
    count: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Print lifecycle events: of one run (ID), its history first, then live until
    it ends (at once for a finished run); without ID, every run's events live.

    A run's history comes from the database, so it is complete whatever bus the
    app uses. Live events of workers in other processes arrive through a
    cross-process bus (PostgreSQL, SQLite or Redis pub/sub on the app); without
    one, the database is read again every second instead."""
    app = app_of(ctx)
    printer = _Printer(as_json, count)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        if execution_id:
            _follow_run(app, resolve(app, execution_id), printer, deadline)
        else:
            _follow_topics(app, topics, printer, deadline, as_json)
    except (KeyboardInterrupt, _Enough):
        pass


def _subscribe(app: Durable, topic: str) -> Subscription | None:
    try:
        return app.pubsub.subscribe(topic, buffer=10_000)
    except PubSubNotConfiguredError:
        return None


def _follow_run(app: Durable, run_id: str, printer: _Printer, deadline: float | None) -> None:
    topic = app.pubsub.workflow_topic(run_id)
    sub = _subscribe(app, topic)  # first: nothing falls between the history and the live events
    try:
        history, ended = run_history(app.query, topic, run_id)
        for event in history:
            printer.show(event, once=True)
        next_scan = time.monotonic() + _RESCAN_SECONDS
        while not ended:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            wait = min(max(0.0, next_scan - now), 0.25)
            live = sub.get(wait) if sub is not None else None
            if sub is None:
                time.sleep(wait)
            if live is not None:
                printer.show(live, once=True)
                ended = live.kind in TERMINAL_KINDS
            elif time.monotonic() >= next_scan:  # live events may be missed: read it again
                history, ended = run_history(app.query, topic, run_id)
                for event in history:
                    printer.show(event, once=True)
                next_scan = time.monotonic() + _RESCAN_SECONDS
    finally:
        if sub is not None:
            app.pubsub.unsubscribe(sub)


def _follow_topics(
    app: Durable,
    topics: tuple[str, ...],
    printer: _Printer,
    deadline: float | None,
    as_json: bool,
) -> None:
    ps = app.pubsub
    pick = {
        "workflows": ps.workflows_topic,
        "inputs": ps.inputs_topic,
        "schedules": ps.schedules_topic,
    }
    names = [pick[t]() for t in (topics or ("workflows", "inputs", "schedules"))]
    subs = [ps.subscribe(name, buffer=10_000) for name in names]
    if not as_json:
        click.echo(f"following {', '.join(names)} (Ctrl-C to stop)", err=True)
    try:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return
            got = False
            for sub in subs:
                event = sub.get(0.05 if len(subs) > 1 else 0.25)
                if event is not None:
                    got = True
                    printer.show(event)
            if not got and all(s.closed for s in subs):
                return
    finally:
        for sub in subs:
            ps.unsubscribe(sub)


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event, ensure_ascii=False, default=str))
        return
    p = event["payload"]
    run_id = p.get("workflow_id") or p.get("id") or ""
    parts = [event["kind"], str(run_id)]
    for key in ("workflow_name", "step_name", "input_name", "name", "status", "attempt"):
        if p.get(key) is not None:
            parts.append(f"{key.removesuffix('_name')}={p[key]}")
    if p.get("error"):
        err = p["error"]
        parts.append(f"error={err.get('type')}: {err.get('message')}")
    click.echo(" ".join(parts))
