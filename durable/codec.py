"""JSON codec for inputs, contexts and results: lossless or refused, never pickle.

Plain JSON passes through. A closed set of standard types round-trips through a
tag ``{"$durable": "<type>", "v": ...}``. Anything else is refused with a
:class:`SerializationError` naming the JSON path of the bad value.

What is refused is exactly what either backend cannot hold, so SQLite and
PostgreSQL store the same things: strings or keys with NUL (``\\u0000``) or a
lone surrogate (what ``os.fsdecode`` gives for a non-UTF-8 file name), values
nested deeper than :data:`MAX_DEPTH`, and values whose JSON text is larger than
the size limit (:data:`DEFAULT_MAX_VALUE_BYTES`, set with
``Durable(max_value_bytes=...)``). :func:`check_text` and :func:`check_int` apply
the same rules to names and numbers stored in their own columns.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from .errors import SerializationError

CODEC = "durable-json/1"
_TAG = "$durable"

#: How deep containers (dicts, lists, tuples, sets) may nest in one value.
MAX_DEPTH = 100
#: The default largest JSON text of one value, in UTF-8 bytes (4 MiB).
DEFAULT_MAX_VALUE_BYTES = 4 * 1024 * 1024
#: Integers inside values: at most this many bits (about 900 decimal digits).
MAX_INT_BITS = 3000
#: Integers stored in their own columns (priority, times, counts) are 64-bit.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: The longest name (event, input, wait, queue, schedule name; id) in characters.
MAX_NAME_CHARS = 1000
#: The longest delay or timeout in seconds (about 31,700 years): times are stored
#: as 64-bit epoch milliseconds.
MAX_SECONDS = 10**12

_SURROGATE = re.compile("[\ud800-\udfff]")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL or a lone surrogate), or None."""
    if "\x00" in text:
        return "NUL (\\u0000) cannot be stored"
    if not text.isascii() and _SURROGATE.search(text):
        return (
            "a lone surrogate (not valid Unicode, e.g. an undecodable file name) cannot be stored"
        )
    return None


