"""Runs no live worker can take: their workflow (or version) is known to no worker that
heart-beats, or no such worker serves their queue. They wait (they are never failed);
``durable status``, ``durable doctor`` and the dashboard name them and say how long."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .storage import Storage


@dataclass(frozen=True, slots=True)
class Unserved:
    workflow: str
    version: str | None
    queue: str
    runs: int
    waiting_seconds: float  # since the oldest of them was due
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "version": self.version,
            "queue": self.queue,
            "runs": self.runs,
            "waiting_seconds": round(self.waiting_seconds, 3),
            "reason": self.reason,
        }

    @property
    def label(self) -> str:
        version = "" if self.version is None else f" v{self.version}"
        return f"{self.workflow}{version}"


def _knows(worker: dict[str, Any], name: str, version: str | None) -> bool:
    text = worker.get("workflows")
    if not text:  # a worker of an older release: it takes every workflow
        return True
    versions = json.loads(text).get(name)
    if versions is None:
        return False
    return version is None or version in versions


def unserved_runs(storage: Storage, now_ms: int, stale_timeout_seconds: float) -> list[Unserved]:
    """Every group of runnable runs that no live worker would claim, oldest first."""
    alive_after = now_ms - int(stale_timeout_seconds * 1000)
    workers = [w for w in storage.list_workers() if w["heartbeat_at"] >= alive_after]
    for w in workers:
        w["queue_names"] = set(json.loads(w["queues"]))
    out = []
    for g in storage.runnable_groups(now_ms):
        name, version, queue = g["workflow_name"], g["workflow_version"], g["queue"]
        knowing = [w for w in workers if _knows(w, name, version)]
        if any(queue in w["queue_names"] for w in knowing):
            continue
        label = name if version is None else f"{name} version {version}"
        if not knowing:
            reason = f"no live worker has the code of {label}"
        else:
            reason = f"the workers that know {label} do not serve queue {queue!r}"
        waited = max(0.0, (now_ms - int(g["due_since"])) / 1000)
        out.append(Unserved(name, version, queue, int(g["n"]), waited, reason))
    return out
