"""Shared fixtures: storage URLs for every backend, isolated PostgreSQL databases.

PostgreSQL tests use ``DURABLE_TEST_POSTGRES_URL``; without it they skip,
unless ``CI`` or ``DURABLE_REQUIRE_SERVICES`` is set, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ENV = "DURABLE_TEST_POSTGRES_URL"


def _require_services() -> bool:
    return bool(os.environ.get("DURABLE_REQUIRE_SERVICES") or os.environ.get("CI"))


def _base_pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if _require_services():
            pytest.fail(f"{PG_ENV} is not set but CI requires the PostgreSQL tests to run")
        pytest.skip(f"set {PG_ENV} to run PostgreSQL tests")
    return url


def _with_db(url: str, db: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, made once per test session."""
    import psycopg

    from durable.storage.postgres import PostgresStorage

    url = _base_pg_url()
    name = f"durable_tpl_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    storage = PostgresStorage(_with_db(url, name))
    storage.migrate()
    storage.close()
    yield name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    import psycopg

    url = _base_pg_url()
    name = f"durable_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _with_db(url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database without the Durable schema."""
    import psycopg

    url = _base_pg_url()
    name = f"durable_e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/durable.db"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest) -> str:
    """The same test on every backend: memory, SQLite file, PostgreSQL."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A real database shared across processes: a SQLite file or PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))
