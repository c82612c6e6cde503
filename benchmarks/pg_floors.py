"""What this machine's PostgreSQL allows with no jobglass code in the way: the floors under
issue 3's targets (`enqueue_many` >= 100,000 rows/s, start latency p50 <= 2 ms, p99 <= 5 ms).

Run from the repository root, PostgreSQL on this machine (about a minute):

    .venv/bin/python benchmarks/pg_floors.py
    .venv/bin/python benchmarks/pg_floors.py --rounds 5 --samples 500

- COPY floor: rows/s of a COPY of ready-made lines into `runs`, 10,000 a transaction, as
  `enqueue_many` sends them (captured from a real batch, then given fresh ids), with no client
  work at all: with every index of the schema, and with the primary key and the claim index
  only (the least a queue needs). One `enqueue_many` is one transaction on one connection:
  it cannot go faster than the first figure, nor, keeping the queue's index, than the second.
- Start-latency floor: two processes with plain psycopg connections (statements prepared,
  autocommit). The enqueuer inserts a minimal run and notifies in the same statement (a durable
  commit, as an enqueue must be); the listener, woken by the notification, claims that run by
  primary key (an UPDATE ... RETURNING whose commit does not wait for the WAL flush, like
  jobglass's claim) and takes the time: p50 / p99 of insert start -> claim returned, the
  samples `--spacing` apart so that both sides are idle each time, as in
  `queue_throughput.py`. jobglass's start latency adds the handler's start to this.
- Round trips: `SELECT 1` back to back and after the same idle spacing, and a one-row INSERT
  with its durable commit after the spacing: the machine's own costs inside the floor above.

Every measurement gets a fresh database (created and dropped here); the server's CPU per run
of jobglass's own statements is `pg_statement_cost.py`'s figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.queue_throughput import PG_DEFAULT, Databases, make_app  # noqa: E402
from psycopg import sql  # noqa: E402

BATCH = 10_000
#: `runs`' indexes beyond the primary key and `runs_claim` (sql migrations, the code's names).
NOT_QUEUE_INDEXES = (
    "runs_running_lease",
    "runs_job_id_live",
    "runs_concurrency_running",
    "runs_finished",
    "runs_status_id",
    "runs_job_name_id",
    "runs_correlation",
    "runs_tenant",
)
CHANNEL = "jobglass_floor"
ENQUEUE = sql.SQL(
    "WITH r AS (INSERT INTO runs (job_name, queue, status, run_at, created_at, correlation_id)"
    " VALUES ('noop', 'default', 'QUEUED', now(), now(), %s) RETURNING id)"
    " SELECT id, pg_notify({}, id::text) FROM r"
).format(sql.Literal(CHANNEL))
CLAIM = (
    "UPDATE runs SET status = 'RUNNING', attempt = attempt + 1, started_at = now(),"
    " lease_expires_at = now() + interval '30 seconds' WHERE id = %s AND status = 'QUEUED'"
    " RETURNING id"
)


def migrated(dbs: Databases) -> str:
    """A fresh database with jobglass's schema."""
    url = dbs.fresh("postgres")

    async def open_app() -> None:
        async with make_app(url) as app:
            await app._ready()

    asyncio.run(open_app())
    return url


# -- COPY -----------------------------------------------------------------------------------


def copy_lines(dbs: Databases) -> tuple[sql.Composable, list[bytes]]:
    """(column list, one batch's COPY lines without their ids) from a real `enqueue_many`."""
    import psycopg

    from jobglass import EnqueueRequest
    from jobglass.stores.pg_batch import COPY_COLUMNS

    url = migrated(dbs)

    async def fill() -> None:
        async with make_app(url) as app:
            await app.enqueue_many([EnqueueRequest("noop") for _ in range(BATCH)])

    asyncio.run(fill())
    columns = sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    data = bytearray()
    query = sql.SQL("COPY (SELECT {} FROM runs ORDER BY id) TO STDOUT").format(columns)
    with psycopg.connect(url) as conn, conn.cursor().copy(query) as copy:
        for chunk in copy:
            data += chunk
    tails = [line.split(b"\t", 1)[1] for line in bytes(data).split(b"\n") if line]
    if len(tails) != BATCH:
        raise RuntimeError(f"captured {len(tails)} lines, wanted {BATCH}")
    return columns, tails


def copy_rate(
    dbs: Databases, columns: sql.Composable, tails: list[bytes], drop: tuple[str, ...]
) -> float:
    """Rows/s of 10 COPY transactions of BATCH ready-made rows each (only the COPY timed)."""
    import psycopg

    url = migrated(dbs)
    query = sql.SQL("COPY runs ({}) FROM STDIN").format(columns)
    elapsed = 0.0
    with psycopg.connect(url, autocommit=True) as conn:
        for name in drop:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        for k in range(10):
            first = k * BATCH + 1
            data = b"".join(b"%d\t%s\n" % (first + i, tail) for i, tail in enumerate(tails))
            start = time.perf_counter()
            with (
                conn.transaction(),
                conn.cursor().copy(query) as copy,
            ):
                for at in range(0, len(data), 1 << 20):
                    copy.write(data[at : at + (1 << 20)])
            elapsed += time.perf_counter() - start
    return 10 * BATCH / elapsed


