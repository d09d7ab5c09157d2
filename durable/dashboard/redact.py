"""The redaction hook: mask chosen keys in every JSON value and log line shown."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "••••••"

RedactHook = Iterable[str] | Callable[[str], bool] | None


class Redactor:
    """``redact=["password", "token"]`` (case-insensitive key names) or
    ``redact=lambda key: ...`` (True masks the key's value)."""

    def __init__(self, hook: RedactHook) -> None:
        self._fn: Callable[[str], bool] | None
        self._keys: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        if hook is None:
            self._fn = None
        elif callable(hook):
            self._fn = hook
        else:
            self._keys = frozenset(str(k).lower() for k in hook)
            self._fn = self._keys.__contains__ if self._keys else None
            if self._keys:
                names = "|".join(re.escape(k) for k in sorted(self._keys, key=len, reverse=True))
                self._pattern = re.compile(
                    rf"""(?i)(["']?\b(?:{names})\b["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;}}&]+)"""
                )

    def masks(self, key: str) -> bool:
        if self._keys:
            return key.lower() in self._keys
        return self._fn is not None and bool(self._fn(key))

    def value(self, value: Any) -> Any:
        """A copy of ``value`` with the values of masked keys replaced, at any depth."""
        if self._fn is None:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (MASK if isinstance(k, str) and self.masks(k) else self._walk(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value

    def text(self, text: str) -> str:
        """Mask ``key=value`` and ``"key": value`` pairs of masked keys in free text."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: m.group(1) + MASK, text)
