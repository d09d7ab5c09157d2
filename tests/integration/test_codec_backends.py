"""Property: whatever the codec accepts, SQLite and PostgreSQL store and give back
identically; whatever it refuses, neither stores. Names too (event names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import Durable, Workflow, codec, step
from durable.errors import SerializationError
from durable.wait import wait_for_event

# every code point, lone surrogates and NUL included
ANY_CHAR = st.characters(codec="utf-8") | st.characters(categories=["Cs"]) | st.just("\x00")
TEXT = st.text(ANY_CHAR, max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(TEXT, children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=12,
)


def nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


NESTED = st.builds(nest, SCALARS, st.integers(min_value=0, max_value=130))


def listen(ctx: Any) -> Any:
    return wait_for_event("go")


ECHO = Workflow("echo", [step(lambda x: x, name="echo")])
LISTEN = Workflow("listen", [step(listen)])


@pytest.fixture
def apps(sqlite_url: str, pg_url: str) -> Iterator[tuple[Durable, Durable]]:
    a = Durable(sqlite_url, [ECHO, LISTEN], pubsub=False)
    b = Durable(pg_url, [ECHO, LISTEN], pubsub=False)
    yield a, b
    a.close()
    b.close()


def _store_and_read(app: Durable, value: Any) -> Any:
    run_id = app.start(ECHO, value)
    got = app.get_execution(run_id)
    return got.input, got.context


_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(value=VALUES | NESTED)
def test_accepted_values_round_trip_identically_on_both_backends(
    apps: tuple[Durable, Durable], value: Any
) -> None:
    try:
        expected = codec.roundtrip(value)[1]
    except SerializationError:
        before = [len(a.list_executions(limit=1000).items) for a in apps]
        for app in apps:
            with pytest.raises(SerializationError):
                app.start(ECHO, value)
        assert [len(a.list_executions(limit=1000).items) for a in apps] == before
        return
    sqlite_side, pg_side = (_store_and_read(app, value) for app in apps)
    assert codec.encode(sqlite_side[0]) == codec.encode(pg_side[0]) == codec.encode(expected)
    assert sqlite_side == pg_side


@_SETTINGS
@given(name=TEXT)
def test_event_names_are_accepted_or_refused_alike(
    apps: tuple[Durable, Durable], name: str
) -> None:
    outcomes = []
    for app in apps:
        run_id = app.start(LISTEN, None)
        try:
            app.send_event(run_id, name, {"n": name})
        except SerializationError:
            outcomes.append("refused")
            assert app.list_pending_events(execution_id=run_id) == []
        else:
            outcomes.append("stored")
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "refused") == (not name or codec.text_problem(name) is not None)
