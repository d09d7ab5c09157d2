"""Versioned schema migrations, one folder of numbered ``.sql`` files per dialect."""

from __future__ import annotations

from .sqlfile import migrations

SCHEMA_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS durable_schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)


def split_statements(sql: str) -> list[str]:
    """Split a migration file into statements (files hold no ';' inside literals)."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def pending(dialect: str, applied: set[int]) -> list[tuple[int, str, str]]:
    return [m for m in migrations(dialect) if m[0] not in applied]


def latest_version(dialect: str) -> int:
    all_migrations = migrations(dialect)
    return all_migrations[-1][0] if all_migrations else 0
