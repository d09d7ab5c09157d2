"""Helpers for testing workflows: no worker thread, no database server, no real time.

>>> from durable import Workflow, step
>>> from durable.testing import TestApp
>>> wf = Workflow("greet", [step(lambda name: f"hello {name}", name="greet")])
>>> with TestApp([wf]) as t:
...     run_id = t.app.start(wf, "ada")
...     t.run_until_idle()
...     t.app.get_execution(run_id).result
'hello ada'
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .app import Durable
from .models import Execution
from .pubsub import Event, MemoryBus
from .queue.worker import Worker
from .workflow import Workflow

__all__ = ["FakeClock", "RecordingBus", "TestApp", "run_until_idle"]


class RecordingBus(MemoryBus):
    """An in-process bus that also keeps every published event, in order."""

    def __init__(self, name: str = "durable.pubsub") -> None:
        super().__init__(name)
        self.published: list[Event] = []

    def has_subscribers(self, topic: str) -> bool:
        return True  # it records everything

    def publish(self, topic: str, event: Event) -> None:
        self.published.append(event)
        super().publish(topic, event)


class FakeClock:
    """A clock that only moves when told to. ``sleep`` returns at once."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._ms = int(start.timestamp() * 1000)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._ms

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        return False

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> None:
        total = seconds + minutes * 60 + hours * 3600 + days * 86400
        if total < 0:
            raise ValueError("a FakeClock does not go backwards")
        with self._lock:
            self._ms += int(total * 1000)

    def set(self, when: datetime) -> None:
        with self._lock:
            self._ms = int(when.timestamp() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=UTC)


class TestApp:
    """A Durable app on a FakeClock, driven by hand.

    ``run_until_idle()`` runs everything runnable at the current fake time (in
    this thread); ``advance(hours=72)`` moves time on and runs what came due.
    ``events`` collects every event published on the workflows, inputs and
    schedules topics and on each run's own topic.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        workflows: Iterable[Workflow] = (),
        url: str = "memory://",
        *,
        clock: FakeClock | None = None,
        **options: Any,
    ) -> None:
        self.clock = clock or FakeClock()
        self.bus = RecordingBus()
        options.setdefault("pubsub", self.bus)
        self.app = Durable(url, workflows, clock=self.clock, **options)
        self._worker = self.app.worker()

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Run every runnable execution until none is left at the current time."""
        return _drain(self._worker, max_rounds)

    def advance(
        self,
        seconds: float = 0,
        *,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        step_seconds: float | None = None,
    ) -> int:
        """Move the clock on, then run what came due (sleeps, timeouts, retries).

        One jump by default: two schedule ticks inside it are one missed-tick
        catch-up, as for a worker that was down that long. With ``step_seconds``
        the clock walks in steps of that size and runs what came due after each,
        as a worker that was up all along would (``advance(days=2,
        step_seconds=3600)`` fires an hourly schedule 48 times).
        """
        total = seconds + minutes * 60 + hours * 3600 + days * 86400
        if step_seconds is None:
            self.clock.advance(total)
            return self.run_until_idle()
        if step_seconds <= 0:
            raise ValueError(f"step_seconds must be positive, got {step_seconds!r}")
        ran, left = 0, total
        while left > 0:
            hop = min(step_seconds, left)
            self.clock.advance(hop)
            left -= hop
            ran += self.run_until_idle()
        return ran

    @property
    def events(self) -> list[Event]:
        """Every event published so far, on every topic, in order."""
        return list(self.bus.published)

    def events_of(self, execution_id: str) -> list[Event]:
        """Every event published on one run's own topic, in order."""
        topic = self.app.pubsub.workflow_topic(execution_id)
        return [e for e in self.bus.published if e.topic == topic]

    def kinds(self, execution_id: str) -> list[str]:
        """The kinds of one run's events, in order."""
        return [e.kind for e in self.events_of(execution_id)]

    def run(self, workflow: Workflow | str, input: Any = None, **options: Any) -> Execution:
        """Start a run, run everything runnable now, and return the run as it stands."""
        run_id = self.app.start(workflow, input, **options)
        self.run_until_idle()
        return self.app.get_execution(run_id)

    def send_event(self, execution_id: str, name: str, payload: Any = None) -> Execution:
        """Send an event, run what it woke, and return the run as it stands."""
        self.app.send_event(execution_id, name, payload)
        self.run_until_idle()
        return self.app.get_execution(execution_id)

    def provide_input(self, execution_id: str, name: str, value: Any) -> Execution:
        """Answer an input, run what it woke, and return the run as it stands."""
        self.app.provide_input(execution_id, name, value)
        self.run_until_idle()
        return self.app.get_execution(execution_id)

    def history(self, execution_id: str) -> list[tuple[str, str]]:
        """Every step attempt of a run as ``(step name, status)``, oldest first."""
        return [(s.step_name, s.status.value) for s in self.app.list_steps(execution_id)]

    def completed_steps(self, execution_id: str) -> list[str]:
        """The names of the steps that completed, in order."""
        return [
            s.step_name for s in self.app.list_steps(execution_id) if s.status.value == "completed"
        ]

    def logs(self, execution_id: str, step_name: str) -> list[str]:
        """The messages a step captured (every attempt, in order)."""
        return [
            entry["message"]
            for s in self.app.list_steps(execution_id)
            if s.step_name == step_name
            for entry in s.logs
        ]

    def assert_status(self, execution_id: str, status: str) -> Execution:
        """Fail with the run's error and step history unless it has ``status``."""
        execution = self.app.get_execution(execution_id)
        if execution.status.value != status:
            raise AssertionError(
                f"execution {execution_id} is {execution.status.value}, expected {status}; "
                f"error={execution.error}; steps={self.history(execution_id)}"
            )
        return execution

    def close(self) -> None:
        self._worker.stop(grace_seconds=0)
        self.app.close()

    def __enter__(self) -> TestApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_until_idle(app: Durable, max_rounds: int = 10_000) -> int:
    """Run, in this thread, every execution of ``app`` that is runnable now (and what
    they make runnable), until none is left; return how many runs were taken.

    For apps built by hand (``Durable("memory://", clock=FakeClock())``); a
    ``TestApp`` has the same as a method.
    """
    worker = _idle_workers.get(app)
    if worker is None:
        worker = _idle_workers[app] = app.worker()
    return _drain(worker, max_rounds)


def _drain(worker: Worker, max_rounds: int) -> int:
    total = 0
    for _ in range(max_rounds):
        worker.maintain()
        ran = worker.run_once()
        total += ran
        if not ran:
            break
    return total


_idle_workers: weakref.WeakKeyDictionary[Durable, Worker] = weakref.WeakKeyDictionary()
