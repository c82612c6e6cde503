"""Instructions `enqueue_many` costs the enqueuing process per row: a figure that does not drift.

Run from the repository root (needs valgrind, like `attempt_instructions.py`; about a minute):

    .venv/bin/python benchmarks/enqueue_instructions.py
    .venv/bin/python benchmarks/enqueue_instructions.py --backends postgres

The rows/s of `queue_throughput.py` move by a third from one hour to the next on a shared
VM. This counts, under valgrind's cachegrind, the instructions of a process that enqueues
10,000-row batches of no-op runs (`EnqueueRequest("noop", queue="parked")`, as
`queue_throughput.py` does) at two sizes, and divides the difference by the extra rows: the
client's cost of a row, start-up excluded. On SQLite the store's writes happen in that
process and are included; on PostgreSQL the server's work is not (it runs outside valgrind),
only the client's: validation, encoding, the `Run`s and the database client. Each size gets
a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.attempt_instructions import _count, _environment  # noqa: E402
from benchmarks.queue_throughput import PG_DEFAULT, Databases, make_app  # noqa: E402

BATCH = 10_000
SIZES = (1, 3)  # batches, after one warm-up batch


async def _enqueue(url: str, batches: int, read_runs: bool) -> None:
    """The measured process: one warm-up batch, then `batches` batches."""
    from jobglass import EnqueueRequest

    app = make_app(url)
    async with app:
        for _ in range(batches + 1):
            created = await app.enqueue_many(
                [EnqueueRequest("noop", queue="parked") for _ in range(BATCH)]
            )
            if read_runs:
                assert len({c.run.id for c in created}) == BATCH


def per_row(backends: list[str], read_runs: bool) -> dict[str, float]:
    env = _environment()
    dbs = Databases(PG_DEFAULT)
    flag = ["--read-runs"] if read_runs else []
    try:

        def count(backend: str, batches: int) -> int:
            url = dbs.fresh(backend)
            child = [sys.executable, __file__, "--child", url, str(batches), *flag]
            return _count(child, env)

        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            jobs = {b: [pool.submit(count, b, n) for n in SIZES] for b in backends}
            out = {}
            for backend, (few, many) in jobs.items():
                out[backend] = (many.result() - few.result()) / ((SIZES[1] - SIZES[0]) * BATCH)
                print(f"  {backend:9s} {out[backend]:>10,.0f} instructions per row", flush=True)
    finally:
        dbs.drop_all()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--read-runs", action="store_true", help="also read every returned run (`c.run`)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_enqueue(args.child[0], int(args.child[1]), args.read_runs))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 1
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"sqlite", "postgres"})
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: sqlite, postgres")
    what = "every returned run read" if args.read_runs else "returned runs not read"
    print(f"instructions per row of enqueue_many ({BATCH:,} a batch, {what}):")
    per_row(backends, args.read_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
