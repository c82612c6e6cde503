"""PostgreSQL's own CPU per run for the queue's statements, and what each index of `runs` adds.

Run from the repository root, with PostgreSQL on this machine (its processes' CPU is read from
/proc; about a minute):

    .venv/bin/python benchmarks/pg_statement_cost.py
    .venv/bin/python benchmarks/pg_statement_cost.py --price-indexes

End to end (`queue_throughput.py`), the server spends about as much CPU on a no-op run as the
worker does. This prices the server's side of a run: on a fresh database it enqueues RUNS
no-op runs by `enqueue_many`, then claims them 100 at a time and finishes each batch (as a
worker does, one claim and one finish statement per 100 runs), and prints the CPU that every
`postgres` process used during the enqueue, the claims and the finishes, per run (utime +
stime, exited backends included), the median of `--rounds` rounds (the figures of one round
move by 5-10 us on a shared VM). `--price-indexes` measures, in the same rounds, copies of
the schema without each optional index of `runs` (a throwaway database each): what an index
costs a claim, a finish and an enqueue, to weigh against the queries it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.queue_throughput import (  # noqa: E402
    PG_DEFAULT,
    Databases,
    make_app,
    server_cpu_seconds,
)

#: Indexes of `runs` a run's life touches that are not needed for correctness (the claim,
#: dedupe, concurrency and lease indexes are).
OPTIONAL_INDEXES = ("runs_correlation", "runs_status_id", "runs_job_name_id")
BATCH = 100


async def measure(url: str, runs: int, without: Sequence[str] = ()) -> dict[str, float]:
    """Server CPU us per run of enqueueing, claiming and finishing `runs` no-op runs."""
    from jobglass import EnqueueRequest
    from jobglass.models import RunStatus
    from jobglass.stores.base import ClaimParams, Finish

    app = make_app(url)
    async with app:
        store = await app._ready()
        if without:
            async with store.connection() as conn:  # type: ignore[attr-defined]
                for name in without:
                    await conn.execute(f"DROP INDEX {name}")  # the code's own names
        before = _cpu(url)
        for start in range(0, runs, 10_000):
            count = min(10_000, runs - start)
            await app.enqueue_many([EnqueueRequest("noop") for _ in range(count)])
        enqueued = _cpu(url)
        claim = finish = 0.0
        done = 0
        while True:
            mark = _cpu(url)
            batch = await store.claim_runs(ClaimParams("bench", ["default"], BATCH, 30.0))
            claimed = _cpu(url)
            if not batch:
                break
            ends = [Finish(r.id, r.attempt, RunStatus.SUCCESS, duration_ms=1) for r in batch]
            await store.finish_runs(ends)
            claim += claimed - mark
            finish += _cpu(url) - claimed
            done += len(batch)
    if done != runs:
        raise RuntimeError(f"claimed {done} of {runs} runs")
    return {
        "enqueue": (enqueued - before) / runs * 1e6,
        "claim": claim / runs * 1e6,
        "finish": finish / runs * 1e6,
    }


def _cpu(url: str) -> float:
    seconds = server_cpu_seconds(url)
    if seconds is None:
        raise SystemExit("PostgreSQL must run on this machine (its CPU is read from /proc)")
    return seconds


def _print(label: str, figures: dict[str, float], base: dict[str, float] | None = None) -> None:
    cells = []
    for step in ("enqueue", "claim", "finish"):
        cell = f"{step} {figures[step]:6.1f}"
        if base is not None:
            cell += f" ({figures[step] - base[step]:+5.1f})"
        cells.append(cell)
    print(f"  {label:<34} " + "   ".join(cells) + " us a run", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres", default=PG_DEFAULT, help="server URL (any database)")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--price-indexes", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < BATCH:
        parser.error(f"--runs must be at least {BATCH}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    configs: dict[str, Sequence[str]] = {"every index": ()}
    if args.price_indexes:
        configs.update({f"without {name}": [name] for name in OPTIONAL_INDEXES})
        configs["without all three"] = OPTIONAL_INDEXES
    dbs = Databases(args.postgres)
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in configs}
    try:
        print(
            f"PostgreSQL CPU per run ({args.runs:,} runs, claims and finishes of {BATCH},"
            f" median of {args.rounds} rounds):"
        )
        for _ in range(args.rounds):  # configurations alternate: they share the drift
            for label, without in configs.items():
                url = dbs.fresh("postgres")
                rounds[label].append(asyncio.run(measure(url, args.runs, without)))
    finally:
        dbs.drop_all()
    medians = {
        label: {step: statistics.median(r[step] for r in got) for step in got[0]}
        for label, got in rounds.items()
    }
    for label, figures in medians.items():
        _print(label, figures, None if label == "every index" else medians["every index"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
