"""The claim of a queue with fleet-wide limits, inside one transaction.

1. Lock the queue's row in ``limit_buckets`` (PostgreSQL: ``FOR UPDATE``; SQLite:
   the claim's ``BEGIN IMMEDIATE`` already serialises every writer). Limited claims
   of one queue thus take turns across every process, and each one counts the
   slots the ones before it took. Releases need no lock: a release racing a claim
   only makes that claim see one slot too many in use (it takes fewer, never more).
2. How many it may take: the worker's free slots, capped by the free global slots
   (``concurrency`` minus the queue's runs with a claim) and by the whole tokens in
   the queue's bucket (refilled to now).
3. Which: the claimable runs in priority order; with per-key limits, only runs
   whose key still has a free slot and a token, counting the runs of that key
   ahead of them.
4. Claim those ids and take their tokens from the buckets, in the same commit.

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
    if not limits.keyed:
        rows = tx.all("claim", {**params, "claim_limit": want})
    else:
        picked = tx.all("limit_ready_by_key", {**key_params(limits, params), "claim_limit": want})
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
    if limits.key_rate is not None and rows:
        _take_key_tokens(tx, params, limits, rows)
    return rows


def key_params(limits: QueueLimits, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of the per-key fragments (sql/limits.sql)."""
    return {
        **params,
        "per_key": limits.per_key,
        "key_rate": None if limits.key_rate is None else limits.key_tokens_per_ms,
        "burst": limits.burst,
    }


def _run_key(row: Row, queue: str) -> str | None:
    keys = json.loads(row["limit_keys"]) if row.get("limit_keys") else {}
    key = keys.get(queue)
    return key if isinstance(key, str) else None


def _take_key_tokens(tx: Tx, params: dict[str, Any], limits: QueueLimits, rows: list[Row]) -> None:
    """One token from the bucket of each claimed run's key (created full on first use)."""
    now = int(params["now"])
    taken: dict[str, int] = {}
    for row in rows:
        key = _run_key(row, params["claim_queue"])
        if key is not None:
            taken[key] = taken.get(key, 0) + 1
    for key, n in sorted(taken.items()):
        keyed = {**params, "key": key}
        bucket = tx.one("limit_key_bucket_read", keyed)
        if bucket is None:
            tokens, refilled_at = float(limits.burst), now
        else:
            refilled_at = max(now, int(bucket["refilled_at"]))
            tokens = limits.refill(
                float(bucket["tokens"]), int(bucket["refilled_at"]), now, key=True
            )
        tx.run("limit_key_bucket_set", {**keyed, "tokens": tokens - n, "refilled_at": refilled_at})


def queue_usage(tx: Tx, queue: str, limits: QueueLimits, now: int) -> dict[str, Any]:
    """What a limited queue looks like now: slots in use, tokens left and how many
    claimable runs each limit holds back (a run is counted once, under the first
    limit that holds it: per key, then concurrency, then rate)."""
    params = key_params(limits, {"claim_queue": queue, "now": now})
    held = _count(tx, "limit_held", params)
    ready = _count(tx, "limit_ready_count", params)
    by_key = _count(tx, "limit_key_blocked", params) if limits.keyed else 0
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
    key = _run_key(row, queue) if limits.keyed else None
    if key is not None:
        keyed = {**params, "key": key}
        place = {"priority": row["priority"], "wake_at": row["wake_at"], "id": row["id"]}
        ahead = _count(tx, "limit_ahead_of_key", {**keyed, **place})
        if limits.per_key is not None:
            held = _count(tx, "limit_held_of_key", keyed)
            if held + ahead >= limits.per_key:
                return (
                    f"held back by the per-key limit of queue {queue!r}: key {key!r} has "
                    f"{held} of {limits.per_key} slots in use and {ahead} run(s) ahead of this one"
                )
        bucket = tx.one("limit_key_bucket_read", keyed) if limits.key_rate is not None else None
        if bucket is not None:
            tokens = limits.refill(
                float(bucket["tokens"]), int(bucket["refilled_at"]), now, key=True
            )
            if tokens - ahead < 1:
                return (
                    f"held back by the per-key rate limit of queue {queue!r} "
                    f"({limits.key_rate:g} per {limits.period_seconds:g}s per key): key {key!r} "
                    f"has {ahead} run(s) ahead of this one and its next token comes in "
                    f"{limits.next_token_seconds(tokens - ahead, key=True):.2f}s"
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
