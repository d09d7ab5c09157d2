"""Bad setup gets a clear error: URLs, unreachable databases, unmigrated schemas, bad options."""

from __future__ import annotations

import logging
import time

import pytest

import durable
from durable import Durable, Workflow, step
from durable.errors import ConfigurationError, DurableError, SchemaError, StorageError


def noop(x):
    return x


WF = Workflow("noop", [step(noop)])


def test_unknown_url_scheme():
    with pytest.raises(ConfigurationError, match="unknown database URL scheme 'mysql'"):
        Durable("mysql://localhost/db")
    with pytest.raises(ConfigurationError, match="is not a URL"):
        Durable("durable.db")


def test_sqlite_in_a_missing_folder():
    with pytest.raises(StorageError, match="does not exist"):
        Durable("sqlite:////no/such/folder/x.db")


def test_unreachable_postgres_is_a_clear_error():
    app = Durable(
        "postgresql://postgres@127.0.0.1:1/nowhere",
        workflows=[WF],
        storage_options={"connect_timeout_seconds": 0.5},
    )
    started = time.monotonic()
    with pytest.raises(
        StorageError,
        match=r"cannot reach PostgreSQL at postgresql://postgres@127\.0\.0\.1:1/nowhere",
    ):
        app.start(WF, 1)
    assert time.monotonic() - started < 10
    app.close()


def test_passwords_are_not_shown_in_errors():
    app = Durable(
        "postgresql://bob:s3cret@127.0.0.1:1/x", storage_options={"connect_timeout_seconds": 0.3}
    )
    with pytest.raises(StorageError) as info:
        app.migrate()
    assert "s3cret" not in str(info.value)
    app.close()


def test_unmigrated_database_says_what_to_run(tmp_path):
    app = Durable(f"sqlite:///{tmp_path}/x.db", workflows=[WF], auto_migrate=False)
    with pytest.raises(SchemaError, match=r"pending: 0001_core.*durable migrate --app"):
        app.start(WF, 1)
    assert app.migrate()[0] == "0001_core"
    assert app.get_execution(app.start(WF, 1)).status == "pending"
    app.close()


def test_auto_migrate_is_the_default(tmp_path):
    with Durable(f"sqlite:///{tmp_path}/y.db", workflows=[WF]) as app:
        assert app.pending_migrations()[0] == "0001_core"  # migrated lazily, on first use
        app.start(WF, 1)
        assert app.pending_migrations() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "a:b"}, "without ':'"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds must be a positive"),
        ({"stale_timeout_seconds": 1, "heartbeat_interval_seconds": 2}, "shorter than stale"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigurationError, match=message):
        Durable("memory://", **options)


def test_bad_worker_queues():
    with Durable("memory://", workflows=[WF]) as app:
        with pytest.raises(ConfigurationError, match="concurrency must be an int >= 1"):
            app.worker({"default": 0})
        with pytest.raises(ConfigurationError, match="at least one queue"):
            app.worker({})


def test_a_workflow_named_twice_is_refused():
    other = Workflow("noop", [step(noop, name="other")])
    with pytest.raises(DurableError, match="two different workflows are named 'noop'"):
        Durable("memory://", workflows=[WF, other])


class _DownStorage:
    """Wraps a storage; claims fail as if the database were down."""

    def __init__(self, inner):
        self._inner = inner
        self.calls = 0

    def claim(self, *args):
        self.calls += 1
        raise StorageError("PostgreSQL at db failed: connection refused")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_the_worker_keeps_retrying_with_backoff_when_the_database_is_down(caplog):
    from durable.storage import open_storage

    inner = open_storage("memory://")
    down = _DownStorage(inner)
    app = Durable("memory://", workflows=[WF], storage=down, poll_interval_seconds=0.05)  # type: ignore[arg-type]
    app.migrate()
    with caplog.at_level(logging.WARNING, logger="durable.worker"):
        worker = app.start_worker({"default": 1})
        deadline = time.monotonic() + 5
        while down.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        app.stop_worker(grace_seconds=1)
    assert down.calls >= 3
    messages = [r.getMessage() for r in caplog.records if "claiming failed" in r.getMessage()]
    # at once on a fresh connection (a dropped one is usually cured), then doubling
    assert messages and "retrying in 0.05s" in messages[0] and "retrying in 0.10s" in messages[1]
    del worker
    app.close()


def test_public_names():
    assert sorted(durable.__all__) == sorted(
        [
            "Durable",
            "DurableError",
            "Execution",
            "ExecutionStatus",
            "QueueLimits",
            "Retry",
            "Schedule",
            "StepExecution",
            "Workflow",
            "branch",
            "days",
            "decision",
            "foreach",
            "goto",
            "hours",
            "minutes",
            "parallel",
            "seconds",
            "step",
        ]
    )
    for name in durable.__all__:
        assert getattr(durable, name) is not None


def test_waiting_for_a_run_refuses_a_timeout_that_is_not_seconds():
    with Durable("memory://") as app:
        for bad in ("1", -1, True):
            with pytest.raises(DurableError, match="timeout must be a non-negative number"):
                app.wait_for_completion("any-id", timeout=bad)
            with pytest.raises(DurableError, match="timeout must be a non-negative number"):
                app.result("any-id", timeout=bad)
