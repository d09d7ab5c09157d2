from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable import codec
from durable.errors import SerializationError


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        2**70,
        1.5,
        "héllo",
        [1, [2]],
        {"a": {"b": 1}},
        (1, 2),
        {1, 2},
        frozenset({"x"}),
        datetime(2026, 11, 1, 1, 30, tzinfo=UTC),
        date(2026, 2, 28),
        time(9, 30),
        timedelta(days=1, seconds=3),
        uuid.UUID(int=7),
        Decimal("1.10"),
        b"\x00\x01",
        {"$durable": "dict", "v": 1},
    ],
)
def test_values_round_trip_exactly(value):
    assert codec.decode(codec.encode(value)) == value
    assert type(codec.decode(codec.encode(value))) is type(value)


@pytest.mark.parametrize(
    ("value", "path", "why"),
    [
        ({"items": [1, {"price": float("nan")}]}, "$.items[1].price", "finite"),
        ({1: "a"}, "$", "not a string"),
        ({"s": "a\x00b"}, "$.s", "NUL"),
        ({"when": datetime(2026, 1, 1)}, "$.when", "naive"),
        ({"obj": object()}, "$.obj", "type object"),
    ],
)
def test_refusals_name_the_path(value, path, why):
    with pytest.raises(SerializationError) as info:
        codec.encode(value, "the input")
    assert path in str(info.value) and why in str(info.value)
    assert str(info.value).startswith("the input cannot be stored as JSON")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text().filter(lambda s: "\x00" not in s),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text().filter(lambda s: "\x00" not in s), children)
    ),
    max_leaves=20,
)


@given(json_values)
def test_plain_json_round_trips(value):
    assert codec.decode(codec.encode(value)) == value
