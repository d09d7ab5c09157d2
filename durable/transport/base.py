"""The Transport seam: short text messages on named channels, between processes.

A transport is one backend's way to carry texts: PostgreSQL ``LISTEN/NOTIFY``,
a SQLite file's outbox table and change counter, Redis pub/sub. Worker wake-ups
(``durable.queue.notifiers``) and the event buses (``durable.pubsub.relay``) both
ride on it; the threads that drive it (``durable.transport.threads``) are shared
too. A transport object is used by at most two threads: the sender thread calls
the ``send`` side, the receiver thread the receiving side.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from ..storage.base import CommitMessage

#: the channel of worker wake-ups (texts are ``origin:queue``)
WAKE_CHANNEL = "durable_wake"


class Transport(Protocol):
    #: how log lines name the backend ("postgres", "sqlite", "redis")
    backend: str
    #: this transport's sender id: receivers skip what they sent themselves
    origin: str

    def channel(self, topic: str) -> str:
        """The backend's channel name for a topic (PostgreSQL hashes long ones)."""
        ...

    # ---- the sender thread ----------------------------------------------------------

    def send(self, messages: Sequence[tuple[str, str]]) -> None:
        """Ship (channel, text) pairs, in order, in as few round trips as it can.
        Raises when the backend cannot be reached (the caller logs and drops)."""
        ...

    def commit_messages(self, messages: Sequence[tuple[str, str]]) -> list[CommitMessage] | None:
        """The same messages as records a storage commit on this database writes in its
        own transaction, or None when they cannot travel that way (too large)."""
        ...

    def reset_sender(self) -> None:
        """Forget the sender's connection after a failure (reopened lazily)."""
        ...

    # ---- the receiver thread ----------------------------------------------------------

    def open_receiver(self) -> None:
        """Connect the receiver, listening to nothing yet (called again after a failure)."""
        ...

    def listen(self, add: Collection[str], remove: Collection[str]) -> None:
        """Start and stop listening to channels; returns once the backend confirmed."""
        ...

    def receive(self, timeout: float) -> list[str | None]:
        """The texts that arrived on the channels listened to, waiting at most
        ``timeout`` seconds for the first; None stands for a message that was lost
        (trimmed before it was read). Raises when the connection is lost."""
        ...

    def reset_receiver(self) -> None:
        """Close the receiver's connection after a failure or at the end."""
        ...

    def close(self) -> None:
        """Close the sender's connection (the threads have stopped)."""
        ...
