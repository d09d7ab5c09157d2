"""What OpenTelemetry costs: throughput with it absent, installed but unconfigured, and
exporting every span and metric to a no-op exporter.

Run by hand (not a test):

    .venv/bin/python bench/otel_overhead.py --db sqlite --n 3000 --rounds 3

Each mode runs in its own process: N runs of 3 no-op steps are started with
``start_many`` and then driven in that process's own thread (``run_until_idle``), so
the figure is the engine's own cost per run, without polling or thread hand-offs.
Modes: ``absent`` (the ``opentelemetry`` package cannot be imported, as when the
extra is not installed), ``api`` (installed, no provider configured: the API's
no-ops), ``sdk-noop`` (the SDK's TracerProvider with a BatchSpanProcessor and a
MeterProvider with a periodic reader, both exporting to exporters that drop
everything). The best of ``--rounds`` is reported per mode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("absent", "api", "sdk-noop")


def _block_opentelemetry() -> None:
    class _Blocker:
        def find_spec(self, name: str, *args: Any) -> None:
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"{name} is blocked (mode absent)")

    sys.meta_path.insert(0, _Blocker())  # type: ignore[arg-type]


def _sdk_noop() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class NoSpans(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class NoMetrics(MetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 0, **kw: Any) -> Any:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 0) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 0, **kw: Any) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoSpans()))
    trace.set_tracer_provider(provider)
    reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=1000)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


def child(mode: str, url: str, n: int) -> dict[str, Any]:
    if mode == "absent":
        _block_opentelemetry()
    elif mode == "sdk-noop":
        _sdk_noop()
    from durable import Durable, Workflow, step
    from durable.testing import run_until_idle

    def one(x: int) -> int:
        return x

    def two(x: int) -> int:
        return x

    def three(x: int) -> int:
        return x

    wf = Workflow("three_steps", [step(one), step(two), step(three)])
    app = Durable(url, workflows=[wf], name="bench", pubsub=True, log_capture=False)
    app.migrate()
    otel = any(type(o).__name__ == "OtelObserver" for o in app.engine.observer.members)
    began = time.perf_counter()
    for i in range(0, n, 200):
        app.start_many(wf, list(range(i, min(n, i + 200))))
    run_until_idle(app)
    elapsed = time.perf_counter() - began
    done = app.list_executions(status="completed", limit=1).items
    app.close()
    assert done, "no run completed"
    return {"mode": mode, "otel_observer": otel, "runs_per_second": n / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, n = args.child
        print(json.dumps(child(mode, url, int(n))))
        return
    import tempfile

    best: dict[str, float] = {}
    print(f"settings: db={args.db} n={args.n} rounds={args.rounds} (3 no-op steps per run)")
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for mode in MODES:
                url = f"sqlite:///{folder}/{mode}-{r}.db" if args.db == "sqlite" else "memory://"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, url, str(args.n)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                assert result["otel_observer"] == (mode != "absent"), result
                best[mode] = max(best.get(mode, 0.0), result["runs_per_second"])
                print(f"round {r + 1} {mode:9s} {result['runs_per_second']:8.0f} runs/s")
    base = best["absent"]
    for mode in MODES:
        print(f"best {mode:9s} {best[mode]:8.0f} runs/s ({best[mode] / base - 1:+.1%} vs absent)")


if __name__ == "__main__":
    main()