def scrub(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, for messages and logs
    that must be kept whatever they hold (never for user values: those are refused)."""
    text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def shown(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to about ``limit`` characters (for messages)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def check_text(
    value: Any, where: str, *, empty: bool = False, max_chars: int | None = MAX_NAME_CHARS
) -> str:
    """``value`` if it is a string both backends can store, else SerializationError.

    For names and ids kept in their own columns: ``empty`` allows ``""``;
    ``max_chars`` bounds the length (None: no bound).
    """
    if not isinstance(value, str):
        raise SerializationError(f"{where} must be a string, got {type(value).__name__}")
    if not value and not empty:
        raise SerializationError(f"{where} must not be empty")
    problem = text_problem(value)
    if problem is not None:
        raise SerializationError(f"{where} {shown(value)} is refused: {problem}")
    if max_chars is not None and len(value) > max_chars:
        raise SerializationError(
            f"{where} is {len(value)} characters long; the limit is {max_chars}"
        )
    return value


def storable_text(value: Any) -> bool:
    """True if ``value`` is a string both backends can store (for lookups: an id that
    cannot be stored matches nothing)."""
    return isinstance(value, str) and text_problem(value) is None


def check_int(value: Any, where: str, *, minimum: int = INT64_MIN) -> int:
    """``value`` if it is an int (not a bool) in ``minimum..2**63-1``, else SerializationError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SerializationError(f"{where} must be an integer, got {value!r}")
    if not minimum <= value <= INT64_MAX:
        shown = str(value) if value.bit_length() < 200 else f"a {value.bit_length()}-bit number"
        raise SerializationError(
            f"{where} must be between {minimum} and {INT64_MAX} (64-bit), got {shown}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Codec:
    """The codec with one instance's size limit (``Durable(max_value_bytes=...)``)."""

    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES

    def __post_init__(self) -> None:
        if isinstance(self.max_value_bytes, bool) or not isinstance(self.max_value_bytes, int):
            raise SerializationError("max_value_bytes must be an integer")
        if self.max_value_bytes < 1024:
            raise SerializationError(
                f"max_value_bytes must be at least 1024, got {self.max_value_bytes}"
            )

    def encode(self, value: Any, where: str = "value") -> str:
        return encode(value, where, max_bytes=self.max_value_bytes)

    def roundtrip(self, value: Any, where: str = "value") -> tuple[str, Any]:
        return roundtrip(value, where, max_bytes=self.max_value_bytes)


def encode(value: Any, where: str = "value", *, max_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> str:
    """Encode ``value`` to JSON text; raise SerializationError naming the path."""
    walker = _Walker(where, max_bytes)
    text = json.dumps(
        walker.to_json(value, "$", 0), allow_nan=False, ensure_ascii=False, separators=(",", ":")
    )
    if len(text) * 4 > max_bytes:  # a character is at most 4 bytes in UTF-8
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise walker.too_large(size)
    return text


def decode(text: str | None) -> Any:
    if text is None:
        return None
    return _from_json(json.loads(text))


def roundtrip(
    value: Any, where: str = "value", *, max_bytes: int = DEFAULT_MAX_VALUE_BYTES
) -> tuple[str, Any]:
    """Encode then decode, so the first run sees exactly what a replay will."""
    text = encode(value, where, max_bytes=max_bytes)
    return text, decode(text)


def _key_path(path: str, key: str) -> str:
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


class _Walker:
    """One encoding: the path of each value, its depth and a running size estimate."""

    __slots__ = ("chars", "max_bytes", "where")

    def __init__(self, where: str, max_bytes: int) -> None:
        self.where = where
        self.max_bytes = max_bytes
        self.chars = 0  # characters of strings seen so far: a lower bound of the size

    def fail(self, path: str, why: str) -> SerializationError:
        return SerializationError(f"{self.where} cannot be stored as JSON at {path}: {why}")

    def too_large(self, size: int) -> SerializationError:
        return SerializationError(
            f"{self.where} is too large to store: {size:,} bytes of JSON or more, "
            f"the limit is {self.max_bytes:,} (Durable(max_value_bytes=...)); "
            "store large data elsewhere and pass a reference"
        )

    def text(self, s: str, path: str) -> str:
        problem = text_problem(s)
        if problem is not None:
            raise self.fail(path, problem)
        self.chars += len(s)
        if self.chars > self.max_bytes:
            raise self.too_large(self.chars)
        return s

    def to_json(self, v: Any, path: str, depth: int) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return self.text(v, path)
        if isinstance(v, int):
            if v.bit_length() > MAX_INT_BITS:
                raise self.fail(path, f"integers in values are limited to {MAX_INT_BITS} bits")
            return int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise self.fail(path, f"{v!r} is not a finite number")
            return float(v)
        if isinstance(v, dict | list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                raise self.fail(path, f"nested deeper than {MAX_DEPTH} levels (the limit)")
            return self._container(v, path, depth + 1)
        return self._scalar(v, path)

    def _container(self, v: Any, path: str, depth: int) -> Any:
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, item in v.items():
                if not isinstance(k, str):
                    raise self.fail(path, f"dict key {k!r} is not a string")
                sub = _key_path(path, k)
                problem = text_problem(k)
                if problem is not None:
                    raise self.fail(sub, f"this key is refused: {problem}")
                self.chars += len(k)
                out[k] = self.to_json(item, sub, depth)
            if _TAG in out:
                return {_TAG: "dict", "v": out}
            return out
        if isinstance(v, list):
            return [self.to_json(item, f"{path}[{i}]", depth) for i, item in enumerate(v)]
        if isinstance(v, tuple):
            items = [self.to_json(x, f"{path}[{i}]", depth) for i, x in enumerate(v)]
            return {_TAG: "tuple", "v": items}
        ordered = sorted(v, key=repr)
        items = [self.to_json(x, f"{path}[{i}]", depth) for i, x in enumerate(ordered)]
        return {_TAG: "frozenset" if isinstance(v, frozenset) else "set", "v": items}

    def _scalar(self, v: Any, path: str) -> Any:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise self.fail(path, "naive datetime; make it timezone-aware")
            return {_TAG: "datetime", "v": v.isoformat()}
        if isinstance(v, date):
            return {_TAG: "date", "v": v.isoformat()}
        if isinstance(v, time):
            return {_TAG: "time", "v": v.isoformat()}
        if isinstance(v, timedelta):
            return {_TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]}
        if isinstance(v, uuid.UUID):
            return {_TAG: "uuid", "v": str(v)}
        if isinstance(v, Decimal):
            text = str(v)
            if len(text) > 1000:
                raise self.fail(path, "decimals are limited to 1000 characters")
            self.chars += len(text)
            return {_TAG: "decimal", "v": text}
        if isinstance(v, bytes):
            self.chars += (len(v) + 2) // 3 * 4
            if self.chars > self.max_bytes:
                raise self.too_large(self.chars)
            return {_TAG: "bytes", "v": base64.b64encode(v).decode("ascii")}
        raise self.fail(path, f"values of type {type(v).__name__} are not supported")


_DECODERS: dict[str, Any] = {
    "tuple": lambda v: tuple(_from_json(x) for x in v),
    "set": lambda v: {_from_json(x) for x in v},
    "frozenset": lambda v: frozenset(_from_json(x) for x in v),
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "timedelta": lambda v: timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "uuid": uuid.UUID,
    "decimal": Decimal,
    "bytes": lambda v: base64.b64decode(v),
    "dict": lambda v: {k: _from_json(x) for k, x in v.items()},
}


def _from_json(v: Any) -> Any:
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    if isinstance(v, dict):
        tag = v.get(_TAG)
        if tag is not None and len(v) == 2 and "v" in v:
            return _DECODERS[tag](v["v"])
        return {k: _from_json(x) for k, x in v.items()}
    return v
