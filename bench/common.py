"""Shared by the benchmark scripts: a fresh database to measure on."""

from __future__ import annotations

import os
import tempfile

PG_URL = os.environ.get("DURABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database_url(kind: str, name: str) -> str:
    """A new SQLite file in a temporary folder, or a PostgreSQL database ``name``
    (dropped and created again) on the server of ``DURABLE_TEST_POSTGRES_URL``."""
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/{name}.db"
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"
