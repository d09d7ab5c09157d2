"""PostgreSQL schema isolation: Durable's tables in their own schema (``durable`` by
default), two schemas in one database sharing nothing, and the upgrade path from an
older database whose tables are in ``public``."""

from __future__ import annotations

import pytest

from durable import Durable, Workflow, step
from durable.errors import ConfigurationError, SchemaError
from durable.storage import open_storage
from durable.testing import run_until_idle
from tests.e2e.cli_support import durable as durable_cli

WF = Workflow("order", [step(lambda x: {"got": x}, name="work")])


def _tables(url: str, schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def test_tables_live_in_the_durable_schema_by_default(empty_pg_url):
    with Durable(empty_pg_url, workflows=[WF]) as app:
        run_id = app.start(WF, 1)
        run_until_idle(app)
        assert app.get_execution(run_id).status == "completed"
        assert app.schema == "durable"
    assert {"executions", "workers", "schedules", "durable_schema_migrations"} <= _tables(
        empty_pg_url, "durable"
    )
    assert _tables(empty_pg_url, "public") == set()


def test_two_schemas_in_one_database_share_nothing(empty_pg_url):
    a = Durable(empty_pg_url, workflows=[WF], schema="svc_a", name="a")
    b = Durable(empty_pg_url, workflows=[WF], schema="svc_b", name="b", pubsub="postgres")
    try:
        in_a = a.start(WF, "a", id="same-id")
        in_b = b.start(WF, "b", id="same-id")  # the same id in another schema: another run
        assert in_a == in_b == "same-id"
        b.schedules.create("nightly", "order", cron="0 3 * * *")
        run_until_idle(a)
        assert a.get_execution("same-id").result == {"got": "a"}
        assert b.get_execution("same-id").status == "pending"  # a's worker did not touch it
        assert a.schedules.list() == [] and len(b.schedules.list()) == 1
        assert len(a.list_executions().items) == 1
        from durable.transport.postgres import PgTransport

        # NOTIFY channels: each schema other than durable/public prefixes its own
        assert PgTransport(empty_pg_url, schema="svc_b").channel("x") == "svc_b:x"
        assert PgTransport(empty_pg_url, schema="svc_a").channel("x") == "svc_a:x"
        assert PgTransport(empty_pg_url).channel("x") == "x"  # durable: documented names
        worker = a.start_worker()
        assert [w["id"] for w in a.query.workers()] == [worker.id]
        assert b.query.workers() == []
    finally:
        a.close()
        b.close()
    assert "executions" in _tables(empty_pg_url, "svc_a") and "executions" in _tables(
        empty_pg_url, "svc_b"
    )


@pytest.mark.parametrize(
    "bad", ["bad-name", "1abc", "x" * 64, 'a"; DROP TABLE executions; --', "pg_mine", "", 7]
)
def test_a_schema_name_that_is_not_an_identifier_is_refused(empty_pg_url, bad):
    with pytest.raises(ConfigurationError, match="schema"):
        Durable(empty_pg_url, schema=bad)
    assert _tables(empty_pg_url, "public") == set()


def test_schema_on_sqlite_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="one database file is one namespace"):
        Durable(f"sqlite:///{tmp_path}/x.db", schema="durable")


def _legacy_database(url: str) -> str:
    """A database as older versions left it: the tables in public, one finished run."""
    with Durable(url, workflows=[WF], schema="public") as old:
        run_id = old.start(WF, "old")
        run_until_idle(old)
    return run_id


def test_upgrade_from_tables_in_public(empty_pg_url):
    old_run = _legacy_database(empty_pg_url)
    with Durable(empty_pg_url, workflows=[WF]) as new:  # default schema: durable
        with pytest.raises(SchemaError, match="durable migrate") as info:
            new.start(WF, "new")
        assert "schema='public'" in str(info.value)
        assert new.pending_migrations() == ["move Durable's tables from schema public to durable"]
        done = new.migrate()
        assert done == ["move Durable's tables from schema public to durable"]
        assert new.get_execution(old_run).result == {"got": "old"}  # nothing lost
        new_run = new.start(WF, "new")
        run_until_idle(new)
        assert new.get_execution(new_run).status == "completed"
        assert new.pending_migrations() == []
    assert _tables(empty_pg_url, "public") == set()


def test_an_old_database_keeps_working_with_schema_public(empty_pg_url):
    old_run = _legacy_database(empty_pg_url)
    with Durable(empty_pg_url, workflows=[WF], schema="public") as app:
        assert app.get_execution(old_run).status == "completed"
        run_until_idle(app)
    assert "executions" in _tables(empty_pg_url, "public")


def test_cli_migrate_moves_and_schema_flag_reads_another_schema(empty_pg_url):
    old_run = _legacy_database(empty_pg_url)
    check = durable_cli(empty_pg_url, "migrate", "--check", "--json")
    assert check.code == 1 and check.json["pending"][0].startswith("move Durable's tables")
    moved = durable_cli(empty_pg_url, "migrate")
    assert moved.code == 0, moved.err
    listed = durable_cli(empty_pg_url, "list", "--json")
    assert [e["id"] for e in listed.json["items"]] == [old_run]
    storage = open_storage(empty_pg_url, schema="other")
    storage.migrate()
    storage.close()
    other = durable_cli(empty_pg_url, "list", "--json", "--schema", "other")
    assert other.code == 0, other.err
    assert other.json["items"] == []
    assert durable_cli(empty_pg_url, "--schema", "other", "list", "--json").json["items"] == []
    bad = durable_cli(empty_pg_url, "list", "--schema", "no-such-thing")
    assert bad.code == 1 and "schema must be an SQL identifier" in bad.err
