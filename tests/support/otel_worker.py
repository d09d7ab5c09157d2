"""A worker process with the OpenTelemetry SDK and an in-memory exporter.

``python -m tests.support.otel_worker URL EXECUTION_ID OUT``: runs a worker until the
execution ends, then writes every finished span as JSON lines to OUT.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from durable import Durable, Retry, Workflow, step

_failed: set[str] = set()


def prepare(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "prepared": True}


def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
    if ctx["id"] not in _failed:  # the first attempt in this process fails
        _failed.add(ctx["id"])
        raise ConnectionError("gateway timeout")
    return {**ctx, "charged": True}


TRACED = Workflow(
    "traced",
    [
        step(prepare),
        step(flaky, name="charge", retry=Retry(max_attempts=3, base=0.05, jitter=False)),
    ],
)


def span_dicts(spans: Any) -> list[dict[str, Any]]:
    out = []
    for s in spans:
        ctx = s.get_span_context()
        out.append(
            {
                "name": s.name,
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                "kind": s.kind.name,
                "status": s.status.status_code.name,
                "attributes": dict(s.attributes or {}),
                "events": [e.name for e in s.events],
            }
        )
    return out


def main(url: str, execution_id: str, out: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    app = Durable(url, [TRACED], poll_interval_seconds=0.05, telemetry=True)
    app.start_worker()
    deadline = time.monotonic() + 60
    while not app.get_execution(execution_id).is_finished and time.monotonic() < deadline:
        time.sleep(0.05)
    app.close()
    provider.force_flush()
    with open(out, "w") as f:
        for item in span_dicts(exporter.get_finished_spans()):
            f.write(json.dumps(item) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
