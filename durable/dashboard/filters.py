"""Executions filters from the URL: validated, typed, and written back to links.

Nothing from the URL reaches SQL except as a bound parameter; this module
refuses what does not look like a status, an id, a time or a JSON search.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ..models import ExecutionStatus
from ..search import parse_search
from ..storage import ExecutionFilter
from ..storage.protocols import JsonMatch

ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
PREFIX_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
NAME_RE = re.compile(r"^[^\x00-\x1f]{1,200}$")
CURSOR_RE = re.compile(r"^\d{1,16}\.[0-9A-Za-z_-]{1,64}$")
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
STATUSES = tuple(s.value for s in ExecutionStatus)


def valid_id(value: str) -> bool:
    return bool(ID_RE.match(value))


def _parse_time(value: str, what: str) -> datetime:
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} must be a date or time like 2026-01-05T09:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunFilter:
    """The Executions page's filter, as kept in the URL."""

    workflow: str | None = None
    statuses: tuple[str, ...] = ()
    window: str | None = None
    since: str | None = None
    until: str | None = None
    id_prefix: str | None = None
    parent: str | None = None
    schedule: str | None = None
    queue: str | None = None
    q: str | None = None
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, params: Mapping[str, Any]) -> RunFilter:
        """Read (and validate) ``?workflow=&status=&status=&window=&since=...``."""
        errors: list[str] = []
        get = params.get

        def text(name: str, pattern: re.Pattern[str]) -> str | None:
            value = (get(name) or "").strip()
            if not value:
                return None
            if not pattern.match(value):
                errors.append(f"{name}: {value[:40]!r} is not valid")
                return None
            return str(value)

        getlist = getattr(params, "getlist", None)
        raw_statuses = getlist("status") if getlist else [get("status")] if get("status") else []
        statuses = []
        for s in raw_statuses:
            if s in STATUSES and s not in statuses:
                statuses.append(s)
            elif s:
                errors.append(f"status: {s[:40]!r} is not one of {', '.join(STATUSES)}")
        window = get("window") or None
        if window is not None and window not in WINDOWS:
            errors.append(f"window: use one of {', '.join(WINDOWS)}")
            window = None
        flt = cls(
            workflow=text("workflow", NAME_RE),
            statuses=tuple(statuses),
            window=window,
            since=text("since", NAME_RE),
            until=text("until", NAME_RE),
            id_prefix=text("id", PREFIX_RE),
            parent=text("parent", ID_RE),
            schedule=text("schedule", NAME_RE),
            queue=text("queue", NAME_RE),
            q=(get("q") or "").strip()[:500] or None,
        )
        try:
            flt.storage_filter(datetime.now(UTC))
            flt.matches()
        except ValueError as exc:
            errors.append(str(exc))
            flt = replace(flt, since=None, until=None, q=None)
        return replace(flt, errors=tuple(errors))

    def matches(self) -> list[JsonMatch]:
        return parse_search(self.q) if self.q else []

    def storage_filter(self, now: datetime) -> ExecutionFilter:
        since = _parse_time(self.since, "since") if self.since else None
        until = _parse_time(self.until, "until") if self.until else None
        if self.window:
            since = now - timedelta(seconds=WINDOWS[self.window])
        return ExecutionFilter(
            workflow=self.workflow,
            statuses=self.statuses or None,
            queue=self.queue,
            parent_id=self.parent,
            schedule=self.schedule,
            since_ms=int(since.timestamp() * 1000) if since else None,
            until_ms=int(until.timestamp() * 1000) if until else None,
            id_prefix=self.id_prefix,
        )

    def pairs(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key, value in (
            ("workflow", self.workflow),
            ("window", self.window),
            ("since", self.since),
            ("until", self.until),
            ("id", self.id_prefix),
            ("parent", self.parent),
            ("schedule", self.schedule),
            ("queue", self.queue),
            ("q", self.q),
        ):
            if value:
                out.append((key, value))
        out.extend(("status", s) for s in self.statuses)
        return out

    def query_string(self, **extra: str | None) -> str:
        pairs = self.pairs() + [(k, v) for k, v in extra.items() if v]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return bool(self.pairs())
