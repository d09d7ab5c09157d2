"""A worker: named queues with a concurrency limit each, run in a bounded thread pool.

Threads: one poller (claims in batches, sleeps on the notifier with a polling
fallback), one heartbeat (worker row + the claims its threads are running, in
one statement) and one maintenance loop (recovers stale claims, runs registered
hooks). None of them dies of an error: each logs it, backs off and goes on, so
a worker resumes by itself once the database is back. A database that is gone
for good (a SQLite file deleted under the worker) stops the worker loudly.

Suspects (runs whose worker died twice while they were claimed, since their last
checkpoint) run alone: the worker stops claiming, lets its other runs finish,
then runs the suspect with nothing beside it, so that a death while it runs is
its own. A run that kills its worker thus takes its neighbours down at most
twice; one random death (a deploy's SIGKILL) isolates nobody.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping

from ..checks import count
from ..engine import Engine
from ..errors import ConfigurationError, DatabaseGoneError, DurableError, StorageError
from ..executor.runner import Runner
from ..executor.steps import CaptureHook, StepInvoker
from ..executor.threads import DaemonPool
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
        self._pool = DaemonPool(total, "durable-run")
        self._children = DaemonPool(children_threads, "durable-par")
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
        #: lock token -> how many runs under it a thread of this worker is running (a
        #: batch claim shares one token): the heartbeat refreshes these and no other
        self._claims: Counter[str] = Counter()
        self._alone = False  # a suspect is running: claim nothing else
        self._draining = False  # a suspect waits: claim nothing until idle
        #: the error that stopped this worker for good (a deleted database file)
        self.fatal: BaseException | None = None

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
        except Exception:
            log.exception("worker %s: could not release its claims (they will go stale)", self.id)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5)
        # step threads still running are daemons: they never keep the process alive
        self._pool.shutdown()
        self._children.shutdown()
        self.invoker.close()
        hung = self.invoker.abandoned
        if hung:
            log.warning("worker %s: %d timed-out step threads were still running", self.id, hung)
        log.info("worker %s stopped", self.id)

    @property
    def running(self) -> int:
        return sum(self._running.values())

    # ---- claiming -------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what is runnable now and run it in this thread; return how many runs."""
        count = 0
        for queue, limit in self.queues.items():
            rows = self._claim(queue, limit)
            if not rows:
                suspect = self._claim_suspect(queue)
                rows = [suspect] if suspect is not None else []
                if suspect is not None:
                    self._hold(suspect["lock_token"])
            for row in rows:
                self._running[queue] += 1
                self._run(queue, row)
                count += 1
        return count

    def _hold(self, token: str) -> None:
        """One more run (or claim statement) under ``token`` that the heartbeat keeps."""
        with self._lock:
            self._claims[token] += 1

    def _drop(self, token: str) -> None:
        with self._lock:
            self._claims[token] -= 1
            if self._claims[token] <= 0:
                del self._claims[token]

    def _claim(self, queue: str, limit: int) -> list[Row]:
        """Claim up to ``limit`` runs; each row returned is held (the caller runs it)."""
        now = self.engine.clock.now_ms()
        token = new_token()
        self._hold(token)  # heart-beaten from the claim on
        try:
            limits = self.engine.limits.get(queue)
            known = self.engine.known()
            rows = self.engine.storage.claim(queue, limit, self.id, token, now, known, limits)
        except Exception:
            # the claim may have committed without our hearing of it: hand back what
            # holds this token (else stale recovery does, as an orphan, not a death)
            with contextlib.suppress(Exception):
                self.engine.storage.release_token(token, now)
            self._drop(token)
            raise
        for _ in rows:  # one batch shares one token: count its runs
            self._hold(token)
        self._drop(token)
        return rows

    def _claim_suspect(self, queue: str) -> Row | None:
        now = self.engine.clock.now_ms()
        return self.engine.storage.claim_suspect(queue, self.id, new_token(), now)

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
            except Exception as exc:  # the poller never dies: back off and try again
                if self._fatal_error(exc):
                    return
                # a dropped connection is usually cured by the next one: at once, then
                # backing off while the database stays away
                backoff = min(5.0, backoff * 2 or 0.05)
                log.warning(
                    "worker %s: claiming failed (%s); retrying in %.2fs", self.id, exc, backoff
                )
                self._wake.wait(backoff)
                continue
            if not claimed:
                self._wake.wait(self._next_poll)

    def _claim_into_pool(self) -> bool:
        """Fill free slots; True when some queue may still have more work."""
        with self._lock:
            if self._alone:
                return False
            idle = not any(self._running.values())
        if self._draining:  # maintenance saw a suspect waiting (see maintain)
            if not idle:
                return False  # it waits for this worker to be empty
            if self._take_suspect():
                return False
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
                self._submit(queue, row)
            self._backlog[queue] = len(rows) == want
            more = more or len(rows) == want
        return more

    def _take_suspect(self) -> bool:
        """With nothing running, claim one suspect and run it alone."""
        self._draining = False
        for queue in self.queues:
            row = self._claim_suspect(queue)
            if row is not None:
                log.warning(
                    "worker %s: running execution %s alone (its worker died %s times while it "
                    "was claimed)",
                    self.id,
                    row["id"],
                    row.get("deaths"),
                )
                with self._lock:
                    self._alone = True
                self._hold(row["lock_token"])
                self._submit(queue, row)
                return True
        return False

    def _submit(self, queue: str, row: Row) -> None:
        """Run a held row in the pool."""
        with self._lock:
            self._running[queue] += 1
        self._pool.submit(self._run, queue, row)

    def _run(self, queue: str, row: Row) -> None:
        token: str | None = row["lock_token"]
        try:
            while True:
                # with a backlog, this thread keeps its slot and takes the next run itself
                # (no hand-off through the poller), claimed in the commit that ends this one
                backlog = (
                    self._backlog[queue]
                    and not self._stopping.is_set()
                    and not (self._alone or self._draining)
                )
                # a limited queue's next claim must go through its limits (a separate claim)
                chain = backlog and queue not in self.engine.limits
                claim_next = (queue, self.id, new_token(), self.engine.known()) if chain else None
                if claim_next is not None:
                    self._hold(claim_next[2])  # the run that commit may claim
                nxt: Row | None = None
                try:
                    nxt = self.runner.run(row, claim_next)
                finally:
                    # whatever happened, this thread no longer runs that claim: stop
                    # heart-beating it (if the runner could not settle it, it goes stale)
                    assert token is not None
                    self._drop(token)
                    token = None
                    if claim_next is not None and nxt is None:
                        self._drop(claim_next[2])
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
                row, token = nxt, nxt["lock_token"]  # held: by claim_next or by _claim
        except Exception:  # never lose the slot to an error the runner did not handle
            log.exception("worker %s: a run thread failed", self.id)
        finally:
            if token is not None:
                self._drop(token)
            with self._idle:
                self._running[queue] -= 1
                self._alone = False
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
        with self._lock:
            tokens = list(self._claims)
        for last_try in (False, True):  # a dropped connection: at once on a fresh one
            try:
                now = self.engine.clock.now_ms()
                self.engine.storage.heartbeat(self._worker_row(), now, tokens)
                return
            except Exception as exc:  # the heartbeat never dies
                if self._fatal_error(exc):
                    return
                if last_try:
                    log.warning("worker %s: heartbeat failed (%s)", self.id, exc)

    def _heartbeat_loop(self) -> None:
        interval = self.engine.config.heartbeat_interval_seconds
        while not self._stopping.wait(interval):
            self._beat_safely()

    def maintain(self) -> list[Row]:
        """One maintenance pass: recover stale claims, then run the hooks; return the
        recovered runs."""
        engine = self.engine
        now = engine.clock.now_ms()
        stale_before = now - int(engine.config.stale_timeout_seconds * 1000)
        recovered = engine.storage.recover_stale(stale_before, now)
        engine.observer.runs_recovered(recovered, self.id)
        if recovered:
            engine.notifier.notify("*")
        engine.storage.delete_dead_workers(now - int(engine.config.stale_timeout_seconds * 10_000))
        self._check_fleet_limits(now)
        for queue in self.queues:
            limits = engine.limits.get(queue)
            if limits is not None and limits.key_rate is not None:
                full_ms = int(limits.burst / limits.key_tokens_per_ms) + 1
                engine.storage.prune_key_buckets(queue, now - full_ms)
        if not self._draining and any(engine.storage.suspect_waiting(q, now) for q in self.queues):
            self._draining = True  # claim nothing more until idle, then take the suspect
            self._wake.set()
        for hook in self.maintenance_hooks:
            hook()
        return recovered

    def _maintenance_loop(self) -> None:
        interval = self.engine.config.maintenance_interval_seconds
        while not self._stopping.wait(interval):
            try:
                try:
                    self.maintain()
                except StorageError as exc:  # a dropped connection: once more, on a fresh one
                    if isinstance(exc, DatabaseGoneError):
                        raise
                    self.maintain()
            except Exception as exc:  # maintenance never dies: next pass as usual
                if self._fatal_error(exc):
                    return
                if isinstance(exc, DurableError):
                    log.warning("worker %s: maintenance failed (%s)", self.id, exc)
                else:
                    log.exception("worker %s: maintenance hook failed", self.id)

    def _fatal_error(self, exc: BaseException) -> bool:
        """A database that is gone for good stops the worker (loudly); True if so."""
        if not isinstance(exc, DatabaseGoneError):
            return False
        if self.fatal is None:
            self.fatal = exc
            log.critical("worker %s stops: %s", self.id, exc)
        self._stopping.set()
        self._wake.set()
        return True

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
