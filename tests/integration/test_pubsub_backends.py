"""The cross-process buses (PostgreSQL, SQLite, Redis) against real servers.

Two bus objects stand for two processes: each has its own connections and its
own origin, so everything one publishes reaches the other only through the
backend. ``test_cross_process.py`` does the same with real processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from durable.pubsub import Event, Subscription
from durable.pubsub.postgres import PostgresBus
from durable.pubsub.redis import RedisBus
from durable.pubsub.relay import RelayBus
from durable.pubsub.sqlite import SqliteBus
from durable.storage.sqlite import SqliteStorage
from tests.support.procs import wait_until

REDIS_ENV = "DURABLE_TEST_REDIS_URL"

BusFactory = Callable[[], RelayBus]


def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI") or os.environ.get("DURABLE_REQUIRE_SERVICES"):
            pytest.fail(f"{REDIS_ENV} is not set but CI requires the Redis tests to run")
        pytest.skip(f"set {REDIS_ENV} to run Redis tests")
    return url


@pytest.fixture(params=["postgres", "sqlite", "redis"])
def make_bus(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[BusFactory]:
    """A factory of buses on one backend; every bus made is closed afterwards."""
    made: list[RelayBus] = []
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_url"))

        def new() -> RelayBus:
            return PostgresBus(url)
    elif request.param == "sqlite":
        path = f"{tmp_path}/bus.db"
        storage = SqliteStorage(path)
        storage.migrate()
        storage.close()

        def new() -> RelayBus:
            return SqliteBus(path, poll_interval_seconds=0.01)
    else:
        url = redis_url()
        prefix = f"test:{os.getpid()}:{time.monotonic_ns()}:"

        def new() -> RelayBus:
            return RedisBus(url, channel_prefix=prefix)

    def factory() -> RelayBus:
        bus = new()
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        bus.close()


def collect(sub: Subscription, n: int, timeout: float = 10.0) -> list[Event]:
    out: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        event = sub.get(0.1)
        if event is not None:
            out.append(event)
    return out


def test_events_reach_another_bus_with_the_same_values(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    workflows = subscriber.subscribe("durable:app:workflows")
    own = subscriber.subscribe("durable:app:workflow:r1")
    local = publisher.subscribe("durable:app:workflows")
    payload = {"id": "r1", "workflow_name": "wf", "status": "completed", "n": 3, "x": None}
    for topic in ("durable:app:workflows", "durable:app:workflow:r1"):
        publisher.publish(topic, Event("workflow_completed", payload, topic))
    publisher.publish("durable:app:other", Event("step_started", {"id": "s"}, "durable:app:other"))

    assert collect(workflows, 1) == [Event("workflow_completed", payload, "durable:app:workflows")]
    assert collect(own, 1) == [Event("workflow_completed", payload, "durable:app:workflow:r1")]
    assert [e.kind for e in collect(local, 1)] == ["workflow_completed"]
    # nobody gets its own events a second time through the backend
    subscriber.publish("durable:app:workflows", Event("workflow_started", {"id": "r2"}))
    assert subscriber.flush()
    publisher.publish("durable:app:workflows", Event("workflow_started", {"id": "end"}))
    seen = [e.payload["id"] for e in collect(workflows, 2)]
    assert seen == ["r2", "end"]
    assert sorted(e.payload["id"] for e in collect(local, 2)) == ["end", "r2"]
    assert workflows.drain() == [] and local.drain() == []


def test_a_payload_too_large_for_notify_is_delivered(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    sub = subscriber.subscribe("t")
    big = {"id": "r", "error": {"message": "é" * 9000}}  # > 8000 bytes once encoded
    publisher.publish("t", Event("workflow_failed", big, "t"))
    publisher.publish("t", Event("workflow_started", {"id": "after"}, "t"))
    events = collect(sub, 2)
    assert [e.payload for e in events] == [big, {"id": "after"}]


def test_one_publisher_keeps_its_order(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    sub = subscriber.subscribe("t", buffer=5000)
    for i in range(1000):
        publisher.publish("t", Event("step_started", {"i": i}, "t"))
    events = collect(sub, 1000, timeout=30)
    assert [e.payload["i"] for e in events] == list(range(1000))
    assert sub.dropped == 0


def test_publishers_in_many_threads_lose_nothing(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    sub = subscriber.subscribe("t", buffer=5000)

    def burst(k: int) -> None:
        for i in range(200):
            publisher.publish("t", Event("step_completed", {"k": k, "i": i}, "t"))

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = collect(sub, 800, timeout=30)
    assert sorted((e.payload["k"], e.payload["i"]) for e in events) == [
        (k, i) for k in range(4) for i in range(200)
    ]


def test_unsubscribe_and_close(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    kept, gone = subscriber.subscribe("t"), subscriber.subscribe("t")
    subscriber.unsubscribe(gone)
    publisher.publish("t", Event("workflow_started", {"id": "a"}, "t"))
    assert [e.payload["id"] for e in collect(kept, 1)] == ["a"]
    assert gone.get(0) is None and gone.closed
    subscriber.close()
    assert kept.get(1) is None and kept.closed


def test_publish_never_blocks_when_the_backend_is_down(caplog: pytest.LogCaptureFixture) -> None:
    buses: list[RelayBus] = [
        PostgresBus("postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout_seconds=1),
        RedisBus("redis://127.0.0.1:1/0", connect_timeout_seconds=1),
    ]
    try:
        for bus in buses:
            started = time.monotonic()
            for i in range(10_000):
                bus.publish("t", Event("step_started", {"i": i}, "t"))
            # 10,000 publications are queued, not sent: far below one connect timeout
            assert time.monotonic() - started < 1.0
            assert bus.flush(timeout=30)
        assert "they are dropped" in caplog.text
    finally:
        for bus in buses:
            bus.close()


def test_postgres_listener_reconnects_and_says_so(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    publisher = PostgresBus(pg_url, channel_prefix="test_reconnect:")
    subscriber = PostgresBus(pg_url, channel_prefix="test_reconnect:")
    try:
        sub = subscriber.subscribe("t")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN \"test_reconnect:t\"%%' AND datname = current_database()"
            ).fetchall()
        assert killed
        wait_until(lambda: subscriber.reconnects >= 1, 20, what="the listener to reconnect")
        assert sub.dropped >= 1  # the subscriber is told it may have missed events
        assert "connection lost" in caplog.text
        assert "listening again" in caplog.text
        publisher.publish("t", Event("workflow_started", {"id": "after"}, "t"))
        assert [e.payload["id"] for e in collect(sub, 1)] == ["after"]
    finally:
        publisher.close()
        subscriber.close()


def test_redis_listener_reconnects() -> None:
    import redis

    url = redis_url()
    prefix = f"test:reconnect:{os.getpid()}:"
    publisher = RedisBus(url, channel_prefix=prefix)
    subscriber = RedisBus(url, channel_prefix=prefix)
    try:
        sub = subscriber.subscribe("t")
        redis.Redis.from_url(url).client_kill_filter(_type="pubsub")
        wait_until(lambda: subscriber.reconnects >= 1, 20, what="the listener to reconnect")
        assert sub.dropped >= 1
        publisher.publish("t", Event("workflow_started", {"id": "after"}, "t"))
        assert [e.payload["id"] for e in collect(sub, 1)] == ["after"]
    finally:
        publisher.close()
        subscriber.close()


def test_sqlite_outbox_is_trimmed(tmp_path: object) -> None:
    from durable.testing import FakeClock

    path = f"{tmp_path}/trim.db"
    storage = SqliteStorage(path)
    storage.migrate()
    clock = FakeClock()
    bus = SqliteBus(path, retention_seconds=60, clock=clock)
    try:
        bus.publish("t", Event("workflow_started", {"id": "old"}, "t"))
        assert bus.flush()
        clock.advance(minutes=5)
        bus.publish("t", Event("workflow_started", {"id": "new"}, "t"))
        assert bus.flush()
        with sqlite3.connect(path) as conn:
            bodies = [r[0] for r in conn.execute("SELECT body FROM pubsub_outbox")]
        assert len(bodies) == 1 and '"new"' in bodies[0]
    finally:
        bus.close()
        storage.close()


def test_open_signals_refuses_a_bus_it_cannot_serve(sqlite_url: str) -> None:
    from durable.errors import ConfigurationError
    from durable.signals import open_signals
    from durable.storage import open_storage

    memory = open_storage("memory://")
    with pytest.raises(ConfigurationError, match="needs a SQLite database file"):
        open_signals(memory, name="x", pubsub="sqlite")
    with pytest.raises(ConfigurationError, match="needs a PostgreSQL database"):
        open_signals(memory, name="x", pubsub="postgres")
    with pytest.raises(ConfigurationError, match="unknown pubsub"):
        open_signals(memory, name="x", pubsub="kafka://")
    memory.close()
