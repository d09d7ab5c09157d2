"""In-memory storage for unit tests: SQLite's ``:memory:`` database.

It runs the very same SQL as the SQLite backend (so it passes the same contract
suite) without touching the disk. It lives and dies with the process.
"""

from __future__ import annotations

from .sqlite import SqliteStorage


class MemoryStorage(SqliteStorage):
    dialect = "memory"

    def __init__(self) -> None:
        super().__init__(":memory:")
