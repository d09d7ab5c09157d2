"""Credentials out of every message: one function, :func:`redact`, for URLs and text.

A database or bus URL may carry a secret in many forms: ``user:password@``,
``:password@`` (Redis), a query parameter (``?password=``, ``?sslpassword=``,
``?passfile=``, ``?sslkey=``, ``?token=``...), or libpq ``key=value`` pairs that
a driver echoes in its errors. :func:`redact` masks all of them, wherever they
appear in a text, and also every literal occurrence of the secrets of the URLs
passed to it (a driver may quote a value on its own). Every page, CLI error and
log line that can hold a URL or a driver's message goes through it.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"

# parameter names that hold a secret (or where one lives): password, sslpassword,
# passfile, pwd, secret, token, api_key, sslkey, access_key, auth, credentials...
_SECRET_NAME = re.compile(r"(?i)pass|pwd|secret|token|key|auth|credential|signature")
# schemes whose user name is not a secret (everywhere else a bare user part may be a token)
_USER_SCHEMES = ("postgres", "postgresql", "redis", "rediss", "sqlite", "unix", "mysql")

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*)://([^\s'\"<>`]*)")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")
_KEY_VALUE = re.compile(
    r"""(?i)\b([a-z_]*(?:pass|pwd|secret|token|key|credential)[a-z_]*)(\s*=\s*)"""
    r"""('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s&;,'"]+)"""
)


def is_secret_name(name: str) -> bool:
    """True if a parameter called ``name`` holds a credential."""
    return bool(_SECRET_NAME.search(unquote(name)))


def redact(text: str, *urls: str | None) -> str:
    """``text`` (a URL, or any message) with every credential masked.

    ``urls`` are the URLs whose secrets must not appear anywhere in ``text``,
    even outside a URL (a driver may quote a password or a parameter alone).
    """
    if not text:
        return text
    out = _URL.sub(_redact_url, text)
    out = _KEY_VALUE.sub(lambda m: m.group(1) + m.group(2) + MASK, out)
    for url in urls:
        for secret in sorted(_secrets_of(url or ""), key=len, reverse=True):
            out = out.replace(secret, MASK)
    return out


def _redact_url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    rest = _QUERY_PARAM.sub(_redact_param, rest)
    at = rest.rfind("@")
    if at < 0:
        return f"{scheme}://{rest}"
    userinfo, host = rest[:at], rest[at + 1 :]
    user, colon, _password = userinfo.partition(":")
    if colon:  # a password may hold / ? # @ unencoded: mask up to the last @
        return f"{scheme}://{user}:{MASK}@{host}"
    if any(c in userinfo for c in "/?#"):  # the @ is in a path or query, not after a user
        return f"{scheme}://{rest}"
    if scheme.lower() in _USER_SCHEMES:
        return f"{scheme}://{user}@{host}"
    return f"{scheme}://{MASK}@{host}"  # a bare user part elsewhere is often a token


def _redact_param(match: re.Match[str]) -> str:
    sep, name, value = match.group(1), match.group(2), match.group(3)
    if value and is_secret_name(name):
        return f"{sep}{name}={MASK}"
    return match.group(0)


def _secrets_of(url: str) -> set[str]:
    """The secret values inside ``url`` (as written and percent-decoded)."""
    found: set[str] = set()
    m = _URL.search(url)
    if m is None:
        return found
    rest = m.group(2)
    for q in _QUERY_PARAM.finditer(rest):
        if is_secret_name(q.group(2)):
            found.add(q.group(3))
    at = rest.rfind("@")
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        if colon:
            found.add(password)
        elif m.group(1).lower() not in _USER_SCHEMES and not any(c in user for c in "/?#"):
            found.add(user)
    found |= {unquote(s) for s in found}
    return {s for s in found if len(s) >= 3 and s != MASK}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (for drivers' loggers,
    which may echo a connection string in their warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()

#: the loggers that may carry a driver's message (filters do not reach child loggers)
DRIVER_LOGGERS = (
    "psycopg",
    "psycopg.pool",
    "redis",
    "durable",
    "durable.worker",
    "durable.pubsub",
    "durable.executor",
    "durable.scheduler",
    "durable.retention",
    "durable.dashboard",
    "durable.transport",
)


def guard_driver_logs(*names: str) -> None:
    """Install the redacting filter on these loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
