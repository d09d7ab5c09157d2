"""OpenTelemetry traces and metrics (``pip install 'durable[otel]'``).

Only the OpenTelemetry *API* is used: spans and metrics go wherever the host's
``TracerProvider`` / ``MeterProvider`` send them (no-ops until the host sets one up).

Traces. ``start()`` opens a short ``PRODUCER`` span, ``start <workflow>``, as a child
of the caller's current span, and stores its context with the run (W3C
``traceparent``), so everything the run does later, in any process, is one trace:

- ``run <workflow>`` (``CONSUMER``): one span per claim, i.e. each stretch a worker
  drives the run between waits, retry delays and hand-overs;
- ``step <name>`` / ``compensate <name>``: one child span per attempt; a failed
  attempt records the error (status ERROR, an ``exception`` event, ``error.type``)
  and, when retried, a ``retry_scheduled`` event; a suspended attempt a ``wait`` event;
- a child run's ``start`` span is a child of the parent's step span.

Metrics (names and units in docs/observability.md): ``durable.runs.started``,
``durable.runs.ended``, ``durable.step.duration``, ``durable.queue.depth``,
``durable.run.claim_to_start``, ``durable.run.wake_latency``.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..storage import Row
from . import BaseObserver

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import Span

    from ..engine import Engine

SCOPE = "durable"

# attribute names (OpenTelemetry semantic conventions where one exists: error.type,
# messaging.destination.name for the queue; the rest under durable.*)
A_EXECUTION = "durable.execution.id"
A_WORKFLOW = "durable.workflow.name"
A_VERSION = "durable.workflow.version"
A_STATUS = "durable.execution.status"
A_CLAIMS = "durable.execution.claim_count"
A_PARENT = "durable.execution.parent_id"
A_STEP = "durable.step.name"
A_STEP_TYPE = "durable.step.type"
A_ATTEMPT = "durable.step.attempt"
A_OUTCOME = "durable.step.status"
A_QUEUE = "messaging.destination.name"
A_WORKER = "durable.worker.id"
A_INSTANCE = "durable.instance"
A_ERROR_TYPE = "error.type"

_ENDED_IN_ERROR = frozenset({"failed", "compensated", "compensation_failed"})


def otel_available() -> bool:
    """True when the OpenTelemetry API is importable."""
    try:
        import opentelemetry.metrics
        import opentelemetry.propagate
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


class _Instruments:
    """One set of instruments per process, shared by every app (``durable.instance``
    tells them apart): the API refuses a second instrument of the same name."""

    _lock = threading.Lock()
    _shared: _Instruments | None = None

    def __init__(self) -> None:
        from opentelemetry import metrics

        meter = metrics.get_meter(SCOPE)
        self.started = meter.create_counter(
            "durable.runs.started", unit="{run}", description="Runs stored (pending)"
        )
        self.ended = meter.create_counter(
            "durable.runs.ended", unit="{run}", description="Runs that reached a terminal status"
        )
        self.step_duration = meter.create_histogram(
            "durable.step.duration", unit="s", description="Duration of step attempts"
        )
        self.claim_to_start = meter.create_histogram(
            "durable.run.claim_to_start",
            unit="s",
            description="From a worker's claim to the run being driven",
        )
        self.wake_latency = meter.create_histogram(
            "durable.run.wake_latency",
            unit="s",
            description="From the moment a run became runnable to its claim",
        )
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        meter.create_observable_gauge(
            "durable.queue.depth",
            callbacks=[self._depths],
            unit="{run}",
            description="Unfinished runs per queue and status (pending: the backlog)",
        )

    @classmethod
    def shared(cls) -> _Instruments:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _depths(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        out = []
        for engine in list(self.engines):
            try:
                rows = engine.storage.queue_counts()
            except Exception:  # storage closed or down: no sample this time
                continue
            for row in rows:
                attrs = {A_INSTANCE: engine.name, A_QUEUE: row["queue"], A_STATUS: row["status"]}
                out.append(Observation(int(row["n"]), attrs))
        return out


class OtelObserver(BaseObserver):
    """Spans and metrics for one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        from opentelemetry import propagate, trace

        self._trace = trace
        self._propagate = propagate
        self._tracer = trace.get_tracer(SCOPE)
        self._engine_name = engine.name
        self._clock = engine.clock
        self._m = _Instruments.shared()
        self._m.engines.add(engine)
        self._runs: dict[str, Span] = {}  # execution id -> its claim span
        self._attempts: dict[str, tuple[str, Span]] = {}  # attempt id -> (execution id, span)
        self._current: dict[str, Span] = {}  # execution id -> latest open attempt span

    def _tracing(self) -> bool:
        """False until the host sets a tracer provider: then spans would be no-ops, so
        none are made (checked per call: a provider may be set after the app)."""
        return not isinstance(self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider)

    # ---- starting ---------------------------------------------------------------------

    def trace_context(
        self, workflow_name: str, execution_id: str, parent_execution_id: str | None
    ) -> dict[str, str] | None:
        if not self._tracing():
            return None
        parent = self._current.get(parent_execution_id or "") or self._runs.get(
            parent_execution_id or ""
        )
        ctx = self._trace.set_span_in_context(parent) if parent is not None else None
        attributes = {A_EXECUTION: execution_id, A_WORKFLOW: workflow_name}
        if parent_execution_id:
            attributes[A_PARENT] = parent_execution_id
        span = self._tracer.start_span(
            f"start {workflow_name}",
            context=ctx,
            kind=self._trace.SpanKind.PRODUCER,
            attributes=attributes,
        )
        span.end()
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        return carrier or None

    def run_created(self, row: Row) -> None:
        self._m.started.add(1, {A_WORKFLOW: row["workflow_name"]})

    # ---- claims -----------------------------------------------------------------------

    def run_claimed(self, row: Row) -> None:
        now = self._clock.now_ms()
        attrs = {A_WORKFLOW: row["workflow_name"]}
        claimed_at = row.get("heartbeat_at")
        if claimed_at is not None:
            self._m.claim_to_start.record(max(0, now - claimed_at) / 1000, attrs)
            if row.get("wake_at") is not None:
                self._m.wake_latency.record(max(0, claimed_at - row["wake_at"]) / 1000, attrs)
        if not self._tracing():
            return
        ctx = None
        if row.get("trace_context"):
            try:
                ctx = self._propagate.extract(json.loads(row["trace_context"]))
            except ValueError:
                ctx = None
        span = self._tracer.start_span(
            f"run {row['workflow_name']}",
            context=ctx,
            kind=self._trace.SpanKind.CONSUMER,
            attributes={
                A_EXECUTION: row["id"],
                A_WORKFLOW: row["workflow_name"],
                A_QUEUE: row["queue"],
                A_CLAIMS: int(row.get("attempt") or 0),
                A_WORKER: row.get("locked_by") or "",
            },
        )
        if row.get("workflow_version") is not None:
            span.set_attribute(A_VERSION, row["workflow_version"])
        self._runs[row["id"]] = span

    def run_released(self, row: Row) -> None:
        span = self._runs.pop(row["id"], None)
        self._current.pop(row["id"], None)
        # an attempt the executor never ended (it crashed mid-step) ends with its claim
        for attempt_id, (execution_id, open_span) in list(self._attempts.items()):
            if execution_id == row["id"]:
                self._attempts.pop(attempt_id, None)
                open_span.set_status(self._trace.StatusCode.ERROR, "the claim ended mid-attempt")
                open_span.end()
        if span is None:
            return
        status = row.get("status") or ""
        span.set_attribute(A_STATUS, status)
        if status in _ENDED_IN_ERROR:
            error = _error(row.get("error"))
            span.set_attribute(A_ERROR_TYPE, error.get("type") or status)
            span.set_status(self._trace.StatusCode.ERROR, f"{status}: {error.get('message')}")
        span.end()

    # ---- attempts ---------------------------------------------------------------------

    def attempt_started(self, workflow_name: str, attempt: Row) -> None:
        if not self._tracing():
            return
        execution_id = attempt["execution_id"]
        parent = self._runs.get(execution_id)
        ctx = self._trace.set_span_in_context(parent) if parent is not None else None
        name = attempt["step_name"]
        if attempt.get("step_type") == "compensation":  # "charge.compensate" undoes charge
            title = f"compensate {name.removesuffix('.compensate')}"
        else:
            title = f"step {name}"
        span = self._tracer.start_span(
            title,
            context=ctx,
            # the run span (the parent) carries the execution id and workflow
            attributes={
                A_STEP: name,
                A_STEP_TYPE: attempt.get("step_type") or "step",
                A_ATTEMPT: int(attempt["attempt"]),
            },
        )
        self._attempts[attempt["id"]] = (execution_id, span)
        self._current[execution_id] = span

    def attempt_ended(self, workflow_name: str, attempt: Row) -> None:
        status = attempt["status"]
        duration = attempt.get("duration_ms")
        if duration is not None:
            self._m.step_duration.record(
                duration / 1000,
                {A_WORKFLOW: workflow_name, A_STEP: attempt["step_name"], A_OUTCOME: status},
            )
        entry = self._attempts.pop(attempt["id"], None)
        if entry is None:
            return
        span = entry[1]
        if self._current.get(attempt["execution_id"]) is span:
            self._current.pop(attempt["execution_id"], None)
        span.set_attribute(A_OUTCOME, status)
        if status == "failed":
            error = _error(attempt.get("error"))
            kind = error.get("type") or "error"
            span.set_attribute(A_ERROR_TYPE, kind)
            span.add_event(
                "exception",
                {
                    "exception.type": kind,
                    "exception.message": error.get("message") or "",
                    "exception.stacktrace": error.get("traceback") or "",
                },
            )
            span.set_status(self._trace.StatusCode.ERROR, f"{kind}: {error.get('message')}")
            if attempt.get("next_retry_at") is not None:
                span.add_event(
                    "retry_scheduled", {"durable.retry.at_ms": int(attempt["next_retry_at"])}
                )
        elif status in ("waiting", "snoozed"):
            span.add_event(status if status == "snoozed" else "wait")
        span.end()

    # ---- endings ----------------------------------------------------------------------

    def run_ended(self, execution: Row, status: str, error: dict[str, Any] | None) -> None:
        self._m.ended.add(1, {A_WORKFLOW: execution["workflow_name"], A_STATUS: status})
        span = self._runs.get(execution["id"])
        if span is not None:
            event: dict[str, Any] = {A_STATUS: status}
            if error:
                event[A_ERROR_TYPE] = str(error.get("type"))
            span.add_event("run_ended", event)

    def runs_recovered(self, rows: Sequence[Row], worker_id: str | None) -> None:
        span = self._trace.get_current_span()
        if span.is_recording():
            span.add_event("runs_recovered", {"durable.recovered": len(rows)})


def _error(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"message": value}
    return value if isinstance(value, dict) else {}
