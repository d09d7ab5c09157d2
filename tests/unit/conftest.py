"""Unit tests run on the in-memory backend; tests/integration re-runs some of them
on a SQLite file and on PostgreSQL by overriding the ``url`` fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def url() -> str:
    return "memory://"
