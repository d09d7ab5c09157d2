"""JSON codec for inputs, contexts and results: lossless or refused, never pickle.

Plain JSON passes through. A closed set of standard types round-trips through a
tag ``{"$durable": "<type>", "v": ...}``. Anything else is refused with a
:class:`SerializationError` naming the JSON path of the bad value.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from .errors import SerializationError

CODEC = "durable-json/1"
_TAG = "$durable"


def encode(value: Any, where: str = "value") -> str:
    """Encode ``value`` to JSON text; raise SerializationError naming the path."""
    return json.dumps(
        _to_json(value, "$", where), allow_nan=False, ensure_ascii=False, separators=(",", ":")
    )


def decode(text: str | None) -> Any:
    if text is None:
        return None
    return _from_json(json.loads(text))


def roundtrip(value: Any, where: str = "value") -> tuple[str, Any]:
    """Encode then decode, so the first run sees exactly what a replay will."""
    text = encode(value, where)
    return text, decode(text)


def _fail(where: str, path: str, why: str) -> SerializationError:
    return SerializationError(f"{where} cannot be stored as JSON at {path}: {why}")


def _to_json(v: Any, path: str, where: str) -> Any:
    if v is None or isinstance(v, bool | str):
        if isinstance(v, str) and "\x00" in v:
            raise _fail(where, path, "strings may not contain NUL (\\u0000)")
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _fail(where, path, f"{v!r} is not a finite number")
        return v
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, item in v.items():
            if not isinstance(k, str):
                raise _fail(where, path, f"dict key {k!r} is not a string")
            out[k] = _to_json(item, f"{path}.{k}", where)
        if _TAG in out:
            return {_TAG: "dict", "v": out}
        return out
    if isinstance(v, list):
        return [_to_json(item, f"{path}[{i}]", where) for i, item in enumerate(v)]
    if isinstance(v, tuple):
        return {_TAG: "tuple", "v": [_to_json(x, f"{path}[{i}]", where) for i, x in enumerate(v)]}
    if isinstance(v, set | frozenset):
        items = [_to_json(x, f"{path}[{i}]", where) for i, x in enumerate(sorted(v, key=repr))]
        return {_TAG: "frozenset" if isinstance(v, frozenset) else "set", "v": items}
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise _fail(where, path, "naive datetime; make it timezone-aware")
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
        return {_TAG: "decimal", "v": str(v)}
    if isinstance(v, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(v).decode("ascii")}
    raise _fail(where, path, f"values of type {type(v).__name__} are not supported")


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
