"""Output for the command line: JSON for scripts, tables for people.

Tables use rich when it is installed and stdout is a terminal, and plain
aligned text otherwise (no colours, nothing to strip in a pipe).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ..clock import Clock
from ..errors import DurableError
from ..retention import parse_age


def is_tty() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def emit_json(value: Any) -> None:
    """One JSON document on stdout (sorted keys off: the documented order)."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A table that fits the terminal: rich on a TTY, aligned plain text otherwise."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    if is_tty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # pragma: no cover - rich is an optional extra
            pass
        else:
            t = Table(title=title, header_style="bold", expand=False)
            for h in headers:
                t.add_column(h, overflow="fold")
            for row in cells:
                t.add_row(*row)
            Console().print(t)
            return
    if title:
        click.echo(title)
    if not cells:
        click.echo("  (none)")
        return
    width = shutil.get_terminal_size((160, 20)).columns
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    # shrink the widest column (never the first: it holds ids to copy) to fit
    while sum(widths) + 2 * (len(widths) - 1) > width:
        i = max(range(1, len(widths)), key=lambda k: widths[k], default=0)
        if i == 0 or widths[i] <= 8:
            break
        widths[i] -= 1

    def line(values: Sequence[str]) -> str:
        parts = [_fit(v, widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    click.echo(line(headers))
    for row in cells:
        click.echo(line(row))


def _fit(value: str, width: int) -> str:
    value = value.replace("\n", " ")
    if len(value) > width:
        return value[: max(1, width - 1)] + "…"
    return value.ljust(width)


def heading(text: str) -> None:
    click.secho(text, bold=True, color=is_tty() or None)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def short_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``."""
    if seconds is None:
        return "-"
    s = abs(seconds)
    if s < 120:
        text = f"{s:.0f}s"
    elif s < 7200:
        text = f"{s / 60:.0f}m"
    elif s < 172800:
        text = f"{s / 3600:.0f}h"
    else:
        text = f"{s / 86400:.0f}d"
    return text if seconds >= 0 else f"in {text}"


def now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)


def parse_time(text: str, clock: Clock, option: str, *, future: bool = False) -> datetime:
    """An ISO 8601 time (naive means UTC) or a duration: ``2h`` ago, or with
    ``future``, ``10m`` from now (``+10m`` also works)."""
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        seconds = parse_age(raw.lstrip("+-"), option)
    except DurableError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO 8601 time (2026-01-05T09:00:00Z) nor a duration "
            "(30m, 2h, 7d)",
            param_hint=option,
        ) from None
    delta = timedelta(seconds=seconds)
    base = now(clock)
    return base + delta if future and not raw.startswith("-") else base - delta


def parse_json_value(text: str, option: str) -> Any:
    """JSON text, or ``@path`` to read it from a file; errors say where."""
    source = option
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path!r}: {exc.strerror}", param_hint=option
            ) from None
        source = f"{option} file {path!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            param_hint=option,
        ) from None
