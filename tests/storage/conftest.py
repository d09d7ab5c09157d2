"""The backend under test: memory, SQLite and PostgreSQL (``any_url``), migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable.storage import StorageBackend, open_storage


@pytest.fixture
def backend(any_url: str) -> Iterator[StorageBackend]:
    storage = open_storage(any_url)
    storage.migrate()
    yield storage
    storage.close()
