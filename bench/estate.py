"""Keyed starts and known-workflow claims.

Run by hand (not a test):

    .venv/bin/python bench/estate.py --db sqlite
    .venv/bin/python bench/estate.py --db postgres

1. Starts per second, one ``start`` call each, without and with a caller id
   (``start(wf, input, id=...)``): the keyed start must stay within 10 % of the plain one.
   Rounds alternate (plain, keyed, plain, ...) so drift on a shared machine hits both.
2. Claims per second of one worker's claim query (batches of ``--batch``) over
   ``--runs`` pending runs, with the worker knowing 1 workflow versus 200 (the runs
   belong to one of them; with 200, another 199 workflows' names travel in each claim).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database_url  # noqa: E402
from durable import Durable, Workflow, step  # noqa: E402
from durable.ids import new_token  # noqa: E402
from durable.storage import KnownWorkflows  # noqa: E402


def _noop(x: object) -> object:
    return x


def _workflows(n: int) -> list[Workflow]:
    return [Workflow(f"wf{i}", [step(_noop, name="s")]) for i in range(n)]


def bench_starts(url: str, n: int, rounds: int) -> dict[str, float]:
    wf = _workflows(1)[0]
    rates: dict[str, list[float]] = {"plain": [], "keyed": []}
    with Durable(url, workflows=[wf], pubsub=False) as app:
        app.migrate()
        for r in range(rounds):
            for kind in ("plain", "keyed"):
                t0 = time.perf_counter()
                for i in range(n):
                    if kind == "plain":
                        app.start(wf, {"i": i})
                    else:
                        app.start(wf, {"i": i}, id=f"order-{r}-{i}")
                rates[kind].append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for i in range(n):  # the same ids again: each start finds its run and starts nothing
            app.start(wf, {"i": i}, id=f"order-0-{i}")
        again = n / (time.perf_counter() - t0)
    plain, keyed = statistics.median(rates["plain"]), statistics.median(rates["keyed"])
    return {"plain": plain, "keyed": keyed, "keyed_vs_plain": keyed / plain, "repeat": again}


def bench_claims(url: str, runs: int, batch: int, known: int) -> float:
    workflows = _workflows(200)
    with Durable(url, workflows=workflows, pubsub=False) as app:
        app.migrate()
        for i in range(0, runs, 500):
            app.start_many(workflows[0], list(range(i, min(runs, i + 500))))
        names = {wf.name: [None] for wf in workflows[:known]}
        scope = KnownWorkflows.of(names)
        storage = app.storage
        now = app.clock.now_ms() + 1000
        t0 = time.perf_counter()
        claimed = 0
        while True:
            rows = storage.claim("default", batch, "bench", new_token(), now, scope)
            if not rows:
                break
            claimed += len(rows)
        seconds = time.perf_counter() - t0
        assert claimed == runs, (claimed, runs)
    return claimed / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--starts", type=int, default=1000, help="starts per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5000, help="pending runs to claim")
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    print(f"settings: {vars(args)}")
    starts = bench_starts(
        fresh_database_url(args.db, "durable_bench_starts"), args.starts, args.rounds
    )
    print(
        f"starts/s: plain {starts['plain']:.0f}, keyed {starts['keyed']:.0f} "
        f"(keyed/plain {starts['keyed_vs_plain']:.2f}), same id again {starts['repeat']:.0f}"
    )
    for known in (1, 200):
        url = fresh_database_url(args.db, f"durable_bench_claims_{known}")
        rate = bench_claims(url, args.runs, args.batch, known)
        print(f"claims/s, worker knowing {known} workflow(s): {rate:.0f}")


if __name__ == "__main__":
    main()
