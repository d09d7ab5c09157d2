"""PostgreSQL schema isolation: Durable's tables live in their own schema (``durable``
by default), chosen per instance. The name is validated and only ever reaches SQL as
a quoted identifier (psycopg.sql.Identifier) or as a bound parameter.

An older database keeps its tables in ``public``: ``relocate`` moves them (an explicit
``durable migrate``), or the app sets ``schema="public"`` and keeps them where they are.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigurationError, SchemaError
from .sqlfile import migrations

DEFAULT_SCHEMA = "durable"
LEGACY_SCHEMA = "public"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CREATE_TABLE = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", re.IGNORECASE)
MIGRATIONS_TABLE = "durable_schema_migrations"


def check_schema(schema: object) -> str:
    """A schema name: an SQL identifier of letters, digits and _ (at most 63)."""
    if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
        raise ConfigurationError(
            f"schema must be an SQL identifier (a letter or _, then letters, digits or _, "
            f"at most 63), got {schema!r}"
        )
    if schema.lower().startswith("pg_"):
        raise ConfigurationError(f"schema {schema!r}: names starting with pg_ are PostgreSQL's own")
    return schema


def channel_prefix_of(schema: str) -> str:
    """What the NOTIFY channels of a schema start with: nothing for ``durable`` (the
    default) and ``public`` (earlier versions), so the documented channel names hold;
    ``<schema>:`` for any other, so instances in different schemas hear nothing of
    each other."""
    return "" if schema in (DEFAULT_SCHEMA, LEGACY_SCHEMA) else f"{schema}:"


def set_search_path(conn: Any, schema: str) -> None:
    """Point an (autocommit) connection's unqualified names at ``schema`` for its life."""
    from psycopg import sql

    conn.execute(
        "SELECT set_config('search_path', %s, false)", (sql.Identifier(schema).as_string(conn),)
    )


def durable_tables() -> list[str]:
    """Every table the migrations create (the ones a relocation moves)."""
    names = {MIGRATIONS_TABLE}
    for _, _, text in migrations("postgres"):
        names.update(m.group(1).lower() for m in _CREATE_TABLE.finditer(text))
    return sorted(names)


def _has_migrations_table(conn: Any, schema: str) -> bool:
    row = conn.execute(
        "SELECT 1 AS x FROM pg_tables WHERE schemaname = %s AND tablename = %s",
        (schema, MIGRATIONS_TABLE),
    ).fetchone()
    return row is not None


def legacy_tables_waiting(conn: Any, schema: str) -> bool:
    """True when ``schema`` has no Durable tables yet but ``public`` has (an older
    database): migrating would otherwise start an empty schema beside the old runs."""
    if schema == LEGACY_SCHEMA:
        return False
    return not _has_migrations_table(conn, schema) and _has_migrations_table(conn, LEGACY_SCHEMA)


def relocation_name(schema: str) -> str:
    return f"move Durable's tables from schema {LEGACY_SCHEMA} to {schema}"


def refuse_legacy(display: str, schema: str) -> SchemaError:
    return SchemaError(
        f"the database {display} keeps Durable's tables in schema {LEGACY_SCHEMA!r} and "
        f"this app uses schema {schema!r}: run `durable migrate --app ...` once (with the "
        f"old workers stopped) to move them, or create the app with schema={LEGACY_SCHEMA!r} "
        "to keep them where they are"
    )


def relocate(conn: Any, schema: str) -> list[str]:
    """Move every Durable table in ``public`` into ``schema`` (indexes and sequences go
    with their tables). Runs inside the caller's transaction."""
    from psycopg import sql

    moved = []
    for table in durable_tables():
        row = conn.execute(
            "SELECT 1 AS x FROM pg_tables WHERE schemaname = %s AND tablename = %s",
            (LEGACY_SCHEMA, table),
        ).fetchone()
        if row is None:
            continue
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                sql.Identifier(LEGACY_SCHEMA), sql.Identifier(table), sql.Identifier(schema)
            )
        )
        moved.append(table)
    return moved


def create_schema(conn: Any, schema: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
