"""The waiting, control-flow and foreach tests, re-run on a real SQLite file and on
PostgreSQL (the unit suite runs them on the in-memory backend)."""

from __future__ import annotations

import pytest

from tests.unit.test_control_flow import *  # noqa: F403
from tests.unit.test_foreach import *  # noqa: F403
from tests.unit.test_waits import *  # noqa: F403


@pytest.fixture
def url(db_url: str) -> str:
    return db_url
