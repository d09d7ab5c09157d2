"""Read-only pages (GET). Each page renders whole, or only its live fragment when
asked with ``?partial=live`` (what htmx fetches when an SSE event arrives)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import DurableError, ExecutionNotFoundError
from ..models import TERMINAL_STATUSES, Execution, Page, StepExecution, ms_to_datetime
from ..storage import ExecutionFilter
from .context import Dashboard, link
from .filters import CURSOR_RE, NAME_RE, STATUSES, WINDOWS, RunFilter, valid_id
from .svg import chart_svg, flow_svg, timeline_svg

TABS = ("summary", "flow", "timeline", "logs", "data", "history", "family")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _template(request: Request, page: str) -> str:
    return f"_{page}_live.html" if request.query_params.get("partial") == "live" else f"{page}.html"


def overview(d: Dashboard, request: Request) -> Response:
    window = request.query_params.get("window") or "24h"
    if window not in WINDOWS:
        window = "24h"
    seconds = WINDOWS[window]
    now = d.now()
    since = now - timedelta(seconds=seconds)
    q = d.app.query
    counts = q.status_counts(since)
    recent = q.search_executions(ExecutionFilter(), limit=12).items
    buckets = q.throughput(since, max(seconds // 24, 1), 24)
    context = {
        "page": "overview",
        "window": window,
        "windows": list(WINDOWS),
        "counts": counts,
        "total": sum(counts.values()),
        "recent": recent,
        "chart": chart_svg(buckets),
        "totals": {
            "started": sum(b["started"] for b in buckets),
            "completed": sum(b["completed"] for b in buckets),
            "failed": sum(b["failed"] for b in buckets),
        },
        "live_url": link(d_base(request), "/", window=window, partial="live"),
        "unserved": _unserved(d),
    }
    return d.render(request, _template(request, "overview"), context)


def _unserved(d: Dashboard) -> list[Any]:
    """Runs waiting for a worker that knows their workflow (named on the overview)."""
    from ..unserved import unserved_runs

    engine = d.app.engine
    return unserved_runs(engine.storage, engine.clock.now_ms(), engine.config.stale_timeout_seconds)


def d_base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def workflows(d: Dashboard, request: Request) -> Response:
    registered = d.app.workflows
    stats = d.app.query.workflow_stats(registered)
    for row in stats:
        wf = registered.get(row["name"])
        row["registered"] = wf is not None
        row["steps"] = len(wf.step_names) if wf else None
        row["queue"] = wf.queue if wf else None
        row["description"] = getattr(wf, "description", None) if wf else None
    context = {
        "page": "workflows",
        "stats": stats,
        "live_url": link(d_base(request), "/workflows", partial="live"),
    }
    return d.render(request, _template(request, "workflows"), context)


def executions(d: Dashboard, request: Request) -> Response:
    flt = RunFilter.from_query(request.query_params)
    cursor = request.query_params.get("cursor") or None
    errors = list(flt.errors)
    if cursor and not CURSOR_RE.match(cursor):
        errors.append("cursor is not valid; start from the first page")
        cursor = None
    try:
        page = d.app.query.search_executions(
            flt.storage_filter(d.now()), flt.matches(), limit=50, cursor=cursor
        )
    except DurableError as exc:
        errors.append(d.error_text(str(exc)))
        page = Page([], None)
    base = d_base(request)
    context = {
        "page": "executions",
        "flt": flt,
        "errors": errors,
        "runs": page.items,
        "next_url": link(base, "/executions") + "?" + flt.query_string(cursor=page.next_cursor)
        if page.next_cursor
        else None,
        "first_url": link(base, "/executions") + "?" + flt.query_string() if cursor else None,
        "live_url": None
        if cursor
        else link(base, "/executions") + "?" + flt.query_string(partial="live"),
        "statuses": list(STATUSES),
        "workflow_names": sorted(d.app.workflows),
        "windows": list(WINDOWS),
        "query": flt.query_string(),
    }
    return d.render(request, _template(request, "executions"), context, 400 if flt.errors else 200)


def bulk_preview(d: Dashboard, request: Request) -> Response:
    flt = RunFilter.from_query(request.query_params)
    action = request.query_params.get("action")
    if action not in ("retry", "cancel") or flt.errors:
        raise HTTPException(400, "choose action=retry or action=cancel and a valid filter")
    storage_flt = flt.storage_filter(d.now())
    matches = flt.matches()
    count = d.app.query.count_executions(storage_flt, matches, cap=100_000)
    rows = d.app.query.select_executions(storage_flt, matches, cap=d.bulk_limit)
    eligible = [r for r in rows if _eligible(action, r["status"])]
    context = {
        "page": "executions",
        "flt": flt,
        "action": action,
        "count": count,
        "rows": rows,
        "eligible": eligible,
        "limit": d.bulk_limit,
        "back_url": link(d_base(request), "/executions") + "?" + flt.query_string(),
    }
    return d.render(request, "bulk_preview.html", context)


def _eligible(action: str, status: str) -> bool:
    return status == "failed" if action == "retry" else status not in TERMINAL_STATUSES


def load_run(d: Dashboard, execution_id: str) -> Execution:
    if not valid_id(execution_id):
        raise HTTPException(404, "no such execution")
    try:
        return d.app.query.get_execution(execution_id)
    except ExecutionNotFoundError:
        raise HTTPException(404, "no such execution") from None


def run_page(d: Dashboard, request: Request) -> Response:
    execution_id = request.path_params["execution_id"]
    if valid_id(execution_id) and d.app.storage.get_execution(execution_id) is None:
        try:
            full = d.app.query.resolve_id(execution_id)
        except DurableError:
            full = None
        if full:
            return RedirectResponse(link(d_base(request), f"/executions/{full}"), 303)
    run = load_run(d, execution_id)
    tab = request.query_params.get("tab") or "summary"
    if tab not in TABS:
        tab = "summary"
    steps = d.app.query.list_steps(run.id)
    context: dict[str, Any] = {
        "page": "executions",
        "run": run,
        "tab": tab,
        "tabs": TABS,
        "steps": steps,
        "live_url": link(d_base(request), f"/executions/{run.id}", tab=tab, partial="live")
        + _logs_query(request),
        "stream_ids": [run.id],
    }
    children = d.app.query.list_children(run.id)
    context["children"] = children
    context["stream_ids"] += [c.id for c in children[:20]]
    if run.parent_id:
        context["stream_ids"].append(run.parent_id)
    if tab == "summary":
        context["inputs"] = d.app.list_pending_inputs(execution_id=run.id)
        context["events"] = d.app.list_pending_events(execution_id=run.id)
        context["audit"] = d.app.query.audit_log(target=run.id, limit=20)
        context["input_errors"] = {}
        context["input_values"] = {}
    elif tab == "flow":
        context["flow"] = _flow(d, run, steps)
    elif tab == "timeline":
        context["timeline"] = _timeline(d, run, steps)
    elif tab == "logs":
        context.update(_logs(request, steps))
    elif tab == "family":
        context["parent"] = _maybe_run(d, run.parent_id)
    return d.render(request, _template(request, "run"), context)


def _logs_query(request: Request) -> str:
    keep = [(k, request.query_params.get(k)) for k in ("level", "step", "q")]
    return "".join(f"&{k}={v}" for k, v in keep if v and re.match(r"^[\w .:-]{1,100}$", v))


def _maybe_run(d: Dashboard, execution_id: str | None) -> Execution | None:
    if not execution_id:
        return None
    try:
        return d.app.query.get_execution(execution_id)
    except ExecutionNotFoundError:
        return None


def _flow(d: Dashboard, run: Execution, steps: list[StepExecution]) -> Any:
    wf = d.app.workflows.get(run.workflow_name)
    if wf is None:
        return None
    status: dict[str, str] = {}
    for s in steps:
        status[s.step_name] = s.status.value
    return flow_svg(wf.graph(), status, run.current_step, run.is_finished)


def _timeline(d: Dashboard, run: Execution, steps: list[StepExecution]) -> Any:
    now = d.now()
    rows: list[dict[str, Any]] = []
    for s in steps:
        end = s.completed_at or now
        rows.append(
            {
                "label": f"{s.step_name} #{s.attempt}",
                "kind": "attempt",
                "status": s.status.value,
                "start": s.started_at,
                "end": end,
            }
        )
        if s.next_retry_at is not None:
            rows.append(
                {
                    "label": f"{s.step_name} retry delay",
                    "kind": "retry",
                    "status": "retry",
                    "start": end,
                    "end": s.next_retry_at,
                }
            )
    for w in d.app.query.waits(run.id):
        start = ms_to_datetime(w["created_at"])
        stop = ms_to_datetime(w["resolved_at"]) or now
        if start is None:
            continue
        rows.append(
            {
                "label": f"wait {w['kind']} {w['name']}".strip(),
                "kind": "wait",
                "status": w["status"],
                "start": start,
                "end": stop,
            }
        )
    rows.sort(key=lambda r: r["start"])
    if not rows:
        return None
    start = min(r["start"] for r in rows)
    end = max(max(r["end"] for r in rows), run.completed_at or start)
    return timeline_svg(rows, start, end)


def _logs(request: Request, steps: list[StepExecution]) -> dict[str, Any]:
    level = request.query_params.get("level") or ""
    step = request.query_params.get("step") or ""
    text = (request.query_params.get("q") or "")[:200]
    floor = LEVELS.index(level) if level in LEVELS else 0
    entries = []
    for s in steps:
        for entry in s.logs:
            if step and s.step_name != step:
                continue
            lvl = str(entry.get("level", "INFO")).upper()
            if lvl in LEVELS and LEVELS.index(lvl) < floor:
                continue
            message = str(entry.get("message", ""))
            if text and text.lower() not in message.lower():
                continue
            entries.append({**entry, "level": lvl, "step": s.step_name, "attempt": s.attempt})
    return {
        "log_entries": entries,
        "log_level": level if level in LEVELS else "",
        "log_step": step,
        "log_q": text,
        "levels": LEVELS,
        "step_names": sorted({s.step_name for s in steps}),
    }


def inputs(d: Dashboard, request: Request, errors: Any = None, status: int = 200) -> Response:
    wf = request.query_params.get("workflow") or None
    if wf is not None and not NAME_RE.match(wf):
        wf = None
    pending = d.app.list_pending_inputs(workflow=wf, limit=200)
    context = {
        "page": "inputs",
        "inputs": pending,
        "input_errors": errors or {},
        "input_values": {},
        "live_url": link(d_base(request), "/inputs", partial="live"),
    }
    if isinstance(errors, dict) and "_values" in errors:
        context["input_values"] = errors.pop("_values")
    return d.render(request, _template(request, "inputs"), context, status)


def events(d: Dashboard, request: Request, errors: Any = None, status: int = 200) -> Response:
    pending = d.app.list_pending_events(limit=200)
    context = {
        "page": "events",
        "events": pending,
        "event_errors": errors or {},
        "live_url": link(d_base(request), "/events", partial="live"),
    }
    return d.render(request, _template(request, "events"), context, status)


def schedules(d: Dashboard, request: Request) -> Response:
    api = getattr(d.app, "schedules", None)
    items: list[Any] = []
    problem = None
    if api is None:
        problem = "Schedules are not available in this version of Durable."
    else:
        try:
            items = list(api.list())
        except DurableError as exc:
            problem = d.error_text(str(exc))
    context = {
        "page": "schedules",
        "schedules": items,
        "problem": problem,
        "live_url": link(d_base(request), "/schedules", partial="live"),
    }
    return d.render(request, _template(request, "schedules"), context)


def workers(d: Dashboard, request: Request) -> Response:
    now_ms = d.app.clock.now_ms()
    rows = []
    for w in d.app.query.workers():
        rows.append(
            {
                **w,
                "started": ms_to_datetime(w["started_at"]),
                "heartbeat": ms_to_datetime(w["heartbeat_at"]),
                "age_seconds": max(0, (now_ms - int(w["heartbeat_at"])) // 1000),
            }
        )
    context = {
        "page": "workers",
        "workers": rows,
        "queues": d.app.query.queue_counts(),
        "limits": d.app.query.queue_limits(
            d.app.engine.limits,
            now_ms,
            now_ms - int(d.app.engine.config.stale_timeout_seconds * 1000),
        ),
        "live_url": link(d_base(request), "/workers", partial="live"),
    }
    return d.render(request, _template(request, "workers"), context)


def audit(d: Dashboard, request: Request) -> Response:
    params = request.query_params
    filters: dict[str, str | None] = {}
    for key in ("actor", "action", "target", "outcome"):
        value = (params.get(key) or "").strip()
        filters[key] = value if value and NAME_RE.match(value) else None
    before = params.get("before")
    before_id = int(before) if before and before.isdigit() and len(before) < 18 else None
    entries = d.app.query.audit_log(before_id=before_id, limit=51, **filters)
    more = len(entries) > 50
    entries = entries[:50]
    base = d_base(request)
    context = {
        "page": "audit",
        "entries": entries,
        "filters": filters,
        "next_url": link(base, "/audit", before=entries[-1]["id"], **filters) if more else None,
    }
    return d.render(request, "audit.html", context)
