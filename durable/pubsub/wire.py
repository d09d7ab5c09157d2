"""The JSON message every cross-process bus carries (docs/events-wire-format.md).

One message per event and topic, on that topic's own channel::

    {"kind": "workflow_completed", "topic": "durable:shop:workflows",
     "instance": "shop", "time": "2026-12-02T09:00:00.123Z",
     "origin": "3f2a9c...", "payload": {...}}

``origin`` names the publishing process (so it can skip its own messages). A
message too large for PostgreSQL's NOTIFY travels by reference: ``payload`` is
replaced by ``payload_ref``, the id of a ``pubsub_payloads`` row whose ``body``
is the whole message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..models import ms_to_iso
from .base import Event

log = logging.getLogger("durable.pubsub")

_REF_KEY = '"payload_ref":'


def instance_of(topic: str) -> str:
    """The instance a topic belongs to (``durable:<instance>:...``), or ""."""
    parts = topic.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "durable" else ""


def encode(event: Event, topic: str, origin: str, time_ms: int) -> str:
    message = {
        "kind": event.kind,
        "topic": topic,
        "instance": instance_of(topic),
        "time": ms_to_iso(time_ms),
        "origin": origin,
        "payload": event.payload,
    }
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def by_reference(text: str, ref: int) -> str:
    """The small message that stands for ``text`` stored under id ``ref``."""
    message = json.loads(text)
    message.pop("payload", None)
    message["payload_ref"] = ref
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def payload_ref(text: str) -> int | None:
    """The stored message id a by-reference message points to, or None."""
    if _REF_KEY not in text:  # a substring test spares the parse of every message
        return None
    try:
        ref = json.loads(text).get("payload_ref")
    except (ValueError, AttributeError):
        return None
    return ref if isinstance(ref, int) and not isinstance(ref, bool) else None


def decode(text: str) -> dict[str, Any] | None:
    """A message as a dict, or None for text that is not one (logged, skipped)."""
    try:
        value = json.loads(text)
    except ValueError:
        log.warning("pubsub: skipping a message that is not JSON: %.80r", text)
        return None
    if not isinstance(value, dict) or not isinstance(value.get("topic"), str):
        log.warning("pubsub: skipping a message without a topic: %.80r", text)
        return None
    return value
