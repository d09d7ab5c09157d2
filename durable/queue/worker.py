"""A worker: named queues with a concurrency limit each, run in a bounded thread pool.

Threads: one poller (claims in batches, sleeps on the notifier with a polling
fallback), one heartbeat (worker row + all its claims in one statement) and
one maintenance loop (recovers stale claims, runs registered hooks).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

from ..checks import count
from ..engine import Engine
from ..errors import ConfigurationError, DurableError
from ..executor.runner import Runner
from ..executor.steps import CaptureHook, StepInvoker
from ..ids import new_token
from ..limits import describe_served, fleet_mismatches
from ..storage import Row

log = logging.getLogger("durable.worker")

MaintenanceHook = Callable[[], None]
# a loop run in its own thread while the worker runs; it returns once the event is set
BackgroundLoop = Callable[[threading.Event], None]


def _check_queues(queues: Mapping[str, int]) -> dict[str, int]:
    if not queues:
        raise ConfigurationError("a worker needs at least one queue")
    out = {}
    for name, limit in queues.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"queue names must be non-empty strings, got {name!r}")
        out[name] = count(limit, f"queue {name!r}: concurrency", error=ConfigurationError)
    return out


class Worker:
    def __init__(
        self,
        engine: Engine,
        queues: Mapping[str, int],
        *,
        worker_id: str | None = None,
        capture: CaptureHook | None = None,
        children_threads: int = 16,
        claim_batch: int = 20,
    ) -> None:
        self.engine = engine
        self.queues = _check_queues(queues)
        host = socket.gethostname()
        self.id = worker_id or f"{host}:{os.getpid()}:{new_token()[:6]}"
        self._host = host
        self.claim_batch = claim_batch
        self.invoker = StepInvoker(capture)
        total = sum(self.queues.values())
        self._pool = concurrent.futures.ThreadPoolExecutor(total, thread_name_prefix="durable-run")
        self._children = concurrent.futures.ThreadPoolExecutor(
            children_threads, thread_name_prefix="durable-par"
        )
        self._stopping = threading.Event()
        self.runner = Runner(engine, self.invoker, self._children, self._stopping.is_set)
        self._running = dict.fromkeys(self.queues, 0)
        self._backlog = dict.fromkeys(self.queues, False)
        self._lock = threading.Lock()
        self._wake = engine.notifier.listener()
        self._threads: list[threading.Thread] = []
        self.maintenance_hooks: list[MaintenanceHook] = []
        self.background_loops: list[tuple[str, BackgroundLoop]] = []
        self._idle = threading.Condition(self._lock)
        self._next_poll = engine.config.poll_interval_seconds
        self._limits_json = describe_served(engine.limits, self.queues)
        self._reported: set[str] = set()

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> Worker:
        if self._threads:
            return self
        self._beat_safely()
        for target, name in (
            (self._poll_loop, "poller"),
            (self._heartbeat_loop, "heartbeat"),
            (self._maintenance_loop, "maintenance"),
        ):
            thread = threading.Thread(target=target, name=f"durable-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for name, loop in self.background_loops:
            thread = threading.Thread(
                target=loop, args=(self._stopping,), name=f"durable-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("worker %s started on queues %s", self.id, self.queues)
        return self

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop claiming; let in-flight steps finish (up to ``grace_seconds``), then
        release what is left so another worker picks it up at once."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.set()
        with self._idle:
            self._idle.wait_for(lambda: not any(self._running.values()), timeout=grace_seconds)
        try:
            released = self.engine.storage.release_worker_claims(
                self.id, self.engine.clock.now_ms()
            )
            if released:
                log.warning(
                    "worker %s released %d claims still in flight at shutdown", self.id, released
                )
                self.engine.notifier.notify("*")
            self.engine.storage.remove_worker(self.id)
        except DurableError:
            log.exception("worker %s: could not release its claims (they will go stale)", self.id)
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._children.shutdown(wait=False, cancel_futures=True)
        self.invoker.close()
        log.info("worker %s stopped", self.id)

    @property
    def running(self) -> int:
        return sum(self._running.values())

    # ---- claiming -------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what is runnable now and run it in this thread; return how many runs."""
        count = 0
        for queue, limit in self.queues.items():
            for row in self._claim(queue, limit):
                self._running[queue] += 1
                self._run(queue, row)
                count += 1
        return count

    def _claim(self, queue: str, limit: int) -> list[Row]:
        now = self.engine.clock.now_ms()
        limits = self.engine.limits.get(queue)
        known = self.engine.known()
        return self.engine.storage.claim(queue, limit, self.id, new_token(), now, known, limits)

    def _limited_wait(self, queue: str, want: int, got: int, wait: float) -> float:
        """A rate-limited queue that gave fewer runs than asked: poll again when its
        next token is due rather than after the full poll interval."""
        limits = self.engine.limits.get(queue)
        if limits is None or got >= want:
            return wait
        if limits.rate is not None:
            wait = min(wait, max(0.01, limits.next_token_seconds(0.0)))
        if limits.key_rate is not None:
            wait = min(wait, max(0.01, limits.next_token_seconds(0.0, key=True)))
        return wait

    def _poll_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed = self._claim_into_pool()
                backoff = 0.0
            except DurableError as exc:
                backoff = min(30.0, backoff * 2 or 0.5)
                log.warning(
                    "worker %s: claiming failed (%s); retrying in %.1fs", self.id, exc, backoff
                )
                self._wake.wait(backoff)
                continue
            if not claimed:
                self._wake.wait(self._next_poll)

    def _claim_into_pool(self) -> bool:
        """Fill free slots; True when some queue may still have more work."""
        more = False
        self._next_poll = self.engine.config.poll_interval_seconds
        for queue, limit in self.queues.items():
            with self._lock:
                free = limit - self._running[queue]
            # with a backlog, wait until half the slots are free: one claim per batch, not per run
            if free <= 0 or (self._backlog[queue] and free < (limit + 1) // 2):
                continue
            want = min(free, self.claim_batch)
            rows = self._claim(queue, want)
            self._next_poll = self._limited_wait(queue, want, len(rows), self._next_poll)
            for row in rows:
                with self._lock:
                    self._running[queue] += 1
                self._pool.submit(self._run, queue, row)
            self._backlog[queue] = len(rows) == want
            more = more or len(rows) == want
        return more

    def _run(self, queue: str, row: Row) -> None:
        try:
            while True:
                # with a backlog, this thread keeps its slot and takes the next run itself
                # (no hand-off through the poller), claimed in the commit that ends this one
                backlog = self._backlog[queue] and not self._stopping.is_set()
                # a limited queue's next claim must go through its limits (a separate claim)
                chain = backlog and queue not in self.engine.limits
                claim_next = (queue, self.id, new_token(), self.engine.known())
                nxt = self.runner.run(row, claim_next if chain else None)
                if queue in self.engine.limits:
                    self._slot_freed(queue)
                if nxt is None and backlog and not self._stopping.is_set():
                    try:
                        rows = self._claim(queue, 1)
                    except DurableError:
                        break
                    nxt = rows[0] if rows else None
                    if nxt is None:
                        self._backlog[queue] = False
                if nxt is None:
                    break
                row = nxt
        finally:
            with self._idle:
                self._running[queue] -= 1
                self._idle.notify_all()
            self._wake.set()

    def _slot_freed(self, queue: str) -> None:
        """A claim of a queue with fleet-wide slots ended: wake the workers of other
        processes waiting for one (polling would find it too, later)."""
        limits = self.engine.limits[queue]
        if limits.concurrency is not None or limits.per_key is not None:
            self.engine.notifier.notify(queue)

    # ---- heartbeat and maintenance ------------------------------------------------

    def _worker_row(self) -> Row:
        return {
            "id": self.id,
            "hostname": self._host,
            "pid": os.getpid(),
            "queues": json.dumps(self.queues),
            "limits": self._limits_json,
            "workflows": json.dumps(self.engine.known().as_dict()),
            "running": self.running,
        }

    def _beat_safely(self) -> None:
        try:
            self.engine.storage.heartbeat(self._worker_row(), self.engine.clock.now_ms())
        except DurableError as exc:
            log.warning("worker %s: heartbeat failed (%s)", self.id, exc)

    def _heartbeat_loop(self) -> None:
        interval = self.engine.config.heartbeat_interval_seconds
        while not self._stopping.wait(interval):
            self._beat_safely()

    def maintain(self) -> None:
        """One maintenance pass: recover stale claims, then run the hooks."""
        engine = self.engine
        now = engine.clock.now_ms()
        stale_before = now - int(engine.config.stale_timeout_seconds * 1000)
        recovered = engine.storage.recover_stale(stale_before, now)
        for row in recovered:
            log.warning(
                "recovered execution %s of %s: worker %s stopped heart-beating",
                row["id"],
                row["workflow_name"],
                row["locked_by"],
            )
        if recovered:
            engine.notifier.notify("*")
        engine.storage.delete_dead_workers(now - int(engine.config.stale_timeout_seconds * 10_000))
        self._check_fleet_limits(now)
        for queue in self.queues:
            limits = engine.limits.get(queue)
            if limits is not None and limits.key_rate is not None:
                full_ms = int(limits.burst / limits.key_tokens_per_ms) + 1
                engine.storage.prune_key_buckets(queue, now - full_ms)
        for hook in self.maintenance_hooks:
            hook()

    def _maintenance_loop(self) -> None:
        interval = self.engine.config.maintenance_interval_seconds
        while not self._stopping.wait(interval):
            try:
                self.maintain()
            except DurableError as exc:
                log.warning("worker %s: maintenance failed (%s)", self.id, exc)
            except Exception:
                log.exception("worker %s: maintenance hook failed", self.id)

    def _check_fleet_limits(self, now: int) -> None:
        """Log (once each) queues that live workers enforce with different limits."""
        fresh = now - int(self.engine.config.stale_timeout_seconds * 1000)
        live = [w for w in self.engine.storage.list_workers() if w["heartbeat_at"] >= fresh]
        for queue, configs in fleet_mismatches(live).items():
            if queue not in self.queues:
                continue
            text = json.dumps(configs, sort_keys=True)
            if text in self._reported:
                continue
            self._reported.add(text)
            log.error(
                "queue %r is enforced with different limits by workers of this fleet: %s; "
                "give every process the same Durable(limits=...)",
                queue,
                "; ".join(
                    f"{c['limits'] or 'no limits'} by {', '.join(c['workers'])}" for c in configs
                ),
            )
