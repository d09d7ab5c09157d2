"""``create_app``: the dashboard as an ASGI app built from a Durable instance."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import actions, pages
from .context import HERE, Dashboard, make_templates
from .filters import valid_id
from .live import CHANNELS, Hub, Listener, stream_events
from .redact import RedactHook, Redactor
from .security import Access, AuthHook, Csrf, Guard, HostAllowlist, RolesHook

if TYPE_CHECKING:
    from ..app import Durable


def create_app(
    durable_app: Durable,
    *,
    auth: AuthHook | None = None,
    roles: RolesHook = None,
    read_only: bool = False,
    redact: RedactHook = None,
    secret_key: bytes | str | None = None,
    title: str = "Durable",
    poll_interval_seconds: float = 1.0,
    coalesce_seconds: float = 0.25,
    stream_lifetime_seconds: float = 60.0,
    bulk_limit: int = 500,
    debug: bool = False,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """Build the dashboard for ``durable_app``; mount it anywhere (``Mount("/ops", app)``).

    ``auth(request)`` is called for every route but static assets and returns a
    :class:`Principal`, a user name, ``True`` (anonymous), ``None`` (401) or
    ``False`` (403); it may be async. ``roles`` maps a user name to ``"viewer"``
    or ``"operator"`` (a dict or a callable; unknown users are viewers); without
    it every authenticated caller is an operator. ``read_only`` makes everyone a
    viewer. ``redact`` lists keys (``["password"]``) or is a callable
    ``key -> bool``; their values are masked on every page, copy and audit entry.
    ``secret_key`` signs CSRF tokens (set it when several dashboard processes
    serve one site; by default a random key per process).
    ``poll_interval_seconds`` is the fallback change detection for runs changed
    in other processes when the bus does not cross processes.
    ``allowed_hosts`` are the names the dashboard answers to (the ``Host`` header,
    port ignored; ``*.example.com`` for subdomains, ``["*"]`` for any): by default
    loopback only (``localhost``, ``127.0.0.1``, ``::1``), so a page on another site
    that resolves its name to 127.0.0.1 (DNS rebinding) gets a 400, not your runs.
    """
    if poll_interval_seconds <= 0 or coalesce_seconds < 0 or stream_lifetime_seconds <= 0:
        from ..errors import ConfigurationError

        raise ConfigurationError(
            "poll_interval_seconds and stream_lifetime_seconds must be positive, "
            "coalesce_seconds zero or more"
        )
    redactor = Redactor(redact)
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    d = Dashboard(
        app=durable_app,
        templates=make_templates(redactor),
        redactor=redactor,
        csrf=Csrf(secret or os.urandom(32)),
        hub=Hub(durable_app, poll_interval_seconds),
        title=title,
        coalesce_seconds=coalesce_seconds,
        stream_lifetime_seconds=stream_lifetime_seconds,
        bulk_limit=bulk_limit,
    )
    durable_app.ready()

    def bind(fn: Callable[..., Any]) -> Callable[..., Any]:
        bound = functools.partial(fn, d)
        functools.update_wrapper(bound, fn)
        return bound

    routes = [
        Route("/", bind(pages.overview), name="overview"),
        Route("/workflows", bind(pages.workflows), name="workflows"),
        Route("/executions", bind(pages.executions), name="executions"),
        Route("/executions/bulk", bind(pages.bulk_preview), name="bulk_preview"),
        Route("/executions/bulk", bind(actions.bulk), methods=["POST"], name="bulk"),
        Route("/executions/{execution_id}", bind(pages.run_page), name="run"),
        Route("/executions/{execution_id}/cancel", bind(actions.cancel), methods=["POST"]),
        Route("/executions/{execution_id}/retry", bind(actions.retry), methods=["POST"]),
        Route("/executions/{execution_id}/events", bind(actions.send_event), methods=["POST"]),
        Route(
            "/executions/{execution_id}/inputs/{name}",
            bind(actions.provide_input),
            methods=["POST"],
        ),
        Route("/inputs", bind(pages.inputs), name="inputs"),
        Route("/events", bind(pages.events), name="events"),
        Route("/schedules", bind(pages.schedules), name="schedules"),
        Route("/schedules/{name}/{verb}", bind(actions.schedule_action), methods=["POST"]),
        Route("/workers", bind(pages.workers), name="workers"),
        Route("/audit", bind(pages.audit), name="audit"),
        Route("/stream", bind(_stream), name="stream"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = d.error_text(exc.detail) if isinstance(exc, HTTPException) else "error"
        if "principal" not in request.state._state:
            return Response(detail, status_code=code, media_type="text/plain")
        return d.render(request, "message.html", {"page": "", "message": detail}, code)

    app = Starlette(
        debug=debug,
        routes=routes,
        middleware=[
            Middleware(
                Guard,
                access=Access(auth, roles, read_only),
                hosts=HostAllowlist(allowed_hosts),
            )
        ],
        exception_handlers={HTTPException: not_found},
    )
    app.state.dashboard = d
    return app


async def _stream(d: Dashboard, request: Request) -> Response:
    """The SSE stream of one page: ``?channels=runs,inputs&run=<id>&run=<id>``."""
    wanted = [c for c in (request.query_params.get("channels") or "").split(",") if c]
    channels = [c for c in wanted if c in CHANNELS] or ["runs"]
    run_ids = [r for r in request.query_params.getlist("run") if valid_id(r)][:25]
    listener = Listener(channels, run_ids)
    events = stream_events(
        d.hub,
        listener,
        coalesce_seconds=d.coalesce_seconds,
        lifetime_seconds=d.stream_lifetime_seconds,
        resumed=bool(request.headers.get("last-event-id")),
        is_disconnected=request.is_disconnected,
    )
    return EventSourceResponse(events, ping=15, headers={"cache-control": "no-store"})