# -- start latency ----------------------------------------------------------------------------


def listener(url: str, samples: int, out: str) -> None:
    """The claiming side (a process of its own): claim each notified run, write the times."""
    import psycopg

    stamps: list[str] = []
    with (
        psycopg.connect(url, autocommit=True) as listen,
        psycopg.connect(url, autocommit=True) as conn,
    ):  # as a jobglass worker: one connection listens, another claims
        conn.execute("SET synchronous_commit = off")
        listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        print("listening", flush=True)
        for note in listen.notifies():
            row = conn.execute(CLAIM, (int(note.payload),), prepare=True).fetchone()  # type: ignore[arg-type]
            now = time.time()
            if row is None:
                raise RuntimeError(f"run {note.payload} was not claimed")
            stamps.append(f"{note.payload} {now:.6f}\n")
            if len(stamps) == samples:
                break
    Path(out).write_text("".join(stamps))


def start_latency(url: str, samples: int, spacing: float) -> dict[str, float]:
    import psycopg

    out = Path(tempfile.mkdtemp(prefix="jg-floor-")) / "stamps.txt"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--listener", url, str(samples + 1), str(out)],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"listening":
            raise RuntimeError("the listener did not start")
        sent: dict[int, float] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(samples + 1):  # the first one warms both sides up
                start = time.time()
                row = conn.execute(ENQUEUE, (f"floor-{i}",), prepare=True).fetchone()
                if row is None:
                    raise RuntimeError("the insert returned no run")
                if i:
                    sent[int(row[0])] = start
                time.sleep(spacing)
        if proc.wait(30) != 0:
            raise RuntimeError("the listener failed")
        claimed = {
            int(a): float(b) for a, b in (line.split() for line in out.read_text().splitlines())
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        out.unlink(missing_ok=True)
        out.parent.rmdir()
    return _percentiles([(claimed[run] - at) * 1000 for run, at in sent.items()])


def round_trips(url: str, samples: int, spacing: float) -> dict[str, float]:
    """Medians (ms) of `SELECT 1` back to back and after `spacing` idle, and of a one-row
    INSERT with its durable commit after `spacing` idle."""
    import psycopg

    figures: dict[str, list[float]] = {"select_hot": [], "select_idle": [], "insert_idle": []}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_rows (id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ)")
        for _ in range(samples):
            start = time.perf_counter()
            conn.execute("SELECT 1", prepare=True)
            figures["select_hot"].append(time.perf_counter() - start)
        for i in range(samples):
            time.sleep(spacing)
            start = time.perf_counter()
            if i % 2:
                conn.execute("SELECT 1", prepare=True)
                figures["select_idle"].append(time.perf_counter() - start)
            else:
                conn.execute("INSERT INTO floor_rows (at) VALUES (now())", prepare=True)
                figures["insert_idle"].append(time.perf_counter() - start)
    return {key: statistics.median(values) * 1000 for key, values in figures.items()}


def _percentiles(latencies_ms: list[float]) -> dict[str, float]:
    lat = sorted(latencies_ms)
    return {"p50_ms": statistics.median(lat), "p99_ms": lat[round(0.99 * (len(lat) - 1))]}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--listener"]:
        listener(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres", default=PG_DEFAULT, help="server URL (any database)")
    parser.add_argument("--rounds", type=int, default=3, help="COPY rounds (medians printed)")
    parser.add_argument("--samples", type=int, default=250, help="start-latency samples")
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between samples")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.samples < 10 or args.spacing < 0:
        parser.error("--rounds must be >= 1, --samples >= 10, --spacing >= 0")
    dbs = Databases(args.postgres)
    try:
        columns, tails = copy_lines(dbs)
        configs = {"every index": (), "primary key + runs_claim only": NOT_QUEUE_INDEXES}
        rates: dict[str, list[float]] = {label: [] for label in configs}
        for _ in range(args.rounds):  # alternating: the configurations share the drift
            for label, drop in configs.items():
                rates[label].append(copy_rate(dbs, columns, tails, drop))
        print(f"COPY of ready-made runs, {BATCH:,} a transaction (median of {args.rounds}):")
        for label, got in rates.items():
            print(f"  {label:<34} {statistics.median(got):>10,.0f} rows/s   (target >= 100,000)")
        url = migrated(dbs)
        lat = start_latency(url, args.samples, args.spacing)
        print(f"Start latency floor, plain psycopg, {args.samples} samples {args.spacing}s apart:")
        print(f"  insert + notify -> claimed, p50    {lat['p50_ms']:>10.2f} ms       (target <= 2)")
        print(f"  insert + notify -> claimed, p99    {lat['p99_ms']:>10.2f} ms       (target <= 5)")
        trips = round_trips(url, args.samples, args.spacing)
        print("Round trips (median):")
        print(f"  SELECT 1, back to back             {trips['select_hot']:>10.2f} ms")
        print(f"  SELECT 1, after {args.spacing}s idle          {trips['select_idle']:>10.2f} ms")
        print(f"  one-row INSERT + commit, idle      {trips['insert_idle']:>10.2f} ms")
    finally:
        dbs.drop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
