"""The claim of a queue with fleet-wide limits, inside one transaction.

1. Lock the queue's row in ``limit_buckets`` (PostgreSQL: ``FOR UPDATE``; SQLite:
   the claim's ``BEGIN IMMEDIATE`` already serialises every writer). Limited claims
   of one queue thus take turns across every process, and each one counts the
   slots the ones before it took. Releases need no lock: a release racing a claim
   only makes that claim see one slot too many in use (it takes fewer, never more).
2. How many it may take: the worker's free slots, capped by the free global slots
   (``concurrency`` minus the queue's runs with a claim) and by the whole tokens in
   the queue's bucket (refilled to now).
3. Which: the claimable runs in priority order; with a per-key limit, only runs
   whose key still has a free slot, counting the runs of that key ahead of them.
4. Claim those ids and take their tokens from the bucket, in the same commit.

Another queue's claims do not wait for this lock, and a queue without limits
keeps the one-statement claim.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..limits import QueueLimits
from .base import Row

if TYPE_CHECKING:
    from .tx import Tx


def _count(tx: Tx, name: str, params: dict[str, Any]) -> int:
    row = tx.one(name, params)
    return 0 if row is None else int(row["n"])


def lock_bucket(tx: Tx, params: dict[str, Any], limits: QueueLimits) -> Row:
    """Lock the queue's row (created full on first use) and return it."""
    row = tx.one("limit_bucket_lock", params)
    if row is None:
        tx.run("limit_bucket_create", {**params, "tokens": float(limits.burst)})
        row = tx.one("limit_bucket_lock", params)
    assert row is not None
    return row


def claim_limited(tx: Tx, params: dict[str, Any], limits: QueueLimits) -> list[Row]:
    """Claim up to ``params['claim_limit']`` runs within ``limits`` (see the module doc)."""
    now = int(params["now"])
    bucket = lock_bucket(tx, params, limits)
    want = int(params["claim_limit"])
    if limits.concurrency is not None:
        want = min(want, limits.concurrency - _count(tx, "limit_held", params))
    tokens = 0.0
    if limits.rate is not None:
        tokens = limits.refill(float(bucket["tokens"]), int(bucket["refilled_at"]), now)
        want = min(want, int(tokens))
    if want <= 0:
        return []
    if limits.per_key is None:
        rows = tx.all("claim", {**params, "claim_limit": want})
    else:
        picked = tx.all(
            "limit_ready_by_key", {**params, "claim_limit": want, "per_key": limits.per_key}
        )
        if not picked:
            return []
        ids = json.dumps([r["id"] for r in picked])
        rows = tx.all("claim_ids", {**params, "ids": ids})
    if limits.rate is not None and rows:
        refilled_at = max(now, int(bucket["refilled_at"]))
        tx.run(
            "limit_bucket_set",
            {**params, "tokens": tokens - len(rows), "refilled_at": refilled_at},
        )
    return rows


def queue_usage(tx: Tx, queue: str, limits: QueueLimits, now: int) -> dict[str, Any]:
    """What a limited queue looks like now: slots in use, tokens left and how many
    claimable runs each limit holds back (a run is counted once, under the first
    limit that holds it: per key, then concurrency, then rate)."""
    params = {"claim_queue": queue, "now": now, "per_key": limits.per_key}
    held = _count(tx, "limit_held", params)
    ready = _count(tx, "limit_ready_count", params)
    by_key = 0 if limits.per_key is None else _count(tx, "limit_key_blocked", params)
    eligible = ready - by_key
    free = eligible if limits.concurrency is None else max(0, limits.concurrency - held)
    by_concurrency = max(0, eligible - free)
    tokens: float | None = None
    by_rate = 0
    if limits.rate is not None:
        bucket = tx.one("limit_bucket_read", params)
        tokens = (
            float(limits.burst)
            if bucket is None
            else limits.refill(float(bucket["tokens"]), int(bucket["refilled_at"]), now)
        )
        by_rate = max(0, min(eligible, free) - int(tokens))
    return {
        "limits": limits.describe(),
        "in_use": held,
        "tokens": None if tokens is None else round(tokens, 3),
        "ready": ready,
        "held_back": {"per_key": by_key, "concurrency": by_concurrency, "rate": by_rate},
    }


def hold_reason(tx: Tx, row: Row, limits: QueueLimits, now: int) -> str | None:
    """Which limit holds back a claimable run now, in words (None: none does)."""
    queue = row["queue"]
    params = {"claim_queue": queue, "now": now}
    if limits.per_key is not None:
        key = (json.loads(row["limit_keys"]) if row.get("limit_keys") else {}).get(queue)
        if key is not None:
            keyed = {**params, "key": key}
            held = _count(tx, "limit_held_of_key", keyed)
            ahead = _count(
                tx,
                "limit_ahead_of_key",
                {**keyed, "priority": row["priority"], "wake_at": row["wake_at"], "id": row["id"]},
            )
            if held + ahead >= limits.per_key:
                return (
                    f"held back by the per-key limit of queue {queue!r}: key {key!r} has "
                    f"{held} of {limits.per_key} slots in use and {ahead} run(s) ahead of this one"
                )
    if limits.concurrency is not None:
        held = _count(tx, "limit_held", params)
        if held >= limits.concurrency:
            return (
                f"held back by the concurrency limit of queue {queue!r}: {held} of "
                f"{limits.concurrency} slots in use across the fleet"
            )
    if limits.rate is not None:
        bucket = tx.one("limit_bucket_read", params)
        if bucket is not None:
            tokens = limits.refill(float(bucket["tokens"]), int(bucket["refilled_at"]), now)
            if tokens < 1:
                return (
                    f"held back by the rate limit of queue {queue!r} ({limits.rate:g} per "
                    f"{limits.period_seconds:g}s, burst {limits.burst}): the next token comes "
                    f"in {limits.next_token_seconds(tokens):.2f}s"
                )
    return None
