"""What the codec refuses, and where it says the problem is (no I/O)."""

from __future__ import annotations

import pytest

from durable import Durable, Workflow, codec, step
from durable.errors import ConfigurationError, SerializationError


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "path", "why"),
    [
        ({"a": "x\ud800y"}, "$.a", "lone surrogate"),
        ({"k\x00": 1}, '$["k\\u0000"]', "NUL"),
        ({"k\udcff": 1}, '$["k\\udcff"]', "lone surrogate"),
        ({"list": [1, {"deep": "\x00"}]}, "$.list[1].deep", "NUL"),
        ({"n": 2**4000}, "$.n", "3000 bits"),
        ({"t": ("\x00",)}, "$.t[0]", "NUL"),
    ],
)
def test_refusals_name_the_json_path(value: object, path: str, why: str) -> None:
    with pytest.raises(SerializationError) as info:
        codec.encode(value, "the input")
    assert path in str(info.value) and why in str(info.value)


def test_nesting_deeper_than_the_limit_is_refused_without_recursion_error() -> None:
    assert codec.decode(codec.encode(nested(codec.MAX_DEPTH))) == nested(codec.MAX_DEPTH)
    with pytest.raises(SerializationError, match="nested deeper than 100"):
        codec.encode(nested(codec.MAX_DEPTH + 1))
    with pytest.raises(SerializationError, match="nested deeper"):
        codec.encode(nested(5000))  # far beyond Python's recursion limit
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="nested deeper"):
        codec.encode(cycle)


def test_the_size_limit_is_checked_in_utf8_bytes() -> None:
    small = codec.Codec(max_value_bytes=1024)
    small.encode("x" * 1000)
    with pytest.raises(SerializationError, match="too large to store"):
        small.encode("x" * 1100)
    with pytest.raises(SerializationError, match="too large"):
        small.encode("é" * 600)  # 600 characters, 1200 bytes
    with pytest.raises(SerializationError, match="too large"):
        small.encode({"blob": b"\x01" * 2000})
    with pytest.raises(SerializationError, match="too large"):
        small.encode([["y" * 100] * 5] * 5)  # many small strings add up
    with pytest.raises(SerializationError, match="too large"):
        codec.encode("z" * (codec.DEFAULT_MAX_VALUE_BYTES + 1))


def test_the_size_limit_is_an_option_of_the_app() -> None:
    wf = Workflow("echo", [step(lambda x: x, name="echo")])
    with Durable("memory://", [wf], max_value_bytes=2048) as app:
        app.start(wf, "a" * 2000)
        with pytest.raises(SerializationError, match="2,048"):
            app.start(wf, "a" * 3000)
        assert len(app.list_executions().items) == 1
    for bad in (10, "big", True):
        with pytest.raises(ConfigurationError, match="max_value_bytes"):
            Durable("memory://", [wf], max_value_bytes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "must not be empty"),
        ("a\x00b", "NUL"),
        ("\udc80", "lone surrogate"),
        ("x" * 1001, "the limit is 1000"),
        (7, "must be a string"),
    ],
)
def test_check_text(value: object, why: str) -> None:
    with pytest.raises(SerializationError, match=why):
        codec.check_text(value, "an event name")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, True, 1.5, "3"])
def test_check_int_refuses_what_a_bigint_column_cannot_hold(value: object) -> None:
    with pytest.raises(SerializationError, match="priority"):
        codec.check_int(value, "priority")
    assert codec.check_int(2**63 - 1, "priority") == 2**63 - 1


def test_scrub_keeps_messages_storable() -> None:
    assert codec.scrub("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert codec.text_problem(codec.scrub("\x00\udfff")) is None


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e300])
def test_delays_beyond_a_64_bit_time_are_refused_when_defined(seconds: float) -> None:
    from durable import Retry
    from durable.errors import DefinitionError

    with pytest.raises(DefinitionError, match="timeout"):
        Workflow("w", [step(lambda x: x, name="s")], timeout=seconds)
    with pytest.raises(DefinitionError, match="timeout"):
        Workflow("w", [step(lambda x: x, name="s", timeout=seconds)])
    with pytest.raises(DefinitionError, match="max_delay"):
        Retry(max_delay=seconds)


@pytest.mark.parametrize("name", ["a\x00", "b\udcff"])
def test_definitions_refuse_names_that_cannot_be_stored(name: str) -> None:
    from durable.errors import DefinitionError

    with pytest.raises(DefinitionError, match="refused"):
        Workflow(name, [step(lambda x: x, name="s")])
    with pytest.raises(DefinitionError, match="refused"):
        Workflow("w", [step(lambda x: x, name=name)])
    with pytest.raises(DefinitionError, match="refused"):
        Workflow("w", [step(lambda x: x, name="s")], queue=name)
