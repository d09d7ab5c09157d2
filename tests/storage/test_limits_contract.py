"""Fleet-wide queue limits in the claim, over every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from durable.ids import new_token
from durable.limits import QueueLimits
from durable.storage import Checkpoint, ExecutionFilter, Storage, open_storage
from tests.storage.rows import KNOWN
from tests.storage.test_contract import NOW, execution, save_fields


@pytest.fixture
def store(any_url: str) -> Iterator[Storage]:
    storage = open_storage(any_url)
    storage.migrate()
    yield storage
    storage.close()


def keyed(key: str, **extra) -> dict:
    return execution(limit_keys=json.dumps({"default": key}), **extra)


def claim(store: Storage, limits: QueueLimits, n: int = 10, now: int = NOW, worker: str = "w"):
    return store.claim("default", n, worker, new_token(), now, KNOWN, limits)


def release(store: Storage, row: dict, now: int = NOW, **changes) -> None:
    fields = {"new_token": None, "locked_by": None, "status": "pending", "wake_at": now}
    assert store.save(Checkpoint(save_fields(row, **{**fields, **changes}), now))


def test_global_concurrency_caps_claims_and_ending_a_claim_frees_its_slot(store):
    store.create_executions([execution() for _ in range(5)], NOW)
    limits = QueueLimits(concurrency=2)
    first = claim(store, limits)
    assert len(first) == 2
    assert claim(store, limits) == []
    release(store, first[0], status="completed", wake_at=None)  # terminal
    again = claim(store, limits)
    assert len(again) == 1
    release(store, first[1], status="waiting", wake_at=None)  # a waiting run holds nothing
    release(store, again[0], wake_at=NOW + 60_000)  # nor does a retry-delayed one
    assert len(claim(store, limits)) == 2


def test_stale_recovery_and_released_worker_claims_give_slots_back(store):
    store.create_executions([execution() for _ in range(4)], NOW)
    limits = QueueLimits(concurrency=2)
    assert len(claim(store, limits, worker="dead")) == 2
    assert claim(store, limits, worker="live") == []
    assert len(store.recover_stale(NOW + 1, NOW + 2)) == 2
    taken = claim(store, limits, worker="live", now=NOW + 2)
    assert len(taken) == 2
    assert store.release_worker_claims("live", NOW + 3) == 2
    assert len(claim(store, limits, worker="other", now=NOW + 3)) == 2


def test_per_worker_limit_combines_with_the_global_one(store):
    store.create_executions([execution() for _ in range(5)], NOW)
    limits = QueueLimits(concurrency=3)
    assert len(claim(store, limits, n=1)) == 1
    assert len(claim(store, limits, n=5)) == 2


def test_priority_orders_claims_within_the_limit(store):
    rows = [execution(priority=p) for p in (1, 5, 3)]
    store.create_executions(rows, NOW)
    got = claim(store, QueueLimits(concurrency=1))
    assert [r["priority"] for r in got] == [5]


def test_a_busy_key_holds_back_only_its_own_runs(store):
    # the two highest-priority runs share key a: b and c must not wait behind a
    rows = [keyed("a", priority=9), keyed("a", priority=8), keyed("b"), keyed("c"), keyed("b")]
    store.create_executions(rows, NOW)
    limits = QueueLimits(per_key=1, key=str)
    got = claim(store, limits)
    assert sorted(json.loads(r["limit_keys"])["default"] for r in got) == ["a", "b", "c"]
    assert next(r for r in got if r["priority"] == 9)  # the key's best run went first
    assert claim(store, limits) == []
    release(store, next(r for r in got if r["priority"] == 9), status="completed", wake_at=None)
    more = claim(store, limits)
    assert [r["id"] for r in more] == [rows[1]["id"]]


def test_per_key_limit_counts_runs_claimed_by_other_workers(store):
    store.create_executions([keyed("a") for _ in range(4)] + [execution()], NOW)
    limits = QueueLimits(per_key=2, key=str)
    assert len(claim(store, limits, n=1, worker="w1")) == 1
    got = claim(store, limits, worker="w2")
    # one more of key a, and the unkeyed run (started before the queue had a key)
    assert len(got) == 2
    assert claim(store, limits, worker="w3") == []


def test_rate_limit_is_a_token_bucket_with_a_burst(store):
    store.create_executions([execution() for _ in range(10)], NOW)
    limits = QueueLimits(rate=2, period_seconds=1, burst=2)
    assert len(claim(store, limits)) == 2  # a full bucket: the burst
    assert claim(store, limits) == []
    assert len(claim(store, limits, now=NOW + 500)) == 1  # one token per 500 ms
    assert claim(store, limits, now=NOW + 700) == []
    assert len(claim(store, limits, now=NOW + 1000)) == 1
    assert len(claim(store, limits, now=NOW + 10_000)) == 2  # never more than the burst
    assert claim(store, limits, now=NOW + 5_000) == []  # a clock behind adds nothing


def test_limits_combine(store):
    store.create_executions([keyed(k) for k in "aabbc"], NOW)
    limits = QueueLimits(concurrency=2, per_key=1, key=str, rate=10, burst=5)
    assert len(claim(store, limits)) == 2
    usage = store.queue_usage("default", limits, NOW)
    assert usage["in_use"] == 2 and usage["ready"] == 3 and usage["tokens"] == 3.0
    assert sum(usage["held_back"].values()) == 3


def test_concurrent_claimers_never_exceed_the_global_limit(store):
    store.create_executions([execution() for _ in range(40)], NOW)
    limits = QueueLimits(concurrency=3)
    taken: list[str] = []
    lock = threading.Lock()

    def grab(worker: str) -> None:
        for _ in range(10):
            rows = claim(store, limits, n=2, worker=worker)
            with lock:
                taken.extend(r["id"] for r in rows)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 3


def test_usage_and_hold_reasons(store):
    rows = [keyed("a"), keyed("a"), keyed("b"), keyed("c")]
    store.create_executions(rows, NOW)
    limits = QueueLimits(concurrency=2, per_key=1, key=str)
    got = claim(store, limits)
    assert len(got) == 2
    usage = store.queue_usage("default", limits, NOW)
    assert usage["in_use"] == 2 and usage["ready"] == 2
    assert usage["held_back"] == {"per_key": 1, "concurrency": 1, "rate": 0}
    held = {json.loads(r["limit_keys"])["default"]: r for r in got}
    waiting = [store.get_execution(r["id"]) for r in rows if r["id"] not in {g["id"] for g in got}]
    reasons = {
        json.loads(w["limit_keys"])["default"]: store.hold_reason(w, limits, NOW) for w in waiting
    }
    assert sorted(held) == ["a", "b"]  # in id order: the second a waits for the first
    for key, reason in reasons.items():
        if key == "a":
            assert reason is not None and "per-key limit" in reason and "'a'" in reason
        else:
            assert reason is not None and "concurrency limit" in reason and "2 of 2" in reason
    rate = QueueLimits(rate=1, period_seconds=10)
    store.create_executions([execution(queue="slow"), execution(queue="slow")], NOW)
    assert len(store.claim("slow", 5, "w", new_token(), NOW, KNOWN, rate)) == 1
    slow = store.list_executions(ExecutionFilter(queue="slow"), 10, None)
    pending = [r for r in slow if r["lock_token"] is None]
    reason = store.hold_reason(pending[0], rate, NOW + 1000)
    assert reason is not None and "rate limit" in reason and "9.00s" in reason


def test_key_rate_gives_each_key_its_own_bucket(store):
    rows = [keyed("a"), keyed("a"), keyed("a"), keyed("b"), execution()]
    store.create_executions(rows, NOW)
    limits = QueueLimits(key_rate=1, key=str, period_seconds=1)
    got = claim(store, limits)
    assert sorted(json.loads(r["limit_keys"] or "{}").get("default", "-") for r in got) == [
        "-",
        "a",
        "b",
    ]
    assert claim(store, limits, now=NOW + 999) == []
    usage = store.queue_usage("default", limits, NOW + 999)
    assert usage["ready"] == 2 and usage["held_back"]["per_key"] == 2
    pending = store.get_execution(rows[2]["id"])
    reason = store.hold_reason(pending, limits, NOW + 500)
    assert reason is not None and "per-key rate limit" in reason and "1 run(s) ahead" in reason
    assert [r["id"] for r in claim(store, limits, now=NOW + 1000)] == [rows[1]["id"]]
    assert store.prune_key_buckets("default", NOW + 1000) == 1  # b's bucket is full again
    assert [r["id"] for r in claim(store, limits, now=NOW + 2000)] == [rows[2]["id"]]


def test_key_rate_and_per_key_concurrency_combine(store):
    store.create_executions([keyed("a") for _ in range(3)], NOW)
    limits = QueueLimits(per_key=1, key_rate=10, key=str, burst=3)
    first = claim(store, limits)
    assert len(first) == 1  # tokens for three, a slot for one
    release(store, first[0], status="completed", wake_at=None)
    assert len(claim(store, limits)) == 1
