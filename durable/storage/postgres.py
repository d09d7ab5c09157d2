"""PostgreSQL backend: psycopg 3 with a connection pool; claims use SKIP LOCKED."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError, SchemaError, StorageError, WriteRejectedError
from ..redaction import DRIVER_LOGGERS, guard_driver_logs, redact
from . import pgschema
from .base import Checkpoint, KnownWorkflows, Row
from .migrations import SCHEMA_TABLE_SQL, pending, split_statements
from .params import check_params
from .sql_base import SqlStorage
from .sqlfile import load_queries, to_pyformat

try:
    import psycopg
    import psycopg.conninfo
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]

_MIGRATION_LOCK = 7_311_942_001
_STEP_KEYS = (
    "id",
    "step_name",
    "step_type",
    "status",
    "attempt",
    "result",
    "error",
    "logs",
    "started_at",
    "completed_at",
    "duration_ms",
    "next_retry_at",
)  # pg_advisory_xact_lock key for migrations


_NOBODY = KnownWorkflows.of({})


class _PgTx:
    __slots__ = ("_conn", "_queries")

    def __init__(self, conn: Any, queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries

    def run(self, name: str, params: dict[str, Any]) -> int:
        check_params(name, params)
        return int(self._conn.execute(self._queries[name], params).rowcount)

    def all(self, name: str, params: dict[str, Any]) -> list[Row]:
        check_params(name, params)
        return list(self._conn.execute(self._queries[name], params).fetchall())

    def one(self, name: str, params: dict[str, Any]) -> Row | None:
        check_params(name, params)
        row = self._conn.execute(self._queries[name], params).fetchone()
        return None if row is None else dict(row)


class PostgresStorage(SqlStorage):
    """Storage in a PostgreSQL database (``postgresql://user@host/db``), its tables in
    their own schema (``durable`` unless ``schema=`` says otherwise)."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 20,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        if psycopg is None:
            raise ConfigurationError(
                "PostgreSQL support needs psycopg: pip install 'durable[postgres]'"
            )
        self.schema = pgschema.check_schema(pgschema.DEFAULT_SCHEMA if schema is None else schema)
        self.url = url
        self.location = url
        self._display = redact(url)
        guard_driver_logs(*DRIVER_LOGGERS)
        check_conninfo(url)
        self._queries = {k: to_pyformat(v) for k, v in load_queries("postgres").items()}
        self._timeout = connect_timeout_seconds
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, pool_size),
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            timeout=connect_timeout_seconds,
            open=False,
            name="durable",
        )
        self._checking = threading.Lock()
        self._probed = False
        self._pool.open(wait=False)

    def _configure(self, conn: Any) -> None:
        pgschema.set_search_path(conn, self.schema)

    def _fail_fast(self) -> None:
        """On first use: a database that does not exist or refuses our credentials will
        not get better, so say so at once, in PostgreSQL's own words, instead of waiting
        out the pool's timeout (a server that is down may come back: that one waits)."""
        if self._probed:
            return
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self._timeout))).close()
        except psycopg.OperationalError as exc:
            if _is_permanent(str(exc)):
                raise StorageError(f"PostgreSQL at {self._display}: {_one_line(exc)}") from exc
            return  # unreachable for now: probe again next time
        self._probed = True

    def _purge_broken(self) -> None:
        """A connection was lost (a server restart, connections terminated): the idle
        ones in the pool most likely went with it. Test them all now, so the next
        operations get live connections instead of failing one by one."""
        if not self._checking.acquire(blocking=False):
            return  # another thread is at it
        try:
            self._pool.check()
        except Exception:  # the server is away: the pool reconnects in its own time
            pass
        finally:
            self._checking.release()

    def _unreachable(self, exc: Exception) -> StorageError:
        """Why no pooled connection came: the driver's own reason when it can be had."""
        reason = _one_line(exc)
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self._timeout))).close()
        except psycopg.Error as probe:
            reason = _one_line(probe)
        return StorageError(
            f"cannot reach PostgreSQL at {self._display} within {self._timeout:g}s: {reason}"
        )

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        self._fail_fast()
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise self._unreachable(exc) from exc
        except psycopg.DataError as exc:
            raise WriteRejectedError(
                f"PostgreSQL at {self._display} refused a value: {_one_line(exc)}"
            ) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise SchemaError(
                f"the database {self._display} has no Durable schema ({_one_line(exc)}); "
                "run `durable migrate --app ...` or create the app with auto_migrate=True"
            ) from exc
        except psycopg.OperationalError as exc:
            self._purge_broken()
            raise StorageError(f"PostgreSQL at {self._display} failed: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL error on {self._display}: {_one_line(exc)}") from exc

    @contextmanager
    def _tx(self) -> Iterator[_PgTx]:
        with self._conn() as conn, conn.transaction():
            yield _PgTx(conn, self._queries)

    @contextmanager
    def _read(self) -> Iterator[_PgTx]:
        with self._conn() as conn:
            yield _PgTx(conn, self._queries)

    @contextmanager
    def _auto(self) -> Iterator[_PgTx]:
        with self._conn() as conn:  # autocommit: one statement is its own transaction
            yield _PgTx(conn, self._queries)

    def save(self, checkpoint: Checkpoint) -> bool:
        """One round trip for the common checkpoint (at most one step row, and the
        NOTIFYs of events that travel with it)."""
        cp = checkpoint
        if cp.waits or cp.children or cp.notify_parent or cp.reset_waits_of or len(cp.steps) > 1:
            return super().save(cp)
        step = cp.steps[0] if cp.steps else {}
        params: dict[str, Any] = {
            **cp.execution,
            "now": cp.now,
            "cleanup": 1 if cp.cleanup_waits else 0,
            "n_channels": [m.channel for m in cp.messages],
            "n_texts": [m.text for m in cp.messages],
            "claim_queue": cp.claim_next[0] if cp.claim_next else "",
            "worker_id": cp.claim_next[1] if cp.claim_next else "",
            "claim_token": cp.claim_next[2] if cp.claim_next else "",
            "claim_limit": 1 if cp.claim_next else 0,
            **self.known_params(cp.claim_next[3] if cp.claim_next else _NOBODY),
        }
        for key in _STEP_KEYS:
            params[f"s_{key}"] = step.get(key)
        with self._auto() as tx:
            row = tx.one("save_fast", params)
        if row is None or row["n"] != 1:
            return False
        if row["next_row"] is not None:
            cp.claimed = [dict(row["next_row"])]
        return True

    def known_params(self, known: KnownWorkflows) -> dict[str, Any]:
        return {"known_names": list(known.names), "known_versions": list(known.versions)}

    def connection(self) -> Any:
        """A pooled connection context manager (for LISTEN/NOTIFY helpers)."""
        return self._conn()

    # ---- schema -------------------------------------------------------------

    def _applied(self, conn: Any) -> set[int]:
        exists = conn.execute("SELECT to_regclass('durable_schema_migrations') AS t").fetchone()
        if exists is None or exists["t"] is None:
            return set()
        rows = conn.execute("SELECT version FROM durable_schema_migrations").fetchall()
        return {int(r["version"]) for r in rows}

    def pending_migrations(self) -> list[str]:
        with self._conn() as conn:
            if pgschema.legacy_tables_waiting(conn, self.schema):
                return [pgschema.relocation_name(self.schema)]
            applied = self._applied(conn)
        return [name for _, name, _ in pending("postgres", applied)]

    def migrate(self, *, relocate: bool = False) -> list[str]:
        """Create the schema and apply pending migrations. When the tables are still in
        ``public`` (an older database), move them first if ``relocate`` (an explicit
        ``durable migrate``), else refuse: an empty schema beside the old runs would
        hide them."""
        done: list[str] = []
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            if pgschema.legacy_tables_waiting(conn, self.schema):
                if not relocate:
                    raise pgschema.refuse_legacy(self._display, self.schema)
                pgschema.create_schema(conn, self.schema)
                pgschema.relocate(conn, self.schema)
                done.append(pgschema.relocation_name(self.schema))
            pgschema.create_schema(conn, self.schema)
            conn.execute(SCHEMA_TABLE_SQL)
            for version, name, sql in pending("postgres", self._applied(conn)):
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO durable_schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, int(time.time() * 1000)),
                )
                done.append(name)
        return done

    def close(self) -> None:
        self._pool.close()


def check_conninfo(url: str) -> None:
    """Refuse a malformed URL now, with the credentials masked (libpq's own parse
    errors quote the whole URL, and the pool would log them from its thread)."""
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"cannot read the PostgreSQL URL {redact(url, url)}: {redact(str(exc), url)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    """libpq's messages span lines (a tab-indented hint): one line for logs and the CLI,
    with no credential in it."""
    return redact(" ".join(str(exc).split()))


def _is_permanent(text: str) -> bool:
    return any(
        marker in text
        for marker in ("does not exist", "authentication failed", "no password supplied")
    )
