"""Who may see and act: the Host allowlist, the auth hook, roles, CSRF tokens and
security headers.

One pure ASGI middleware guards every route: it refuses a ``Host`` header that
is not allowed (DNS rebinding: a page on ``evil.example`` resolved to 127.0.0.1
must not read the dashboard), asks the auth hook who is calling (not for static
assets), resolves the role, mints the CSRF cookie (``Secure`` over HTTPS), and
adds the Content-Security-Policy and friends to every response.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

VIEWER = "viewer"
OPERATOR = "operator"
ROLES = (VIEWER, OPERATOR)
CSRF_COOKIE = "durable_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a name (written to the audit log) and a role (viewer or operator)."""

    name: str
    role: str = OPERATOR

    @property
    def can_act(self) -> bool:
        return self.role == OPERATOR


AuthResult = Principal | str | bool | None
AuthHook = Callable[[Request], AuthResult | Awaitable[AuthResult]]
RolesHook = Mapping[str, str] | Callable[[str], str] | None


class Access:
    """Turns the auth hook's answer into a Principal (or a refusal)."""

    def __init__(self, auth: AuthHook | None, roles: RolesHook, read_only: bool) -> None:
        self.auth = auth
        self.roles = roles
        self.read_only = read_only

    async def identify(self, request: Request) -> Principal | int:
        """The caller, or the HTTP status to refuse with (401 or 403)."""
        if self.auth is None:
            answer: AuthResult = Principal("anonymous", OPERATOR)
        else:
            answer = self.auth(request)  # type: ignore[assignment]
            if inspect.isawaitable(answer):
                answer = await answer
        if answer is None:
            return 401
        if answer is False:
            return 403
        if answer is True:
            answer = "anonymous"
        if isinstance(answer, str):
            answer = Principal(answer, self._role_of(answer))
        if not isinstance(answer, Principal):
            return 403
        if self.read_only or answer.role not in ROLES:
            return Principal(answer.name, VIEWER)
        return answer

    def _role_of(self, name: str) -> str:
        if self.roles is None:
            return OPERATOR
        if callable(self.roles):
            return str(self.roles(name) or VIEWER)
        return str(self.roles.get(name, VIEWER))


class Csrf:
    """Double-submit tokens bound to the caller: HMAC(secret, cookie | principal)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def token(self, cookie: str, principal: Principal) -> str:
        msg = f"{cookie}|{principal.name}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def check(self, cookie: str | None, principal: Principal, sent: str | None) -> bool:
        if not cookie or not sent:
            return False
        return hmac.compare_digest(self.token(cookie, principal), sent)


def relative_path(scope: Scope) -> str:
    """The request path below the dashboard's mount point."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            if name in jar:
                return jar[name].value
    return None


#: the Host names a dashboard answers to by default: loopback only
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class HostAllowlist:
    """Host names (``ops.example.com``), ``*.example.com`` for any subdomain, or
    ``*`` for any host (only behind a proxy that checks Host itself)."""

    def __init__(self, hosts: Sequence[str] | None) -> None:
        chosen = LOOPBACK_HOSTS if hosts is None else tuple(hosts)
        self.hosts = tuple(_bare(h.strip().lower()) for h in chosen if h.strip())
        self.any = "*" in self.hosts

    def allows(self, host_header: str | None) -> bool:
        if self.any:
            return True
        if not host_header:
            return False
        name = _host_name(host_header.strip().lower())
        if name is None:
            return False
        for allowed in self.hosts:
            if allowed.startswith("*."):
                if name.endswith(allowed[1:]) and len(name) > len(allowed) - 1:
                    return True
            elif name == allowed:
                return True
        return False


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _host_name(header: str) -> str | None:
    """The name of a Host header without its port (``[::1]:8080`` -> ``::1``)."""
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return header[1:end]
    name, _, port = header.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Guard:
    """ASGI middleware: check Host on every route, authenticate every route but
    ``/static``; set security headers."""

    def __init__(self, app: ASGIApp, access: Access, hosts: HostAllowlist | None = None) -> None:
        self.app = app
        self.access = access
        self.hosts = hosts or HostAllowlist(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not self.hosts.allows(host):
            shown = (host or "")[:100]
            text = (
                f"host {shown!r} is not allowed for this dashboard (a page on another site "
                "could be reading it: DNS rebinding). If this is your address, allow it: "
                "create_app(..., allowed_hosts=[...]) or durable dashboard --allowed-host NAME"
            )
            response = PlainTextResponse(text, status_code=400)
            await response(scope, receive, _with_headers(send, None, scope))
            return
        path = relative_path(scope)
        if path.startswith("/static/"):
            await self.app(scope, receive, _with_headers(send, None, scope))
            return
        request = Request(scope, receive)
        who = await self.access.identify(request)
        if isinstance(who, int):
            text = "authentication required" if who == 401 else "forbidden"
            response = PlainTextResponse(text, status_code=who)
            await response(scope, receive, _with_headers(send, None, scope))
            return
        cookie = _cookie(scope, CSRF_COOKIE)
        fresh = None
        if not cookie or len(cookie) < 20:
            cookie = fresh = secrets.token_urlsafe(32)
        state = scope.setdefault("state", {})
        state["principal"] = who
        state["csrf_cookie"] = cookie
        await self.app(scope, receive, _with_headers(send, fresh, scope))


def _with_headers(send: Send, fresh_cookie: str | None, scope: Scope) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            extra: list[tuple[bytes, bytes]] = [
                (b"content-security-policy", CSP.encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"same-origin"),
            ]
            if b"cache-control" not in names:
                extra.append((b"cache-control", b"no-store"))
            if fresh_cookie is not None:
                path = scope.get("root_path", "") or "/"
                value = f"{CSRF_COOKIE}={fresh_cookie}; Path={path}; HttpOnly; SameSite=Strict"
                if scope.get("scheme") == "https":
                    value += "; Secure"
                extra.append((b"set-cookie", value.encode()))
            message = {**message, "headers": headers + [h for h in extra if h[0] not in names]}
        await send(message)

    return wrapped


def principal_of(request: Request) -> Principal:
    who: Any = request.state.principal
    assert isinstance(who, Principal)
    return who
