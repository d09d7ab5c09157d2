"""OpenTelemetry: one trace from a caller's span through a run in another process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable import Durable, Retry, Workflow, step
from durable.testing import TestApp
from tests.support.otel_worker import TRACED, span_dicts
from tests.support.procs import spawn

_EXPORTER = InMemorySpanExporter()


_ATTACHED: list[TracerProvider] = []


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Spans of the process-wide SDK provider (OpenTelemetry allows one per process:
    set it, or if something else set one already, add our exporter to it)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    if current not in _ATTACHED:
        current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _ATTACHED.append(current)
    _EXPORTER.clear()
    return _EXPORTER


def _by_name(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in items if s["name"] == name]


def test_a_caller_span_continues_through_a_run_in_another_process(
    spans: InMemorySpanExporter, sqlite_url: str, tmp_path: Path
) -> None:
    app = Durable(sqlite_url, [TRACED], pubsub=False, telemetry=True)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as request:
        run_id = app.start(TRACED, {"id": "o-1"})
    app.close()
    here = span_dicts(spans.get_finished_spans())
    trace_id = format(request.get_span_context().trace_id, "032x")
    [start] = _by_name(here, "start traced")
    assert start["trace_id"] == trace_id and start["kind"] == "PRODUCER"
    assert start["parent_id"] == format(request.get_span_context().span_id, "016x")

    out = tmp_path / "spans.jsonl"
    proc = spawn(["-m", "tests.support.otel_worker", sqlite_url, run_id, str(out)])
    assert proc.wait(timeout=90) == 0
    there = [json.loads(line) for line in out.read_text().splitlines()]

    assert {s["trace_id"] for s in there} == {trace_id}  # one trace across processes
    runs = _by_name(there, "run traced")
    assert runs and all(r["parent_id"] == start["span_id"] for r in runs)
    assert all(r["kind"] == "CONSUMER" for r in runs)
    assert runs[-1]["attributes"]["durable.execution.status"] == "completed"
    run_ids = {r["span_id"] for r in runs}
    charges = _by_name(there, "step charge")
    assert [c["attributes"]["durable.step.attempt"] for c in charges] == [1, 2]
    assert all(c["parent_id"] in run_ids for c in charges)
    failed, ok = charges
    assert failed["status"] == "ERROR" and ok["status"] == "UNSET"
    assert failed["attributes"]["error.type"] == "ConnectionError"
    assert "exception" in failed["events"] and "retry_scheduled" in failed["events"]
    assert [p["parent_id"] in run_ids for p in _by_name(there, "step prepare")] == [True]


def refuse(ctx: Any) -> Any:
    raise PermissionError("no")


def reserve(ctx: Any) -> Any:
    return ctx


def release(ctx: Any) -> Any:
    return ctx


def test_compensations_waits_and_children_are_spans(spans: InMemorySpanExporter) -> None:
    from durable.control import call_workflow
    from durable.wait import sleep

    child = Workflow("child", [step(reserve, name="inner")])

    def nap(ctx: Any) -> Any:
        sleep(60)
        return ctx

    def spawn_child(ctx: Any) -> Any:
        return call_workflow(child, ctx)

    parent = Workflow(
        "parent",
        [
            step(reserve, compensate=release),
            step(nap),
            step(spawn_child),
            step(refuse, retry=Retry(max_attempts=1)),
        ],
    )
    with TestApp([parent, child], telemetry=True) as t:
        run_id = t.app.start(parent, {})
        t.run_until_idle()
        t.advance(seconds=61)
        t.assert_status(run_id, "compensated")
    got = span_dicts(spans.get_finished_spans())
    assert len({s["trace_id"] for s in got}) == 1  # the child run is in the parent's trace
    [nap_wait, _nap_done] = _by_name(got, "step nap")
    assert "wait" in nap_wait["events"]
    [comp] = _by_name(got, "compensate reserve")
    assert comp["attributes"]["durable.step.type"] == "compensation"
    [child_start] = _by_name(got, "start child")
    spawn_attempts = {s["span_id"] for s in _by_name(got, "step spawn_child")}
    assert child_start["parent_id"] in spawn_attempts
    assert child_start["attributes"]["durable.execution.parent_id"] == run_id
    last_run = _by_name(got, "run parent")[-1]
    assert last_run["status"] == "ERROR"
    assert last_run["attributes"]["durable.execution.status"] == "compensated"


def test_metrics_count_runs_time_steps_and_measure_queues() -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    else:  # pragma: no cover - another test set it first
        pytest.skip("a meter provider is already set in this process")
    wf = Workflow("metered", [step(reserve), step(refuse)])
    with TestApp([wf], telemetry=True) as t:
        t.app.start(wf, {})
        waiting = t.app.start(wf, {}, queue="later")  # nobody serves it: the backlog
        t.run_until_idle()
        data = reader.get_metrics_data()
        assert waiting
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points.setdefault(m.name, []).extend(m.data.data_points)
    started = {
        p.attributes["durable.workflow.name"]: p.value for p in points["durable.runs.started"]
    }
    assert started["metered"] == 2
    [ended] = points["durable.runs.ended"]
    assert ended.attributes["durable.execution.status"] == "failed" and ended.value == 1
    durations = {
        p.attributes["durable.step.name"]: p.count for p in points["durable.step.duration"]
    }
    assert durations == {"reserve": 1, "refuse": 1}
    depth = {
        (
            p.attributes["messaging.destination.name"],
            p.attributes["durable.execution.status"],
        ): p.value
        for p in points["durable.queue.depth"]
    }
    assert depth[("later", "pending")] == 1
    assert points["durable.run.claim_to_start"][0].count == 1
    assert points["durable.run.wake_latency"][0].count == 1
