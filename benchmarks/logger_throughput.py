"""JobLogger figures: coalesced progress calls/s and persisted log rows/s, per backend.

    .venv/bin/python benchmarks/logger_throughput.py [--lines 200000] [--postgres URL]

Targets (2-core machine): increment_progress >= 1,000,000 calls/s (no I/O per call);
200,000 info lines persisted at >= 100,000 rows/s on SQLite, >= 50,000 on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

from jobglass import JobContext, JobGlass

PG_DEFAULT = os.environ.get(
    "JOBGLASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def build(url: str, lines: int, calls: int, out: dict[str, float]) -> JobGlass:
    app = JobGlass(url)

    @app.job(name="progress-loop")
    async def progress_loop(ctx: JobContext) -> None:
        log = ctx.log
        log.set_stage("Looping")
        log.set_total(calls, "ticks")
        start = time.perf_counter()
        for _ in range(calls):
            log.increment_progress()
        out["progress_calls_per_s"] = calls / (time.perf_counter() - start)

    @app.job(name="chatty")
    async def chatty(ctx: JobContext) -> None:
        log = ctx.log
        start = time.perf_counter()
        for i in range(lines):
            log.info("processed item", {"i": i})
            if i % 5000 == 0:
                await asyncio.sleep(0)  # a real job awaits I/O now and then
        await log.flush()
        out["log_rows_per_s"] = lines / (time.perf_counter() - start)

    return app


async def measure(url: str, lines: int, calls: int) -> dict[str, float]:
    out: dict[str, float] = {}
    app = build(url, lines, calls, out)
    async with app:
        await app.run_job("progress-loop")
        run = await app.run_job("chatty")
        stored = len(await app.get_logs(run.id, limit=10_000, after=lines - 5000))
        assert stored >= 5000, "log rows were not all persisted"
        out["flushes"] = app.flusher.flushes
    return out


async def fresh_pg_database(base: str) -> tuple[str, str]:
    import psycopg

    name = f"jg_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + f"/{name}", name


async def drop_pg_database(base: str, name: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--postgres", default=PG_DEFAULT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await measure(f"sqlite:///{tmp}/bench.db", args.lines, args.calls)
    print(f"SQLite     increment_progress: {sqlite['progress_calls_per_s']:>12,.0f} calls/s")
    print(
        f"SQLite     {args.lines:,} info lines:  {sqlite['log_rows_per_s']:>12,.0f} rows/s"
        f"  ({sqlite['flushes']:.0f} flushes)"
    )
    try:
        url, name = await fresh_pg_database(args.postgres)
    except Exception as err:
        print(f"PostgreSQL skipped: {err}")
        return
    try:
        pg = await measure(url, args.lines, args.calls)
    finally:
        await drop_pg_database(args.postgres, name)
    print(f"PostgreSQL increment_progress: {pg['progress_calls_per_s']:>12,.0f} calls/s")
    print(
        f"PostgreSQL {args.lines:,} info lines:  {pg['log_rows_per_s']:>12,.0f} rows/s"
        f"  ({pg['flushes']:.0f} flushes)"
    )


if __name__ == "__main__":
    asyncio.run(main())
