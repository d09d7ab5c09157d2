"""Per-step log capture: what a step body logs or prints, kept with its attempt.

While a step body runs, records from stdlib ``logging`` and text written to
``sys.stdout``/``sys.stderr`` are appended to the attempt's ``rt.logs`` (stored
with the step execution). Isolation comes from a context variable: each step
runs in its own thread or asyncio task, so two steps running at once each keep
only their own output, and code outside steps is untouched.

Each entry is ``{"time", "level", "source", "logger", "message"}`` plus
``"truncated": True`` where a message or the entry list was cut short.

Logging records are captured *in addition to* the host's own handlers (your
logging configuration stays in charge of the console and files), and only when
the record's logger lets them through (logger levels are yours). Printed text
is captured instead of printed, unless ``passthrough=True``.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .checks import count
from .codec import scrub
from .errors import ConfigurationError
from .models import ms_to_iso

if TYPE_CHECKING:
    from .runtime import StepRuntime

__all__ = ["LogCapture"]

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_STREAM_LEVEL = {"stdout": "INFO", "stderr": "WARNING"}


@dataclass(frozen=True, slots=True)
class LogCapture:
    """How step output is captured (pass it as ``Durable(..., log_capture=...)``).

    ``level``: the lowest logging level kept. ``logging``/``stdout``/``stderr``:
    which sources to capture. ``passthrough``: printed text still reaches the real
    stream as well. ``max_entries`` per attempt and ``max_message_chars`` per
    entry bound what is stored; what is cut is marked ``truncated``.
    """

    enabled: bool = True
    level: str = "INFO"
    logging: bool = True
    stdout: bool = True
    stderr: bool = True
    passthrough: bool = False
    max_entries: int = 1000
    max_message_chars: int = 4000

    def __post_init__(self) -> None:
        if not isinstance(self.level, str) or self.level.upper() not in _LEVELS:
            raise ConfigurationError(
                f"log_capture level must be one of {', '.join(_LEVELS)}, got {self.level!r}"
            )
        for label, value in (
            ("max_entries", self.max_entries),
            ("max_message_chars", self.max_message_chars),
        ):
            count(value, f"log_capture {label}", error=ConfigurationError)

    @classmethod
    def from_option(cls, option: bool | LogCapture | None) -> LogCapture | None:
        """``True``/``None`` give the defaults, ``False`` switches capture off."""
        if option is None or option is True:
            return cls()
        if option is False:
            return None
        if not isinstance(option, LogCapture):
            raise ConfigurationError(
                f"log_capture takes True, False or a LogCapture, got {option!r}"
            )
        return option if option.enabled else None

    @property
    def levelno(self) -> int:
        return logging.getLevelNamesMapping()[self.level.upper()]

    def hook(self, rt: StepRuntime) -> Any:
        """The capture hook the worker enters around each step body."""
        return _capturing(self, rt)

    def pin(self) -> None:
        """Keep the handler and stream proxies installed (while a worker runs), so
        each step only switches a context variable. Outside steps the proxies pass
        everything through unchanged."""
        _INSTALLER.acquire()

    def unpin(self) -> None:
        _INSTALLER.release()


class _Sink:
    """The entries of one step attempt, with the limits applied."""

    __slots__ = ("config", "dropped", "partial", "rt")

    def __init__(self, config: LogCapture, rt: StepRuntime) -> None:
        self.config = config
        self.rt = rt
        self.dropped = 0
        self.partial: dict[str, str] = {}

    def add(self, level: str, source: str, logger: str | None, message: str) -> None:
        logs = self.rt.logs
        limit = self.config.max_entries
        if len(logs) >= limit:
            self.dropped += 1
            return
        entry: dict[str, Any] = {
            "time": ms_to_iso(self.rt.now_ms()),
            "level": level,
            "source": source,
            "logger": None if logger is None else scrub(logger),
            "message": "",
        }
        message = scrub(message)  # NUL and lone surrogates: kept visible, never refused
        if len(message) > self.config.max_message_chars:
            message = message[: self.config.max_message_chars] + " …"
            entry["truncated"] = True
        entry["message"] = message
        logs.append(entry)

    def write(self, source: str, text: str) -> None:
        buffered = self.partial.get(source, "") + text
        *lines, rest = buffered.split("\n")
        self.partial[source] = rest
        for line in lines:
            self.add(_STREAM_LEVEL[source], source, None, line.rstrip("\r"))

    def close(self) -> None:
        for source in ("stdout", "stderr"):
            rest = self.partial.pop(source, "")
            if rest:
                self.add(_STREAM_LEVEL[source], source, None, rest)
        logs = self.rt.logs
        if self.dropped and logs:
            # the last kept entry gives way to a marker saying how much was cut
            lost = self.dropped + 1
            logs[-1] = {
                "time": ms_to_iso(self.rt.now_ms()),
                "level": "WARNING",
                "source": logs[-1]["source"],
                "logger": "durable.logcapture",
                "message": f"{lost} more entries were not kept (max_entries={self.config.max_entries})",
                "truncated": True,
            }


_ACTIVE: ContextVar[_Sink | None] = ContextVar("durable_log_capture", default=None)


class _CaptureHandler(logging.Handler):
    """Sits on the root logger; sends records of a capturing context to its sink."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _ACTIVE.get()
        if sink is not None and sink.config.logging and record.levelno >= sink.config.levelno:
            try:
                message = record.getMessage()
                if record.exc_info and record.exc_info[0] is not None:
                    message += "\n" + logging.Formatter().formatException(record.exc_info)
                elif record.exc_text:
                    message += "\n" + record.exc_text
            except Exception:
                self.handleError(record)
                return
            sink.add(record.levelname, "logging", record.name, message)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _has_other_handler(record):
            # without us the record would have reached logging.lastResort: keep that
            last.handle(record)


def _has_other_handler(record: logging.LogRecord) -> bool:
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(h, _CaptureHandler) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr while some step captures output."""

    def __init__(self, source: str, target: TextIO) -> None:
        self._source = source
        self._target = target

    def write(self, text: str) -> int:
        sink = _ACTIVE.get()
        if sink is None or not getattr(sink.config, self._source):
            return self._target.write(text)
        sink.write(self._source, text)
        if sink.config.passthrough:
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _Installer:
    """Installs the root handler and the stream proxies while any step captures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._handler = _CaptureHandler(logging.NOTSET)

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            # (re)installed on every acquire: someone may have removed the handler or
            # swapped sys.stdout/sys.stderr since (a test runner, a host's log set-up)
            root = logging.getLogger()
            if self._handler not in root.handlers:
                root.addHandler(self._handler)
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if not isinstance(current, _StreamProxy):
                    setattr(sys, name, _StreamProxy(name, current))

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            logging.getLogger().removeHandler(self._handler)
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if isinstance(current, _StreamProxy):
                    setattr(sys, name, current._target)


_INSTALLER = _Installer()


@contextmanager
def _capturing(config: LogCapture, rt: StepRuntime) -> Iterator[None]:
    sink = _Sink(config, rt)
    _INSTALLER.acquire()
    token = _ACTIVE.set(sink)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        _INSTALLER.release()
        sink.close()
