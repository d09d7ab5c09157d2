"""The observer seam: what the engine tells logging and telemetry.

The executor, the worker and the engine call these few methods at the moments an
operator cares about (a run stored, a claim begins and ends, a step attempt begins
and ends, a run ends, dead workers' runs recovered); implementations turn them into
log records (:mod:`durable.observe.logs`) or OpenTelemetry spans and metrics
(:mod:`durable.observe.otel`). Observers must be cheap and must never raise into
the executor: :class:`Observers` swallows and logs what an implementation raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..storage import Row

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("durable.observe")


class Observer(Protocol):
    """Called by the engine; every method is optional in spirit (a no-op is fine).

    ``row`` arguments are the stored execution or step-attempt rows (dicts of
    stored column values); they are shared with the executor and must not be
    modified.
    """

    def trace_context(
        self, workflow_name: str, execution_id: str, parent_execution_id: str | None
    ) -> dict[str, str] | None:
        """A carrier to store with a new run (``None``: nothing to store). For a
        child run, ``parent_execution_id`` names the run whose step starts it."""
        ...

    def run_created(self, row: Row) -> None:
        """A new execution was committed (status pending)."""
        ...

    def run_claimed(self, row: Row) -> None:
        """A worker took the run and is about to drive it (``row`` is the claimed row:
        ``locked_by`` is the worker, ``heartbeat_at`` the claim time, ``wake_at`` when
        the run became runnable)."""
        ...

    def run_released(self, row: Row) -> None:
        """The claim ended: the run waits, sleeps, retries later, was handed over or ended."""
        ...

    def attempt_started(self, workflow_name: str, attempt: Row) -> None:
        """A step (or compensation) attempt begins (``attempt["execution_id"]`` is the run)."""
        ...

    def attempt_ended(self, workflow_name: str, attempt: Row) -> None:
        """An attempt ended: ``attempt["status"]`` is completed, failed, waiting, snoozed
        or cancelled; a failed one carries ``error`` (JSON text) and, when it will be
        retried, ``next_retry_at`` (epoch ms)."""
        ...

    def run_ended(self, execution: Row, status: str, error: dict[str, Any] | None) -> None:
        """The run reached a terminal status (its commit is done)."""
        ...

    def runs_recovered(self, rows: Sequence[Row], worker_id: str | None) -> None:
        """Claims of workers that stopped heart-beating were released (``rows`` carry
        ``id``, ``workflow_name`` and the dead worker in ``locked_by``)."""
        ...


class Observers:
    """Fans each call out to several observers; one that raises is logged and skipped."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.members: list[Observer] = list(observers)

    def add(self, observer: Observer) -> None:
        self.members.append(observer)

    def trace_context(
        self, workflow_name: str, execution_id: str, parent_execution_id: str | None
    ) -> dict[str, str] | None:
        for member in self.members:
            try:
                carrier = member.trace_context(workflow_name, execution_id, parent_execution_id)
            except Exception:
                log.exception("observer %r failed in trace_context", member)
                continue
            if carrier:
                return carrier
        return None

    def _each(self, method: str, *args: Any) -> None:
        for member in self.members:
            try:
                getattr(member, method)(*args)
            except Exception:
                log.exception("observer %r failed in %s", member, method)

    def run_created(self, row: Row) -> None:
        self._each("run_created", row)

    def run_claimed(self, row: Row) -> None:
        self._each("run_claimed", row)

    def run_released(self, row: Row) -> None:
        self._each("run_released", row)

    def attempt_started(self, workflow_name: str, attempt: Row) -> None:
        self._each("attempt_started", workflow_name, attempt)

    def attempt_ended(self, workflow_name: str, attempt: Row) -> None:
        self._each("attempt_ended", workflow_name, attempt)

    def run_ended(self, execution: Row, status: str, error: dict[str, Any] | None) -> None:
        self._each("run_ended", execution, status, error)

    def runs_recovered(self, rows: Sequence[Row], worker_id: str | None) -> None:
        if rows:
            self._each("runs_recovered", rows, worker_id)


class BaseObserver:
    """Every hook a no-op: subclass and override the ones you need."""

    def trace_context(
        self, workflow_name: str, execution_id: str, parent_execution_id: str | None
    ) -> dict[str, str] | None:
        return None

    def run_created(self, row: Row) -> None:
        pass

    def run_claimed(self, row: Row) -> None:
        pass

    def run_released(self, row: Row) -> None:
        pass

    def attempt_started(self, workflow_name: str, attempt: Row) -> None:
        pass

    def attempt_ended(self, workflow_name: str, attempt: Row) -> None:
        pass

    def run_ended(self, execution: Row, status: str, error: dict[str, Any] | None) -> None:
        pass

    def runs_recovered(self, rows: Sequence[Row], worker_id: str | None) -> None:
        pass


def default_observers(engine: Engine, telemetry: bool | None = None) -> Observers:
    """Logging always; OpenTelemetry when asked (``True``) or, with ``None``, when the
    ``opentelemetry`` API is installed (``pip install 'durable[otel]'``)."""
    from .logs import LogObserver

    observers = Observers([LogObserver()])
    if telemetry is not False:
        from .otel import otel_available

        if otel_available():
            from .otel import OtelObserver

            observers.add(OtelObserver(engine))
        elif telemetry:
            from ..errors import ConfigurationError

            raise ConfigurationError(
                "telemetry=True needs OpenTelemetry: pip install 'durable[otel]'"
            )
    return observers


__all__ = ["BaseObserver", "Observer", "Observers", "default_observers"]
