"""One factory for the signalling layer: worker wake-ups and the event bus.

Both are picked from the storage (its dialect and location, see
``durable.transport.for_storage``) and what the host asked for:

- the notifier: the host's own, else one over the storage's transport
  (PostgreSQL LISTEN/NOTIFY, a SQLite file's change counter), else in-process;
- the bus: ``pubsub=True`` in-process, ``False``/``None`` none, ``"postgres"`` /
  ``"sqlite"`` on the app's own database, a ``postgresql://`` or ``redis://`` URL,
  or the host's own ``Bus`` object. A bus built on the storage's own database is
  also the ``CommitPublisher``: a run's final events travel inside its last commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .errors import ConfigurationError
from .notify import LocalNotifier, Notifier
from .pubsub import Bus, CommitPublisher, MemoryBus
from .queue.notifiers import TransportNotifier
from .storage.base import Storage
from .transport import for_storage


@dataclass(frozen=True, slots=True)
class Signals:
    notifier: Notifier
    bus: Bus | None
    #: the bus, when its events can travel inside the storage's commits
    commit: CommitPublisher | None
    #: whether the app closes the bus (it made it)
    owns_bus: bool


def open_signals(
    storage: Storage,
    *,
    name: str,
    pubsub: bool | str | Bus | None,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
) -> Signals:
    """The notifier and bus of an app named ``name`` on ``storage``."""
    if notifier is None:
        transport = for_storage(storage)
        notifier = LocalNotifier() if transport is None else TransportNotifier(transport)
    bus_name = f"{name}.pubsub"
    if pubsub is True:
        return Signals(notifier, MemoryBus(bus_name), None, True)
    if pubsub is False or pubsub is None:
        return Signals(notifier, None, None, False)
    if not isinstance(pubsub, str):
        return Signals(notifier, pubsub, None, False)
    try:
        bus, commit = _open_bus(pubsub, storage, bus_name, clock)
    except BaseException:
        notifier.close()
        raise
    return Signals(notifier, bus, commit, True)


def _open_bus(
    spec: str, storage: Storage, name: str, clock: Clock | None
) -> tuple[Bus, CommitPublisher | None]:
    if spec == "postgres":
        if storage.dialect != "postgres":
            raise ConfigurationError(
                'pubsub="postgres" needs a PostgreSQL database; pass pubsub="sqlite", '
                "a redis:// URL or a postgresql:// URL instead"
            )
        spec = storage.location
    if spec == "sqlite":
        if storage.dialect != "sqlite" or not storage.location:
            raise ConfigurationError(
                'pubsub="sqlite" needs a SQLite database file; use pubsub=True for one process'
            )
        from .pubsub.sqlite import SqliteBus

        sqlite_bus = SqliteBus(storage.location, name=name, clock=clock)
        return sqlite_bus, sqlite_bus
    if spec.startswith(("postgresql://", "postgres://")):
        from .pubsub.postgres import PostgresBus

        same_database = storage.dialect == "postgres" and storage.location == spec
        schema = getattr(storage, "schema", None) if same_database else None
        pg_bus = PostgresBus(spec, name=name, clock=clock, schema=schema)
        return pg_bus, pg_bus if same_database else None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from .pubsub.redis import RedisBus

        return RedisBus(spec, name=name), None
    raise ConfigurationError(
        f'unknown pubsub {spec!r}; use True (in-process), False, "postgres", "sqlite", '
        "a postgresql:// or redis:// URL, or a Bus object"
    )
