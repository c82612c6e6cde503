"""Queue figures on SQLite and PostgreSQL, and the same no-op workload on Procrastinate.

Run from the repository root (a run takes a few minutes):

    .venv/bin/python benchmarks/queue_throughput.py
    .venv/bin/python benchmarks/queue_throughput.py --backends postgres --runs 40000
    .venv/bin/python benchmarks/queue_throughput.py --no-procrastinate --samples 300
    .venv/bin/python benchmarks/queue_throughput.py --json /tmp/queue-figures.json

PostgreSQL comes from JOBGLASS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
test, or --postgres URL); every measurement gets a fresh database there (created and dropped
by this script); SQLite gets a fresh file in a temporary folder.

For each backend it prints:
  - single `app.enqueue` calls/s (one after another);
  - `app.enqueue_many` rows/s (batches of 10,000);
  - end-to-end no-op runs/s with 1 and 2 `jobglass worker` processes (concurrency 100, claim
    batch 100): runs are queued first, due a few seconds later, and the rate is the number of
    runs over the time from the first run's start to the last run's finish, as stored; with
    the CPU a run of the workers and, when the server runs on this machine, of PostgreSQL
    (every `postgres` process, from /proc) over the same time, and the rate that both
    together allow with every core of the machine doing nothing else (the ceiling);
  - start latency (enqueue -> handler start) p50/p99 with one idle worker: the job writes its
    wall-clock start time to a file; samples are spaced so the worker is idle each time.

`--observability ROUNDS` instead measures what issue 7's stack costs here: end-to-end no-op
runs/s with 1 and 2 worker processes, ROUNDS alternating rounds of three configurations of the
workers' app (`BENCH_STACK`): `bare` (no attempt middleware, no attempt listeners: no run
fields, no start/end lines, no metrics), `observability` (context + logging middleware and
the metrics listener: the start/end lines are written, as text at INFO, to the worker's
stderr, which `jobglass worker` configures) and `defaults` (all of `JobGlass()`'s defaults,
also the application log's job lines). Medians and ratios to `bare` are printed (also the
median of each round's ratio to the bare run next to it), and the workers' CPU per run (from
/proc, due time to last end). Then ROUNDS rounds side by side: one worker per configuration,
all three at once, each on its own database: the runs/s and worker CPU per run of each over
the same 6 s. The machine's speed drifts by tens of percent between measurements here, and
workers running together share whatever it is. `benchmarks/attempt_instructions.py` counts
what an attempt costs in instructions (valgrind), a figure that does not drift at all.

Procrastinate (PyPI, installed on first use into benchmarks/.venv-procrastinate, never into the
project's venv) runs the same no-op workload against the same server (its own database), with
the same number of processes and concurrency, and the same `enqueue_many` (its `batch_defer`)
and start-latency measurements (a client process defers one job at a time to one idle worker,
LISTEN/NOTIFY-driven as ours); our ratio to each is printed. The machine's speed drifts within
the hour, so the ratios of one invocation say more than figures from different hours.

Targets on a 2-core machine with PostgreSQL on loopback: >= 8,000 no-op runs/s end to end,
enqueue_many >= 100,000 rows/s, start latency p50 <= 2 ms and p99 <= 5 ms; SQLite >= 5,000
runs/s end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PG_DEFAULT = os.environ.get(
    "JOBGLASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PROCRASTINATE_VENV = HERE / ".venv-procrastinate"
STAMPS_ENV = "BENCH_STAMPS"
STACK_ENV = "BENCH_STACK"
STACKS = ("bare", "observability", "defaults")
WORKER_APP = "benchmarks.queue_throughput:make_app"
CONCURRENCY = 100
BATCH = 10_000
LEAD = 4.0  # seconds between queueing the e2e runs and their due time (workers start meanwhile)
SIDE_BY_SIDE_RUNS = 30_000  # per stack: more than one worker ends in 1 + 6 s
SIDE_BY_SIDE_WINDOW = 6.0  # seconds


# -- the jobs the workers run (imported by `jobglass worker benchmarks.queue_throughput:...`) --


def make_app(database_url: str | None = None) -> Any:
    """The benchmark's app: `noop`, and `stamp` that records its start time."""
    from jobglass import JobContext, JobGlass

    app = JobGlass(database_url)
    stack = os.environ.get(STACK_ENV, "defaults")
    if stack != "defaults":  # --observability: what the attempt's surroundings cost
        from jobglass.observe.context import run_context_middleware
        from jobglass.observe.logging import logging_middleware

        if stack == "bare":
            app.middleware, app.attempt_listeners = [], []
        else:
            app.middleware = [run_context_middleware, logging_middleware]

    @app.job(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    @app.job(name="stamp")
    async def stamp(ctx: JobContext, i: int = 0) -> None:
        now = time.time()
        fd = os.open(os.environ[STAMPS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{i} {now:.6f}\n".encode())
        finally:
            os.close(fd)

    return app


# -- databases ----------------------------------------------------------------------------------


class Databases:
    """Fresh databases: SQLite files in a temporary folder, PostgreSQL databases on a server."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.tmp = Path(tempfile.mkdtemp(prefix="jg-bench-"))
        self.created: list[str] = []

    def fresh(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.tmp}/{uuid.uuid4().hex[:8]}.db"
        import psycopg

        name = f"jg_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        self.created.append(name)
        return urlunsplit(urlsplit(self.pg_url)._replace(path="/" + name))

    def drop_all(self) -> None:
        if self.created:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True) as conn:
                for name in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        for path in self.tmp.glob("*"):
            path.unlink()
        self.tmp.rmdir()


def _one_row(url: str, sqlite_sql: str, postgres_sql: str, args: tuple[Any, ...] = ()) -> Any:
    """One row of a query on a benchmark database (SQLite file or PostgreSQL)."""
    if url.startswith("sqlite"):
        import sqlite3

        from jobglass.stores.sqlite import sqlite_path

        conn = sqlite3.connect(sqlite_path(url))
        try:
            return conn.execute(sqlite_sql, args).fetchone()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(postgres_sql, args).fetchone()


def span_seconds(url: str) -> tuple[int, float]:
    """(finished runs, seconds from the first start to the last finish), as stored."""
    if url.startswith("sqlite"):
        n, first, last = _one_row(
            url,
            "SELECT count(*), min(started_at), max(finished_at) FROM runs WHERE status = 'SUCCESS'",
            "",
        )
        return int(n), float(last) - float(first)
    n, seconds = _one_row(
        url,
        "",
        "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at))::float8"
        " FROM runs WHERE status = 'SUCCESS'",
    )
    return int(n), float(seconds)


def finished_between(url: str, start: float, end: float) -> int:
    """Runs that succeeded between two wall-clock times (epoch seconds), as stored."""
    (n,) = _one_row(
        url,
        "SELECT count(*) FROM runs WHERE status = 'SUCCESS'"
        " AND finished_at > ? AND finished_at <= ?",
        "SELECT count(*) FROM runs WHERE status = 'SUCCESS'"
        " AND finished_at > to_timestamp(%s) AND finished_at <= to_timestamp(%s)",
        (start, end),
    )
    return int(n)


# -- worker processes ---------------------------------------------------------------------------


def start_workers(url: str, count: int, extra_env: dict[str, str] | None = None) -> list[Any]:
    env = dict(os.environ)
    env.update(
        {
            "JOBGLASS_DATABASE_URL": url,
            "JOBGLASS_CLAIM_BATCH": "100",
            "JOBGLASS_KEEP_COMPLETED": "none",  # keep every run: the rate is read from them
            "JOBGLASS_KEEP_FAILED": "none",
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        }
    )
    env.update(extra_env or {})
    args = [
        sys.executable,
        "-m",
        "jobglass.cli",
        "worker",
        WORKER_APP,
        "--concurrency",
        str(CONCURRENCY),
        "--grace",
        "5",
    ]
    return [
        subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]


def wait_ready(procs: list[Any], within: float = 30) -> None:
    """Each worker prints its banner once its app is open."""
    deadline = time.monotonic() + within
    for p in procs:
        line = b""
        while b"jobglass worker" not in line:
            if time.monotonic() > deadline or (p.poll() is not None and not line):
                rest = p.stderr.read().decode(errors="replace") if p.poll() is not None else ""
                raise RuntimeError(f"worker did not start: {line!r}\n{rest}")
            line = p.stderr.readline()
        # drain the rest in the background so the worker never blocks on its stderr
        subprocess.Popen(["cat"], stdin=p.stderr, stdout=subprocess.DEVNULL)


def stop_workers(procs: list[Any]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- measurements -------------------------------------------------------------------------------


async def measure_enqueue(url: str, singles: int, rows: int) -> dict[str, float]:
    from jobglass import EnqueueRequest

    app = make_app(url)
    out: dict[str, float] = {}
    async with app:
        await app.enqueue("noop", queue="parked")  # warm up: pool, prepared statements
        start = time.perf_counter()
        for _ in range(singles):
            await app.enqueue("noop", queue="parked")
        out["enqueue_per_s"] = singles / (time.perf_counter() - start)
        batches = [
            [EnqueueRequest("noop", queue="parked") for _ in range(BATCH)]
            for _ in range(max(1, rows // BATCH))
        ]
        start = time.perf_counter()
        for batch in batches:
            await app.enqueue_many(batch)
        out["enqueue_many_rows_per_s"] = len(batches) * BATCH / (time.perf_counter() - start)
    return out


def cpu_seconds(procs: list[Any]) -> float | None:
    """User + system CPU the processes have used so far (Linux /proc), or None."""
    total = 0
    try:
        for p in procs:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(url: str) -> float | None:
    """CPU every `postgres` process of this machine has used so far, exited backends included
    (their parent's cutime/cstime), when `url` is a PostgreSQL server on this machine; or None.
    The whole server is counted: on a quiet machine that is the benchmark's load."""
    parts = urlsplit(url)
    local = parts.hostname in (None, "", "127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("postgresql", "postgres") or not local:
        return None
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK") if total else None


async def measure_end_to_end(
    url: str, runs: int, workers: int, stack: str = "defaults"
) -> tuple[float, float | None, float | None]:
    """(runs/s, the workers' CPU microseconds per run from the runs' due time to the last
    end, or None off Linux, and the PostgreSQL server's over the same time, or None when it
    is not on this machine). CPU per run is steadier than the rate on a shared machine."""
    from jobglass import EnqueueRequest

    app = make_app(url)
    async with app:
        due = time.monotonic() + LEAD
        for i in range(0, runs, BATCH):
            await app.enqueue_many(
                [EnqueueRequest("noop", delay=LEAD) for _ in range(min(BATCH, runs - i))]
            )
        procs = start_workers(url, workers, {"JOBGLASS_POLL_INTERVAL": "0.05", STACK_ENV: stack})
        try:
            wait_ready(procs)
            await asyncio.sleep(max(0.0, due - 0.1 - time.monotonic()))  # idle until due
            cpu_before, server_before = cpu_seconds(procs), server_cpu_seconds(url)
            deadline = time.monotonic() + LEAD + 600
            while True:
                stats = (await app.queue_stats()).get("default", {})
                if stats.get("completed", 0) + stats.get("failed", 0) >= runs:
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"runs did not finish: {stats}")
                # queue_stats costs 7-11 ms with 15,000 runs: every 0.1 s it took a tenth of
                # a core from the workers; the rate comes from stored times, not from here
                await asyncio.sleep(0.5)
            cpu_after, server_after = cpu_seconds(procs), server_cpu_seconds(url)
        finally:
            stop_workers(procs)
    done, seconds = span_seconds(url)
    if done != runs:
        raise RuntimeError(f"{runs - done} runs did not succeed")
    return (
        runs / seconds,
        _per_run(cpu_before, cpu_after, runs),
        _per_run(server_before, server_after, runs),
    )


def _per_run(before: float | None, after: float | None, runs: int) -> float | None:
    """Microseconds a run of the CPU seconds used between two readings, if both were read."""
    return None if before is None or after is None else (after - before) / runs * 1e6


async def measure_side_by_side(
    dbs: Databases, backend: str, runs: int, window: float
) -> dict[str, tuple[float, float | None]]:
    """(runs/s, worker CPU microseconds per run) of one worker per stack, all at the same
    time, each on its own database, over the same `window` seconds once all are busy: the
    machine's speed drifts by tens of percent from one measurement to the next here, and
    workers running together share whatever it is."""
    from jobglass import EnqueueRequest

    urls = {stack: dbs.fresh(backend) for stack in STACKS}
    due = time.monotonic() + LEAD + 2 * runs * len(STACKS) / 20_000  # after the enqueues
    for url in urls.values():
        async with make_app(url) as app:
            for i in range(0, runs, BATCH):
                await app.enqueue_many(
                    [
                        EnqueueRequest("noop", delay=max(0.0, due - time.monotonic()))
                        for _ in range(min(BATCH, runs - i))
                    ]
                )
    procs = {
        stack: start_workers(url, 1, {"JOBGLASS_POLL_INTERVAL": "0.05", STACK_ENV: stack})
        for stack, url in urls.items()
    }
    try:
        for group in procs.values():
            wait_ready(group)
        await asyncio.sleep(max(0.0, due - time.monotonic()) + 1.0)  # all busy by now
        before = {stack: cpu_seconds(group) for stack, group in procs.items()}
        start = time.time()
        await asyncio.sleep(window)
        end = time.time()
        after = {stack: cpu_seconds(group) for stack, group in procs.items()}
    finally:
        for group in procs.values():
            stop_workers(group)
    out: dict[str, tuple[float, float | None]] = {}
    for stack, url in urls.items():
        done = finished_between(url, start, end)
        if not done or finished_between(url, end, end + 3600) == 0:
            raise RuntimeError(f"{stack}: the worker was not busy for the whole window")
        was, now = before[stack], after[stack]
        cpu = None if was is None or now is None else (now - was) / done * 1e6
        out[stack] = (done / (end - start), cpu)
    return out


async def measure_latency(url: str, samples: int, spacing: float) -> dict[str, float]:
    app = make_app(url)
    stamps = Path(tempfile.mkdtemp(prefix="jg-stamps-")) / "stamps.txt"
    os.environ[STAMPS_ENV] = str(stamps)
    sent: dict[int, float] = {}
    async with app:
        procs = start_workers(url, 1)
        try:
            wait_ready(procs)
            await app.enqueue("stamp", {"i": -1})  # warm up both sides
            await asyncio.sleep(1.0)
            for i in range(samples):
                sent[i] = time.time()
                await app.enqueue("stamp", {"i": i})
                await asyncio.sleep(spacing)
            deadline = time.monotonic() + 30
            while len(stamps.read_text().splitlines()) < samples + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every stamp job ran")
                await asyncio.sleep(0.05)
        finally:
            stop_workers(procs)
    lines = stamps.read_text().splitlines()
    started = {int(i): float(t) for i, t in (line.split() for line in lines)}
    stamps.unlink()
    stamps.parent.rmdir()
    return _percentiles([(started[i] - sent[i]) * 1000 for i in sent])


# -- Procrastinate, in its own venv ---------------------------------------------------------------

PROCRASTINATE_SIDE = r"""
import asyncio, os, sys, time
import procrastinate

url, action = sys.argv[1], sys.argv[2]
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

@app.task(name="noop")
async def noop():
    return None

@app.task(name="stamp")
async def stamp(i):
    now = time.time()
    fd = os.open(os.environ["BENCH_STAMPS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{i} {now:.6f}\n".encode())
    finally:
        os.close(fd)

async def main():
    async with app.open_async():
        if action == "setup":
            await app.schema_manager.apply_schema_async()
            runs = int(sys.argv[3])
            started = time.perf_counter()
            for i in range(0, runs, 10000):
                await noop.batch_defer_async(*[{} for _ in range(min(10000, runs - i))])
            print(f"deferred {runs} {time.perf_counter() - started:.6f}", flush=True)
        elif action == "work":  # until the queue is empty
            print("ready", flush=True)
            await app.run_worker_async(concurrency=int(sys.argv[3]), wait=False,
                                       install_signal_handlers=False)
        elif action == "serve":  # until SIGTERM
            print("ready", flush=True)
            await app.run_worker_async(concurrency=int(sys.argv[3]))
        elif action == "latency":  # defer stamp jobs one by one; print when each was sent
            samples, spacing = int(sys.argv[3]), float(sys.argv[4])
            await stamp.defer_async(i=-1)  # warm up both sides
            await asyncio.sleep(1.0)
            for i in range(samples):
                sent = time.time()
                await stamp.defer_async(i=i)
                print(f"{i} {sent:.6f}", flush=True)
                await asyncio.sleep(spacing)

asyncio.run(main())
"""


def procrastinate_python() -> Path:
    """The venv's python, creating the venv (PyPI) on first use."""
    python = PROCRASTINATE_VENV / "bin" / "python"
    if not python.exists():
        print("installing Procrastinate into benchmarks/.venv-procrastinate ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PROCRASTINATE_VENV)], check=True)
        (PROCRASTINATE_VENV / ".gitignore").write_text("*\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "procrastinate"], check=True
        )
    return python


def _procrastinate_script() -> tuple[Path, Path]:
    python = procrastinate_python()
    script = PROCRASTINATE_VENV / "bench_side.py"
    script.write_text(PROCRASTINATE_SIDE)
    return python, script


def measure_procrastinate_defer(url: str, rows: int) -> float:
    """Procrastinate's `batch_defer_async` rows/s (batches of 10,000), its schema applied."""
    python, script = _procrastinate_script()
    out = subprocess.run(
        [str(python), str(script), url, "setup", str(rows)],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ).stdout.split()
    return int(out[1]) / float(out[2])


def measure_procrastinate(url: str, runs: int, workers: int) -> float:
    python, script = _procrastinate_script()
    subprocess.run(
        [str(python), str(script), url, "setup", str(runs)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs = [
        subprocess.Popen(
            [str(python), str(script), url, "work", str(CONCURRENCY)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.wait(timeout=900)
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE type = 'succeeded'),"
            " extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded')"
            " - min(at) FILTER (WHERE type = 'started'))::float8"
            " FROM procrastinate_events"
        ).fetchone()
    assert row is not None
    if int(row[0]) != runs:
        raise RuntimeError(f"procrastinate finished {row[0]} of {runs} jobs")
    return runs / float(row[1])


def measure_procrastinate_latency(url: str, samples: int, spacing: float) -> dict[str, float]:
    """The same start-latency measurement on Procrastinate: one idle worker (LISTEN/NOTIFY),
    a client process deferring `stamp` jobs one by one, the job writing its start time."""
    python, script = _procrastinate_script()
    subprocess.run(
        [str(python), str(script), url, "setup", "0"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = Path(tempfile.mkdtemp(prefix="jg-stamps-"))
    stamps = folder / "stamps.txt"
    env = {**os.environ, STAMPS_ENV: str(stamps)}
    worker = subprocess.Popen(
        [str(python), str(script), url, "serve", str(CONCURRENCY)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != b"ready":
            raise RuntimeError("the Procrastinate worker did not start")
        time.sleep(1.0)
        client = subprocess.run(
            [str(python), str(script), url, "latency", str(samples), str(spacing)],
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        sent = {int(i): float(t) for i, t in (line.split() for line in client.stdout.splitlines())}
        deadline = time.monotonic() + 30
        while not stamps.exists() or len(stamps.read_text().splitlines()) < samples + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("not every Procrastinate stamp job ran")
            time.sleep(0.05)
        started = {
            int(i): float(t) for i, t in (line.split() for line in stamps.read_text().splitlines())
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        for path in folder.glob("*"):
            path.unlink()
        folder.rmdir()
    return _percentiles([(started[i] - sent[i]) * 1000 for i in sent])


def _percentiles(latencies_ms: list[float]) -> dict[str, float]:
    lat = sorted(latencies_ms)
    return {
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
        "max_ms": lat[-1],
    }


# -- main -----------------------------------------------------------------------------------------


def _line(label: str, value: float, unit: str, target: str = "") -> None:
    print(f"  {label:<38} {value:>12,.1f} {unit:<8} {target}", flush=True)


async def run_backend(backend: str, dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n{backend}", flush=True)
    res: dict[str, Any] = {}
    enq = await measure_enqueue(dbs.fresh(backend), args.singles, args.rows)
    res.update(enq)
    _line("enqueue (one call each)", enq["enqueue_per_s"], "calls/s")
    _line(
        "enqueue_many (batches of 10,000)",
        enq["enqueue_many_rows_per_s"],
        "rows/s",
        "(target >= 100,000)" if backend == "postgres" else "",
    )
    for workers in (1, 2):
        rate, cpu, server = await measure_end_to_end(dbs.fresh(backend), args.runs, workers)
        res[f"e2e_{workers}"] = rate
        target = "(target >= 8,000)" if backend == "postgres" else "(target >= 5,000)"
        _line(f"end to end, {workers} worker process(es)", rate, "runs/s", target)
        if cpu is not None:
            res[f"e2e_{workers}_cpu_us"] = cpu
            _line("  CPU a run: the workers", cpu, "us")
        if server is not None:
            res[f"e2e_{workers}_server_cpu_us"] = server
            _line("  CPU a run: the PostgreSQL server", server, "us")
            if cpu is not None and (cores := os.cpu_count()):
                # the rate that CPU a run allows with every core doing nothing else
                ceiling = cores * 1e6 / (cpu + server)
                _line(f"  ceiling on {cores} cores at that CPU", ceiling, "runs/s")
    lat = await measure_latency(dbs.fresh(backend), args.samples, args.spacing)
    res["latency"] = lat
    _line(
        "start latency p50",
        lat["p50_ms"],
        "ms",
        "(target <= 2)" if backend == "postgres" else "(woken by a data_version watch, 4 ms)",
    )
    _line(
        "start latency p99", lat["p99_ms"], "ms", "(target <= 5)" if backend == "postgres" else ""
    )
    if backend == "postgres" and args.procrastinate:
        # the same measurements, in the same hour, on Procrastinate: this VM's speed drifts
        theirs_rows = measure_procrastinate_defer(dbs.fresh(backend), args.rows)
        res["procrastinate_defer_rows_per_s"] = theirs_rows
        _line(
            "Procrastinate batch_defer (10,000s)",
            theirs_rows,
            "rows/s",
            f"(ours / theirs = {enq['enqueue_many_rows_per_s'] / theirs_rows:.1f}x)",
        )
        their_lat = measure_procrastinate_latency(dbs.fresh(backend), args.samples, args.spacing)
        res["procrastinate_latency"] = their_lat
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            _line(
                f"Procrastinate start latency {label}",
                their_lat[key],
                "ms",
                f"(ours / theirs = {lat[key] / their_lat[key]:.2f}x)",
            )
        for workers in (1, 2):
            theirs = measure_procrastinate(dbs.fresh(backend), args.procrastinate_runs, workers)
            res[f"procrastinate_{workers}"] = theirs
            _line(
                f"Procrastinate, {workers} worker process(es)",
                theirs,
                "runs/s",
                f"(ours / theirs = {res[f'e2e_{workers}'] / theirs:.1f}x)",
            )
    return res


async def observability_cost(
    backend: str, dbs: Databases, runs: int, rounds: int
) -> dict[str, Any]:
    """End-to-end runs/s per worker-app configuration, alternating rounds; medians."""
    print(f"\n{backend}: observability cost, {rounds} rounds", flush=True)
    out: dict[str, Any] = {}
    for workers in (1, 2):
        rates: dict[str, list[float]] = {stack: [] for stack in STACKS}
        cpus: dict[str, list[float]] = {stack: [] for stack in STACKS}
        for _ in range(rounds):
            for stack in STACKS:
                rate, cpu, _ = await measure_end_to_end(dbs.fresh(backend), runs, workers, stack)
                rates[stack].append(rate)
                if cpu is not None:
                    cpus[stack].append(cpu)
        bare = statistics.median(rates["bare"])
        bare_cpu = statistics.median(cpus["bare"]) if cpus["bare"] else None
        for stack in STACKS:
            median = statistics.median(rates[stack])
            out[f"{stack}_{workers}"] = rates[stack]
            out[f"{stack}_{workers}_cpu_us"] = cpus[stack]
            note = ""
            if stack != "bare":
                # each round's ratio to the bare run next to it: the machine's speed drifts
                # between rounds more than the stacks differ
                paired = statistics.median(
                    r / b for r, b in zip(rates[stack], rates["bare"], strict=True)
                )
                out[f"{stack}_{workers}_paired_ratio"] = paired
                note = f"({median / bare:.2f}x bare; paired rounds {paired:.2f}x; target >= 0.90x)"
            _line(f"{workers} worker(s), {stack} (median)", median, "runs/s", note)
        for stack in STACKS:
            if bare_cpu is None or not cpus[stack]:
                continue
            cpu = statistics.median(cpus[stack])
            note = "" if stack == "bare" else f"({bare_cpu / cpu:.2f}x bare's runs per CPU second)"
            _line(f"{workers} worker(s), {stack}, worker CPU", cpu, "us/run", note)
    rates: dict[str, list[float]] = {stack: [] for stack in STACKS[1:]}
    cpus: dict[str, list[float]] = {stack: [] for stack in STACKS[1:]}
    for _ in range(rounds):
        got = await measure_side_by_side(dbs, backend, SIDE_BY_SIDE_RUNS, SIDE_BY_SIDE_WINDOW)
        bare_rate, bare_cpu = got["bare"]
        for stack in STACKS[1:]:
            rate, cpu = got[stack]
            rates[stack].append(rate / bare_rate)
            if cpu is not None and bare_cpu is not None:
                cpus[stack].append(bare_cpu / cpu)
    for stack in STACKS[1:]:
        out[f"{stack}_side_by_side_rate_ratios"] = rates[stack]
        out[f"{stack}_side_by_side_cpu_ratios"] = cpus[stack]
        for label, ratios in (("runs/s", rates[stack]), ("runs per CPU second", cpus[stack])):
            if ratios:
                listed = ", ".join(f"{r:.2f}" for r in sorted(ratios))
                print(
                    f"  side by side, {stack}: {label} {statistics.median(ratios):.2f}x bare"
                    f" (median; rounds {listed}; target >= 0.90x)",
                    flush=True,
                )
    return out


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="server URL (any database)")
    parser.add_argument("--runs", type=int, default=20_000, help="no-op runs per e2e figure")
    parser.add_argument("--rows", type=int, default=50_000, help="rows for enqueue_many")
    parser.add_argument("--singles", type=int, default=2_000, help="single enqueue calls")
    parser.add_argument("--samples", type=int, default=250, help="start-latency samples")
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between samples")
    parser.add_argument("--no-procrastinate", dest="procrastinate", action="store_false")
    parser.add_argument(
        "--procrastinate-runs",
        type=int,
        default=5_000,
        help="no-op jobs per Procrastinate figure (it is much slower)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--observability",
        type=int,
        metavar="ROUNDS",
        default=0,
        help="only measure the observability stack's cost (end to end, ROUNDS rounds)",
    )
    args = parser.parse_args(argv)
    dbs = Databases(args.postgres)
    results: dict[str, Any] = {}
    print(
        f"jobglass queue benchmark: {os.cpu_count()} CPUs, {args.runs:,} runs per e2e figure",
        flush=True,
    )
    try:
        for backend in args.backends.split(","):
            if args.observability:
                results[backend] = await observability_cost(
                    backend.strip(), dbs, args.runs, args.observability
                )
            else:
                results[backend] = await run_backend(backend.strip(), dbs, args)
    finally:
        dbs.drop_all()
    if args.json:
        _write(args.json, json.dumps(results, indent=2))
    return 0


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
