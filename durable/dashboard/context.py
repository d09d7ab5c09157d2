"""The dashboard's shared state and rendering helpers (templates, filters, links)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from .. import codec
from ..errors import DurableError
from ..ids import short_id
from ..redaction import redact
from ..storage.protocols import AuditEntry
from .live import Hub
from .redact import Redactor
from .security import CSRF_FIELD, Csrf, Principal, principal_of

if TYPE_CHECKING:
    from ..app import Durable

HERE = Path(__file__).parent


@dataclass
class Dashboard:
    """Everything a handler needs: the Durable app, options and shared services."""

    app: Durable
    templates: Jinja2Templates
    redactor: Redactor
    csrf: Csrf
    hub: Hub
    title: str = "Durable"
    coalesce_seconds: float = 0.25
    stream_lifetime_seconds: float = 60.0
    bulk_limit: int = 500
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.app.clock.now_ms() / 1000, tz=UTC)

    def audit(
        self,
        request: Request,
        action: str,
        target: str | None,
        outcome: str,
        detail: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one audit entry (who, what, when, outcome), with secrets masked."""
        who = principal_of(request)
        shown = self.redactor.value(dict(params)) if params else None
        entry = AuditEntry(
            at=self.app.clock.now_ms(),
            actor=codec.scrub(who.name)[:200],
            role=who.role,
            action=action,
            target=None if target is None else codec.scrub(target)[:200],
            params=_audit_params(shown) if shown else None,
            outcome=outcome,
            detail=codec.scrub(self.error_text(self.redactor.text(detail)))[:2000]
            if detail
            else None,
            remote=request.client.host if request.client else None,
        )
        self.app.storage.dashboard_audit_insert(entry)

    def error_text(self, text: str) -> str:
        """An error message as shown to a viewer: no credential of the database URL
        (or of any URL) in it."""
        return redact(str(text), self.app.url)

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        status_code: int = 200,
    ) -> HTMLResponse:
        who = principal_of(request)
        base = base_path(request)
        full = {
            "who": who,
            "can_act": who.can_act,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf.token(request.state.csrf_cookie, who),
            "base": base,
            "title": self.title,
            "instance": self.app.name,
            "now": self.now(),
            "static": f"{base}/static",
            **context,
        }
        flash = None if request.headers.get("hx-request") else request.cookies.get(FLASH_COOKIE)
        if flash:
            full.setdefault("flash", unquote(flash)[:200])
        response = self.templates.TemplateResponse(request, template, full, status_code=status_code)
        response.headers["vary"] = "HX-Request"
        if flash:  # shown once
            response.delete_cookie(FLASH_COOKIE, path=base or "/")
        return response


FLASH_COOKIE = "durable_flash"


def set_flash(request: Request, response: Response, message: str) -> None:
    """A one-time confirmation ("cancelled", "retried") for the page the action
    redirects to: a short-lived cookie scoped to the dashboard, shown and cleared by
    the next full page."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(message[:200]),
        max_age=60,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
    )


def _audit_params(params: Mapping[str, Any]) -> str:
    """The action's parameters as JSON; a value the codec refuses (the very reason
    the action failed) is recorded as that reason, so the refusal is audited too."""
    try:
        return codec.encode(dict(params), "audit params", max_bytes=64 * 1024)
    except DurableError as exc:
        return codec.encode({"unrecorded": codec.scrub(str(exc))[:500]})


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def link(base: str, path: str, **params: Any) -> str:
    query = urlencode([(k, v) for k, v in params.items() if v not in (None, "", False)])
    return f"{base}{path}" + (f"?{query}" if query else "")


def _dt(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "—"
    if end is None:
        return "…"
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def make_templates(redactor: Redactor) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.autoescape = True

    def pretty(value: Any) -> str:
        return json.dumps(redactor.value(value), indent=2, ensure_ascii=False, default=str)

    env.filters.update(
        dt=_dt,
        iso=_iso,
        duration=lambda a, b=None: _duration(a, b),
        pretty=pretty,
        redact_text=redactor.text,
        short=lambda s: s if s is None else short_id(s),
    )
    env.globals["link"] = link
    return templates


def principal(request: Request) -> Principal:
    return principal_of(request)
