"""Both dialects' migrations build the same schema: tables, columns, indexes, keys.

A migrated SQLite file and a migrated PostgreSQL database are introspected and
compared. The few differences that are on purpose are listed here with why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from durable.storage import open_storage

#: what only one dialect has, and why
DIALECT_ONLY: dict[str, dict[str, set[str]]] = {
    "sqlite": {
        # the SQLite bus polls an outbox table; PostgreSQL uses NOTIFY (+ a table for big payloads)
        "tables": {"pubsub_outbox", "sqlite_sequence"},  # sqlite_sequence: AUTOINCREMENT's own
        "indexes": {"pubsub_outbox_created"},
    },
    "postgres": {
        "tables": {"pubsub_payloads"},
        # jsonb containment search on input (SQLite's json_extract search has no index)
        "indexes": {"pubsub_payloads_created", "executions_input_jsonb"},
    },
}

Schema = dict[str, Any]


def sqlite_schema(path: str) -> Schema:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables}
        indexes: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        keys: set[tuple[str, tuple[str, ...]]] = set()
        for table in tables:
            for _, name, unique, origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
                cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
                if origin == "c":  # CREATE INDEX
                    indexes[name] = (table, cols, bool(unique))
                else:  # a PRIMARY KEY or UNIQUE constraint
                    keys.add((table, cols))
            pk = tuple(
                r[1]
                for r in sorted(conn.execute(f'PRAGMA table_info("{table}")'), key=lambda r: r[5])
                if r[5]
            )
            if pk:
                keys.add((table, pk))
    finally:
        conn.close()
    return {"tables": set(tables), "columns": columns, "indexes": indexes, "keys": keys}


def postgres_schema(url: str) -> Schema:
    with psycopg.connect(url) as conn:
        conn.execute("SET search_path TO durable")  # Durable's tables live in their own schema
        columns: dict[str, list[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            columns.setdefault(table, []).append(column)
        rows = conn.execute(
            """
            SELECT t.relname, i.relname, x.indisunique,
              EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid),
              ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, pos)
                    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                    ORDER BY k.pos)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relnamespace = current_schema()::regnamespace
            """
        ).fetchall()
    indexes = {}
    keys = set()
    for table, name, unique, constraint, cols in rows:
        if constraint:
            keys.add((table, tuple(cols)))
        else:
            indexes[name] = (table, tuple(cols), bool(unique))
    return {"tables": set(columns), "columns": columns, "indexes": indexes, "keys": keys}


def _without_dialect_only(schema: Schema, dialect: str) -> Schema:
    only = DIALECT_ONLY[dialect]
    return {
        "tables": schema["tables"] - only["tables"],
        "columns": {t: c for t, c in schema["columns"].items() if t not in only["tables"]},
        "indexes": {n: i for n, i in schema["indexes"].items() if n not in only["indexes"]},
        "keys": {k for k in schema["keys"] if k[0] not in only["tables"]},
    }


def test_sqlite_and_postgres_migrations_build_the_same_schema(tmp_path: Path, pg_url: str) -> None:
    path = str(tmp_path / "parity.db")
    storage = open_storage(f"sqlite:///{path}")
    storage.migrate()
    storage.close()
    lite = sqlite_schema(path)
    pg = postgres_schema(pg_url)
    for dialect, schema in (("sqlite", lite), ("postgres", pg)):
        missing = DIALECT_ONLY[dialect]["indexes"] - set(schema["indexes"])
        assert not missing, f"{dialect}: listed as dialect-only but absent: {missing}"
        assert DIALECT_ONLY[dialect]["tables"] <= schema["tables"]
    lite, pg = _without_dialect_only(lite, "sqlite"), _without_dialect_only(pg, "postgres")
    assert sorted(lite["tables"]) == sorted(pg["tables"])
    for table in sorted(lite["tables"]):
        assert lite["columns"][table] == pg["columns"][table], f"columns of {table}"
    assert lite["indexes"] == pg["indexes"]
    assert lite["keys"] == pg["keys"]


def test_the_comparison_sees_a_missing_column(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    storage = open_storage(f"sqlite:///{path}")
    storage.migrate()
    storage.close()
    before = sqlite_schema(path)
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE workers DROP COLUMN running")
        conn.execute("DROP INDEX waits_child")
    after = sqlite_schema(path)
    assert before["columns"]["workers"] != after["columns"]["workers"]
    assert "waits_child" in before["indexes"] and "waits_child" not in after["indexes"]
