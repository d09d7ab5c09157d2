"""Actions (POST): each checks the role, the CSRF token and the origin, runs the verb
off the event loop, writes an audit entry (who, what, when, outcome) and
redirects back (303), so plain HTML forms work without JavaScript."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import DurableError, InputValidationError, SerializationError
from ..models import PendingInput
from . import pages
from .context import Dashboard, base_path, link, set_flash
from .filters import NAME_RE, valid_id
from .security import CSRF_FIELD, CSRF_HEADER, principal_of

Work = Callable[[FormData], "Response | str | None"]


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _next_url(request: Request, form: FormData, default: str) -> str:
    """Where to go back to: a path inside the dashboard only (no open redirects)."""
    base = base_path(request)
    target = str(form.get("next") or "")
    if target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return link(base, default)


async def act(
    d: Dashboard,
    request: Request,
    action: str,
    target: str | None,
    work: Work,
    default_next: str,
    params: dict[str, Any] | None = None,
) -> Response:
    form = await request.form()
    who = principal_of(request)
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    refusal = None
    if not who.can_act:
        refusal = f"role {who.role!r} may not act"
    elif not d.csrf.check(request.state.csrf_cookie, who, sent):
        refusal = "missing or invalid CSRF token; reload the page and try again"
    elif not _same_origin(request):
        refusal = "cross-origin request refused"
    if refusal is not None:
        await run_in_threadpool(d.audit, request, action, target, "denied", refusal, params)
        return d.render(request, "message.html", {"page": "", "message": refusal}, 403)
    try:
        result = await run_in_threadpool(work, form)
    except DurableError as exc:
        message = d.error_text(str(exc))
        await run_in_threadpool(d.audit, request, action, target, "error", message, params)
        status = 422 if isinstance(exc, SerializationError) else 409
        context = {"page": "", "message": message, "back": _next_url(request, form, default_next)}
        return d.render(request, "message.html", context, status)
    if isinstance(result, Response):  # the work rendered its own answer
        if result.status_code >= 400:
            detail = "the submitted value was refused (validation errors shown to the user)"
            await run_in_threadpool(d.audit, request, action, target, "invalid", detail, params)
        return result
    await run_in_threadpool(d.audit, request, action, target, "ok", result, params)
    response = RedirectResponse(_next_url(request, form, default_next), 303)
    set_flash(request, response, str(result))  # the next page confirms what was done
    return response


def _run_id(request: Request) -> str:
    execution_id = str(request.path_params["execution_id"])
    if not valid_id(execution_id):
        from starlette.exceptions import HTTPException

        raise HTTPException(404, "no such execution")
    return execution_id


async def cancel(d: Dashboard, request: Request) -> Response:
    run_id = _run_id(request)

    def work(form: FormData) -> str:
        reason = str(form.get("reason") or "cancelled from the dashboard")[:500]
        children = [c.id for c in d.app.list_children(run_id) if not c.is_finished]
        compensate = form.get("compensate") == "1"
        e = d.app.cancel(run_id, reason, compensate=compensate)
        done = "cancelled; compensating" if e.status.value == "compensating" else "cancelled"
        return f"{done} with {len(children)} active children" if children else done

    return await act(d, request, "cancel", run_id, work, f"/executions/{run_id}")


async def retry(d: Dashboard, request: Request) -> Response:
    run_id = _run_id(request)

    def work(form: FormData) -> str:
        d.app.retry(run_id)
        return "retried"

    return await act(d, request, "retry", run_id, work, f"/executions/{run_id}")


async def send_event(d: Dashboard, request: Request) -> Response:
    run_id = _run_id(request)
    form = await request.form()
    name = str(form.get("name") or "").strip()
    raw = str(form.get("payload") or "").strip()

    def work(form: FormData) -> Response | str:
        try:
            payload = json.loads(raw) if raw else None
        except ValueError as exc:
            errors = {f"{run_id}:{name}": f"the payload is not valid JSON: {exc}"}
            return pages.events(d, request, errors, 422)
        if not name or not NAME_RE.match(name):
            return pages.events(d, request, {f"{run_id}:{name}": "give the event a name"}, 422)
        took = d.app.send_event(run_id, name, payload)
        return f"event {name!r} " + ("delivered" if took else "buffered")

    params = {"name": name, "payload": _json_or_text(raw)}
    return await act(d, request, "send_event", run_id, work, "/events", params)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:500]


async def provide_input(d: Dashboard, request: Request) -> Response:
    run_id = _run_id(request)
    name = str(request.path_params["name"])
    form = await request.form()

    def work(form: FormData) -> Response | str:
        pending = d.app.list_pending_inputs(execution_id=run_id, name=name, limit=1)
        if not pending:
            raise DurableError(f"execution {run_id} is not waiting for input {name!r}")
        wait = pending[0]
        errors: dict[str, str] = {}
        value = form_value(wait, form, errors)
        if not errors:
            try:
                d.app.provide_input(run_id, name, value)
                return f"input {name!r} provided"
            except InputValidationError as exc:
                # a whole-value error ("value") shows at the top of the form
                errors = {("_form" if k == "value" else k): v for k, v in exc.errors.items()}
                errors = errors or {"_form": str(exc)}
        raw = {k: str(v) for k, v in form.items() if k != CSRF_FIELD}
        return pages.inputs(d, request, {wait.id: errors, "_values": {wait.id: raw}}, 422)

    params = {"name": name, "value": d.redactor.value(_shown_value(form))}
    return await act(d, request, "provide_input", run_id, work, "/inputs", params)


def _shown_value(form: FormData) -> dict[str, str]:
    return {k: str(v)[:200] for k, v in form.items() if k not in (CSRF_FIELD, "next")}


def form_value(wait: PendingInput, form: FormData, errors: dict[str, str]) -> Any:
    """The typed value of an input from its HTML form; problems go into ``errors``."""
    kind = wait.input_type
    if kind == "approval":
        return str(form.get("value") or "")
    if kind == "choice":
        return _choice(wait.spec.get("choices") or [], form.get("choice"), "_form", errors)
    if kind == "text":
        return str(form.get("value") or "")
    if kind == "form":
        out: dict[str, Any] = {}
        for field in wait.spec.get("fields") or []:
            fname = str(field["name"])
            raw = form.get(f"field.{fname}")
            ftype = field.get("type", "text")
            if ftype == "boolean":
                out[fname] = raw == "true"
                continue
            if raw is None or raw == "":
                continue
            text = str(raw)
            if ftype == "integer":
                try:
                    out[fname] = int(text)
                except ValueError:
                    errors[fname] = "must be a whole number"
            elif ftype == "number":
                try:
                    number = float(text)
                    out[fname] = int(number) if number.is_integer() and "." not in text else number
                except ValueError:
                    errors[fname] = "must be a number"
            elif ftype == "choice":
                out[fname] = _choice(field.get("choices") or [], text, fname, errors)
            else:
                out[fname] = text
        return out
    raw = str(form.get("value") or "")
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        errors["_form"] = f"not valid JSON: {exc}"
        return None


def _choice(choices: list[Any], raw: Any, key: str, errors: dict[str, str]) -> Any:
    try:
        return choices[int(str(raw))]
    except (ValueError, IndexError):
        errors[key] = "choose one of the options"
        return None


async def schedule_action(d: Dashboard, request: Request) -> Response:
    name = str(request.path_params["name"])
    verb = str(request.path_params["verb"])
    if verb not in ("enable", "disable", "trigger") or not NAME_RE.match(name):
        from starlette.exceptions import HTTPException

        raise HTTPException(404, "no such schedule action")

    def work(form: FormData) -> str:
        api = getattr(d.app, "schedules", None)
        if api is None:
            raise DurableError("schedules are not available in this version of Durable")
        result = getattr(api, verb)(name)
        return f"{verb}d; run {result}" if verb == "trigger" else f"{verb}d"

    return await act(d, request, f"schedule_{verb}", name, work, "/schedules")


async def bulk(d: Dashboard, request: Request) -> Response:
    form = await request.form()
    action = str(form.get("action") or "")
    ids = [str(i) for i in form.getlist("ids")][: d.bulk_limit]
    results: list[dict[str, str]] = []

    def work(form: FormData) -> Response:
        if action not in ("retry", "cancel"):
            raise DurableError("choose action retry or cancel")
        for run_id in ids:
            if not valid_id(run_id):
                results.append({"id": run_id, "outcome": "error", "detail": "not a valid id"})
                continue
            try:
                if action == "retry":
                    d.app.retry(run_id)
                else:
                    d.app.cancel(run_id, "cancelled from the dashboard (bulk)")
                outcome, detail = "ok", f"{action} done"
            except DurableError as exc:
                outcome, detail = "error", d.error_text(str(exc))
            d.audit(request, f"bulk_{action}", run_id, outcome, detail)
            results.append({"id": run_id, "outcome": outcome, "detail": detail})
        context = {"page": "executions", "action": action, "results": results}
        return d.render(request, "bulk_results.html", context)

    params = {"action": action, "count": len(ids)}
    return await act(d, request, f"bulk_{action or 'unknown'}", None, work, "/executions", params)
