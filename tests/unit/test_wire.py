"""The wire format's pure parts: channel names, messages, references (no server)."""

from __future__ import annotations

import hashlib
import json

from durable.pubsub import Event, wire
from durable.transport.postgres import channel_name


def test_a_topic_is_its_own_channel_up_to_63_bytes_then_a_hash() -> None:
    fits = "durable:" + "x" * 55
    assert len(fits.encode()) == 63 and channel_name(fits) == fits
    longer = fits + "y"
    expected = "durable:h:" + hashlib.sha256(longer.encode()).hexdigest()[:40]
    assert channel_name(longer) == expected and len(expected) == 50
    # bytes, not characters: 32 two-byte characters pass the limit
    wide = "durable:" + "é" * 28
    assert len(wide) < 63 < len(wide.encode()) and channel_name(wide).startswith("durable:h:")


def test_a_message_names_its_topic_instance_and_time() -> None:
    event = Event("workflow_completed", {"id": "r1", "n": "é"})
    text = wire.encode(event, "durable:shop:workflows", "o1", 1_796_000_000_123)
    assert "\n" not in text and "é" in text  # compact UTF-8 JSON, one line
    assert json.loads(text) == {
        "kind": "workflow_completed",
        "topic": "durable:shop:workflows",
        "instance": "shop",
        "time": "2026-11-30T00:53:20.123000Z",
        "origin": "o1",
        "payload": {"id": "r1", "n": "é"},
    }
    assert wire.instance_of("t") == "" and wire.instance_of("durable:a:workflow:x:y") == "a"


def test_a_large_message_travels_by_reference() -> None:
    text = wire.encode(Event("step_failed", {"id": "s"}), "durable:a:inputs", "o", 0)
    small = wire.by_reference(text, 42)
    message = json.loads(small)
    assert "payload" not in message and message["payload_ref"] == 42
    assert message["kind"] == "step_failed" and message["topic"] == "durable:a:inputs"
    assert wire.payload_ref(small) == 42
    assert wire.payload_ref(text) is None
    # a payload field of the same name does not make a message a reference
    nested = wire.encode(Event("k", {"payload_ref": 7}), "durable:a:inputs", "o", 0)
    assert wire.payload_ref(nested) is None
    assert wire.decode("not json") is None and wire.decode('{"kind": "x"}') is None
