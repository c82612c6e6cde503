"""Application-log benchmark: write throughput and query latency, on SQLite and PostgreSQL.

    python benchmarks/applog.py                       # both backends
    python benchmarks/applog.py --backend sqlite --rows 200000

1. Throughput: 4 threads share one configured `app.log` and log `--records` lines in total
   (request fields, indexed context, a small context dict); the clock stops when the last
   line is committed. Printed as records persisted per second (target >= 50,000/s on PG),
   with the CPU each record cost this process (the logging threads and the writer) and, on
   Linux with a local server, the PostgreSQL backends of the scratch database: CPU per
   record stays comparable when a busy machine makes the rate noisy. `--repeat N` runs
   it N times (fresh database each time) and prints the median too.
2. Latency: `--rows` records (default 1,000,000, ~10 per correlation id) are bulk-loaded
   through the store's batch insert, then `app.query_logs(correlation_id=...)` is timed for
   `--queries` random ids: p50/p99 (target p99 < 20 ms).

PostgreSQL comes from JOBGLASS_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
test); a scratch database is created next to it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from jobglass.app import JobGlass
from jobglass.stores.applog_types import AppLogRecord, make_common

THREADS = 4
BATCH = 20_000
PG_URL = os.environ.get("JOBGLASS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg

    name = f"jg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(PG_URL)._replace(path="/" + name))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server_cpu(database_name: str) -> float | None:
    """CPU seconds used so far by the local PostgreSQL processes serving `database_name`
    (Linux /proc, same machine), or None when that cannot be read."""
    proc = "/proc"
    if not os.path.isdir(proc):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"{proc}/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if cmdline.startswith(b"postgres") and database_name.encode() in cmdline:
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def throughput(url: str, records: int) -> tuple[float, float, float | None]:
    """Records persisted per second, and CPU microseconds per record: this process, and
    the PostgreSQL server (None for SQLite or when unknown)."""
    database_name = urlsplit(url).path.lstrip("/") if url.startswith("postgres") else ""
    async with JobGlass(url) as app:
        base = (
            app.log.with_context(service="bench")
            .with_indexed_context({"sourceKey": "datasource-1", "recordKey": "record-1"})
            .with_credential_context("cred-1", "oauth2")
        )
        per_thread = records // THREADS

        def writer(i: int) -> None:
            log = base.add_user(f"user-{i}").add_correlation(f"bench-{i}")
            for n in range(per_thread):
                log.info("Upstream API call completed", {"n": n, "thread": i})

        loop = asyncio.get_running_loop()
        app.log  # noqa: B018 - create the hub on this loop before the threads log
        app.app_logs.start()
        server = _server_cpu(database_name) if database_name else None
        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(loop.run_in_executor(None, writer, i) for i in range(THREADS)))
        await app.log.flush()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        if server is not None:
            after = _server_cpu(database_name)
            server = None if after is None else after - server
        total = per_thread * THREADS
        assert app.app_logs.written == total, app.app_logs.written
        return total / elapsed, cpu / total * 1e6, None if server is None else server / total * 1e6


def synthetic(n: int, now: float, correlations: int) -> AppLogRecord:
    fields = {
        "user_id": f"user-{n % 5_000}",
        "correlation_id": f"corr-{n % correlations}",
        "source_key": f"ds-{n % 50}" if n % 3 == 0 else None,
        "method": "GET",
        "path": f"/api/items/{n % 1_000}",
        "ip_address": "10.0.0.1",
        "request_size": 100,
        "response_size": 2_000 + n % 100,
        "duration_ms": n % 250,
    }
    return AppLogRecord(
        "app",
        now - (n % 86_400),
        ("debug", "info", "info", "info", "warning", "error")[n % 6],
        f"request {n} handled",
        common=make_common(fields),
        context={"n": n, "shard": n % 16},
    )


async def latency(url: str, rows: int, queries: int) -> tuple[float, float, float]:
    correlations = max(1, rows // 10)
    async with JobGlass(url) as app:
        started = time.perf_counter()
        now = time.time()
        for start in range(0, rows, BATCH):
            batch = [
                synthetic(n, now, correlations) for n in range(start, min(rows, start + BATCH))
            ]
            await app.store.write_app_logs(batch)
        load = time.perf_counter() - started
        if url.startswith("postgres"):
            async with app.store.connection() as conn:  # type: ignore[attr-defined]
                await conn.execute("ANALYZE app_logs")
        rng = random.Random(7)
        for _ in range(20):  # warm the cache and the pool
            await app.query_logs(correlation_id=f"corr-{rng.randrange(correlations)}")
        times = []
        for _ in range(queries):
            cid = f"corr-{rng.randrange(correlations)}"
            t0 = time.perf_counter()
            page = await app.query_logs(correlation_id=cid)
            times.append((time.perf_counter() - t0) * 1000)
            assert page["logs"] and all(x["correlationId"] == cid for x in page["logs"])
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        return rows / load, p50, p99


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--records", type=int, default=400_000, help="lines for throughput")
    parser.add_argument("--rows", type=int, default=1_000_000, help="stored rows for latency")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs per backend")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        rates = []
        for _ in range(max(1, args.repeat)):
            with database(backend) as url:
                rate, cpu_us, server_us = await throughput(url, args.records)
            rates.append(rate)
            server = "" if server_us is None else f", server {server_us:.1f} µs"
            print(
                f"{backend:8} write: {rate:>10,.0f} records/s persisted ({THREADS} threads);"
                f" CPU per record: this process {cpu_us:.1f} µs{server}",
                flush=True,
            )
        if len(rates) > 1:
            print(f"{backend:8} write: median {statistics.median(rates):,.0f} records/s")
        with database(backend) as url:
            load_rate, p50, p99 = await latency(url, args.rows, args.queries)
            print(
                f"{backend:8} query_logs by correlation id over {args.rows:,} rows:"
                f" p50 {p50:.2f} ms, p99 {p99:.2f} ms (bulk load {load_rate:,.0f} rows/s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
