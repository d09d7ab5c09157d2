"""PubSub: lifecycle events on topics scoped per Durable instance.

``PubSub`` is what an app exposes as ``app.pubsub``: the topic functions,
``subscribe``/``unsubscribe``, ``server`` (the bus in use, or None) and the
four broadcast helpers. Broadcasting never raises and never blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import PubSubNotConfiguredError
from . import base
from .base import (
    EVENT_KINDS,
    Bus,
    CommitPublisher,
    Event,
    Subscription,
    default_name,
    inputs_topic,
    schedules_topic,
    workflow_topic,
    workflows_topic,
)
from .memory import MemoryBus

if TYPE_CHECKING:
    from ..storage.base import CommitMessage

__all__ = [
    "EVENT_KINDS",
    "Bus",
    "CommitPublisher",
    "Event",
    "MemoryBus",
    "PubSub",
    "Subscription",
    "default_name",
    "inputs_topic",
    "schedules_topic",
    "workflow_topic",
    "workflows_topic",
]

log = logging.getLogger("durable.pubsub")

Payload = dict[str, Any] | Callable[[], dict[str, Any]]
"""A payload, or a function building it (called only when someone listens)."""


def _ident(payload: Payload, given: str | None, key: str) -> str:
    if given is not None:
        return given
    if callable(payload):
        raise TypeError("pass execution_id= with a lazy payload")
    return str(payload[key])


class PubSub:
    """The contract bound to one instance name and bus (None: switched off)."""

    def __init__(
        self, instance: str, bus: Bus | None, commit: CommitPublisher | None = None
    ) -> None:
        self.instance = instance
        self._bus = bus
        self._commit = commit if bus is not None else None

    @property
    def server(self) -> Bus | None:
        """The bus in use, or None when pub/sub is switched off."""
        return self._bus

    def default_name(self) -> str:
        return default_name(self.instance)

    def workflows_topic(self) -> str:
        return base.workflows_topic(self.instance)

    def workflow_topic(self, execution_id: str) -> str:
        return base.workflow_topic(self.instance, execution_id)

    def schedules_topic(self) -> str:
        return base.schedules_topic(self.instance)

    def inputs_topic(self) -> str:
        return base.inputs_topic(self.instance)

    def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription:
        """Follow a topic; iterate the subscription (sync or async) for events."""
        if self._bus is None:
            raise PubSubNotConfiguredError(
                "no pub/sub is configured for this Durable instance (it was created with pubsub=False)"
            )
        return self._bus.subscribe(topic, buffer=buffer)

    def unsubscribe(self, subscription: Subscription) -> None:
        if self._bus is not None:
            self._bus.unsubscribe(subscription)

    def listening(self, *topics: str) -> bool:
        """Whether publishing to any of ``topics`` can reach anyone (cheap)."""
        bus = self._bus
        if bus is None:
            return False
        check = getattr(bus, "has_subscribers", None)
        return True if check is None else any(check(t) for t in topics)

    def _publish(self, topics: tuple[str, ...], kind: str, payload: Payload) -> None:
        bus = self._bus
        if bus is None or not self.listening(*topics):
            return
        if callable(payload):
            payload = payload()
        for topic in topics:
            try:
                bus.publish(topic, Event(kind, payload, topic))
            except Exception:  # a broken bus must never break the executor
                log.exception("publishing %s to %s failed", kind, topic)

    def broadcast_workflow(
        self, kind: str, payload: Payload, *, execution_id: str | None = None
    ) -> None:
        """To the workflows topic and the execution's own topic."""
        ident = _ident(payload, execution_id, "id")
        self._publish((self.workflows_topic(), self.workflow_topic(ident)), kind, payload)

    def plan_commit(
        self, events: list[tuple[str, dict[str, Any], bool]], execution_id: str
    ) -> tuple[list[CommitMessage], Callable[[], None]] | None:
        """Plan events that travel inside a storage commit, in order.

        ``events`` are (kind, payload, is_workflow_event) of one run. With a bus on
        the storage's own database they are written in the same transaction as the
        state change they announce. Returns the messages for the checkpoint and the
        local delivery to call after the commit, or None (then publish after the
        commit as usual).
        """
        if self._commit is None:
            return None
        run_topic = self.workflow_topic(execution_id)
        planned: list[tuple[tuple[str, ...], Event]] = [
            ((self.workflows_topic(), run_topic) if is_workflow else (run_topic,), Event(k, p))
            for k, p, is_workflow in events
        ]
        return self._commit.commit_messages(run_topic, execution_id, planned)

    def broadcast_step(
        self, kind: str, payload: Payload, *, execution_id: str | None = None
    ) -> None:
        """To the execution's own topic only."""
        ident = _ident(payload, execution_id, "workflow_id")
        self._publish((self.workflow_topic(ident),), kind, payload)

    def broadcast_input(
        self, kind: str, payload: Payload, *, execution_id: str | None = None
    ) -> None:
        """To the inputs topic and the execution's own topic."""
        ident = _ident(payload, execution_id, "workflow_id")
        self._publish((self.inputs_topic(), self.workflow_topic(ident)), kind, payload)

    def broadcast_schedule(self, kind: str, payload: Payload) -> None:
        """To the schedules topic."""
        self._publish((self.schedules_topic(),), kind, payload)
