"""Embedded SQLite store: zero setup, WAL, one machine, one or more local processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

from ..errors import SchemaTooNew
from ..models import LogLine, RetryPolicy, Run
from . import queries
from .base import (
    NEW_RUN_COLUMNS,
    ClaimParams,
    Created,
    NewRun,
    Retention,
    RunFilter,
    ThroughputBucket,
)
from .filters import levels_at_or_above, run_filter_sql
from .rows import created_run, epoch_to_dt, log_from_row, run_from_row, run_from_values
from .sqlite_applog import SQLiteAppLogMixin
from .sqlite_attempts import (
    LOG_ROWS_PER_INSERT,
    SQLiteAttemptWritesMixin,
    encode_json,
    epoch_of,
    json_text,
)
from .sqlite_changes import SQLiteChangesMixin
from .sqlite_nulls import insert_filled
from .sqlite_schedules import SQLiteScheduleMixin
from .sqlite_workers import SQLiteWorkerMixin
from .sqlite_writer_lock import WriterLock

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
#: While another process holds the write lock, the writer tries again after this many
#: seconds, doubling up to `BEGIN_PAUSE_MAX` (see `_begin_immediate`).
BEGIN_PAUSE_MIN, BEGIN_PAUSE_MAX = 0.00005, 0.001


#: The columns `insert_run` fills, in the order of `_run_values`.
RUN_COLUMNS = NEW_RUN_COLUMNS
_STATUS, _RUN_AT, _STARTED_AT, _LEASE_EXPIRES_AT = map(
    RUN_COLUMNS.index, ("status", "run_at", "started_at", "lease_expires_at")
)


def _run_values(new: NewRun, now: float) -> tuple[Any, ...]:
    """What `insert_run` stores for `new`, in `RUN_COLUMNS` order: text as exact `str` (an
    enum member is bound through sqlite3's adapter protocol, ten times slower)."""
    running = new.start_running
    return (
        new.job_name,
        new.queue,
        "RUNNING" if running else "QUEUED",
        new.priority,
        epoch_of(new.run_at) or now,
        new.job_id,
        json_text(new.params),
        1 if running else 0,
        new.retry.attempts,
        _retry_text(new.retry),
        new.timeout,
        str(new.trigger),
        str(new.scope),
        new.algorithm_version,
        new.correlation_id,
        new.tenant_id,
        new.user_id,
        new.concurrency_key,
        json_text(new.trace_context or None),
        now,
        now if running else None,
        now + new.lease_seconds if running else None,
        new.worker_id if running else None,
        new.schedule_name,
        epoch_of(new.fire_time),
        epoch_of(new.next_fire_time),
        new.keep_completed,
        new.keep_failed,
    )


@lru_cache(maxsize=256)
def _retry_text(policy: RetryPolicy) -> str | None:
    return json_text(policy.to_json())


def _stored_run(new: NewRun, run_id: int, values: Sequence[Any], now: float) -> Run:
    """The Run an insert of `_run_values` stored, from its input: no read-back."""
    return created_run(
        new,
        {
            "id": run_id,
            "status": values[_STATUS],
            "run_at": epoch_to_dt(values[_RUN_AT]),
            "created_at": epoch_to_dt(now),
            "started_at": epoch_to_dt(values[_STARTED_AT]),
            "lease_expires_at": epoch_to_dt(values[_LEASE_EXPIRES_AT]),
        },
    )


def _created_event(run_id: int, now: float) -> dict[str, Any]:
    return {"run_id": run_id, "kind": "status", "log_from": 0, "log_to": 0, "now": now}


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried again every 0.05-1 ms while another process writes, for up to
    `BUSY_TIMEOUT_MS`. SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms... between
    tries: two workers on one file lost a third of their throughput waiting in it
    (benchmarks/README.md, ninth session). Other jobglass writers are waited for before,
    in the kernel (`WriterLock`): the retries are for writers that do not take that lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = BEGIN_PAUSE_MIN
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, BEGIN_PAUSE_MAX)


def sqlite_path(url: str) -> str:
    """`sqlite:///rel.db`, `sqlite:////abs.db` or a bare path."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    return url


def _run(row: sqlite3.Row) -> Run:
    """A run from its row: read through a dict (a `sqlite3.Row` looks each name up by a
    scan of its columns, half the decoding time of a 45-column run)."""
    return run_from_row(dict(zip(row.keys(), row, strict=True)), epoch_to_dt)


class SQLiteStore(
    SQLiteAttemptWritesMixin,
    SQLiteChangesMixin,
    SQLiteWorkerMixin,
    SQLiteAppLogMixin,
    SQLiteScheduleMixin,
):
    """Writes go through one connection on one thread (SQLite has one writer anyway)."""

    pushes_events = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.q = queries.load("sqlite")
        one = "(?, ?, ?, ?, ?, ?, ?, ?)"
        self._insert_log_many = self.q["insert_log"].replace(
            one, ", ".join([one] * LOG_ROWS_PER_INSERT)
        )
        if self._insert_log_many == self.q["insert_log"]:
            raise RuntimeError("sqlite.sql insert_log must end with VALUES " + one)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="jobglass-sqlite-w")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="jobglass-sqlite-r")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._writer_lock = WriterLock(self.path)

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        """The writer waits for the write lock in `_begin_immediate`, not in SQLite's busy
        handler; inside a transaction begun IMMEDIATE, WAL mode takes no other lock. It has
        its own scratch table for `finish_runs` (TEMP)."""
        conn = self._connect()
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute(self.q["create_finish_batch"])
        return conn

    async def open(self) -> None:
        if self._wconn is not None:
            return
        if self.path not in ("", ":memory:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._wconn = await loop.run_in_executor(self._writer, self._connect_writer)
        self._rconn = await loop.run_in_executor(self._reader, self._connect)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            conn, self._wconn = self._wconn, None
            await loop.run_in_executor(self._writer, conn.close)
            await loop.run_in_executor(self._writer, self._writer_lock.close)
        if self._rconn is not None:
            rconn, self._rconn = self._rconn, None
            await loop.run_in_executor(self._reader, rconn.close)
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction on the writer thread."""
        if self._wconn is None:
            await self.open()

        def tx() -> T:
            conn = self._wconn
            assert conn is not None
            locked = self._writer_lock.acquire()  # other processes' writers queue here
            try:
                _begin_immediate(conn)
                try:
                    out = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return out
            finally:
                if locked:
                    self._writer_lock.release()

        return await asyncio.get_running_loop().run_in_executor(self._writer, tx)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._rconn is None:
            await self.open()

        def run() -> T:
            assert self._rconn is not None
            return fn(self._rconn)

        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    # -- schema -----------------------------------------------------------------------------

    async def migrate(self) -> int:
        known = queries.migrations("sqlite")

        def apply(conn: sqlite3.Connection) -> int:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            version = int(current.fetchone()[0])
            if version > len(known):
                raise SchemaTooNew(
                    f"database schema is version {version}, this jobglass knows {len(known)}:"
                    " upgrade jobglass"
                )
            for number, name, sql in known[version:]:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time())
                )
                version = number
            return version

        return await self._write(apply)

    async def schema_version(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            try:
                row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            except sqlite3.OperationalError:
                return 0
            return int(row.fetchone()[0])

        return await self._read(read)

    # -- runs -------------------------------------------------------------------------------

    def _insert_run(self, c: sqlite3.Connection, new: NewRun, now: float) -> Run | None:
        """Insert one run (None: a live run holds its job_id) and announce it to followers."""
        values = _run_values(new, now)
        row = c.execute(self.q["insert_run"], dict(zip(RUN_COLUMNS, values, strict=True)))
        row = row.fetchone()
        if row is None:
            return None
        c.execute(self.q["insert_event"], _created_event(int(row[0]), now))
        return _stored_run(new, int(row[0]), values, now)

    async def create_runs(self, runs: Sequence[NewRun], *, conn: Any = None) -> list[Created]:
        if conn is not None:
            raise TypeError("joining the caller's transaction is supported on PostgreSQL only")
        now = time.time()
        existing = self.q["live_run_by_job_id"]
        event = self.q["insert_event"]

        def write(c: sqlite3.Connection) -> list[Created]:
            out: list[Created] = []
            plain: list[tuple[NewRun, tuple[Any, ...]]] = []

            def insert_plain() -> None:
                # no job_id, so no conflict is possible: NULLs left unbound (sqlite_nulls);
                # inside this write transaction AUTOINCREMENT ids are consecutive, ending at
                # last_insert_rowid()
                if not plain:
                    return
                insert_filled(c, "runs", RUN_COLUMNS, [values for _, values in plain])
                last = int(c.execute("SELECT last_insert_rowid()").fetchone()[0])
                first = last - len(plain) + 1
                out.extend(
                    Created.later(first + i, partial(_stored_run, new, first + i, values, now))
                    for i, (new, values) in enumerate(plain)
                )
                c.executemany(event, [_created_event(first + i, now) for i in range(len(plain))])
                plain.clear()

            for new in runs:
                if new.job_id is None:
                    plain.append((new, _run_values(new, now)))
                    continue
                insert_plain()
                run = self._insert_run(c, new, now)
                if run is not None:
                    out.append(Created(run, True))
                    continue
                old = c.execute(existing, {"job_id": new.job_id}).fetchone()
                out.append(Created(_run(old), False))
            insert_plain()
            return out

        return await self._write(write)

    async def claim_runs(self, params: ClaimParams) -> list[Run]:
        q = self.q

        def claim(c: sqlite3.Connection) -> list[Run]:
            now = time.time()
            cands = c.execute(
                q["claim_candidates"],
                {"queues": encode_json(list(params.queues)), "now": now, "limit": params.limit},
            ).fetchall()
            if not cands:
                return []
            keys = {r["concurrency_key"] for r in cands if r["concurrency_key"] is not None}
            busy: set[str] = set()
            if keys:
                running = c.execute(
                    q["running_concurrency_keys"], {"keys": encode_json(list(keys))}
                )
                busy = {r[0] for r in running}
            order: dict[int, int] = {}  # id -> position: priority order, as selected
            for cand in cands:
                key = cand["concurrency_key"]
                if key is not None:
                    if key in busy:
                        continue
                    busy.add(key)
                order[cand["id"]] = len(order)
            cur = c.cursor()
            cur.row_factory = None  # tuples in `RUN_FIELDS` order, decoded by position
            rows = cur.execute(
                q["claim_runs"],
                {
                    "ids": encode_json(list(order)),
                    "worker_id": params.worker_id,
                    "now": now,
                    "lease_until": now + params.lease_seconds,
                },
            ).fetchall()
            rows.sort(key=lambda r: order[r[0]])
            return [run_from_values(r, epoch_to_dt) for r in rows]

        return await self._write(claim)

    async def reclaim_expired(self) -> list[Run]:
        def read(c: sqlite3.Connection) -> list[Run]:
            rows = c.execute(self.q["expired_runs"], {"now": time.time()}).fetchall()
            return [_run(r) for r in rows]

        return await self._write(read)

    async def get_run(self, run_id: int) -> Run | None:
        def read(c: sqlite3.Connection) -> Run | None:
            row = c.execute(self.q["get_run"], {"id": run_id}).fetchone()
            return None if row is None else _run(row)

        return await self._read(read)

    async def get_logs(
        self, run_id: int, *, min_level: str | None, limit: int, after: int | None
    ) -> list[LogLine]:
        args = {
            "run_id": run_id,
            "after": after or 0,
            "levels": json.dumps(levels_at_or_above(min_level)),
            "limit": limit,
        }

        def read(c: sqlite3.Connection) -> list[LogLine]:
            return [log_from_row(r) for r in c.execute(self.q["get_logs"], args)]

        return await self._read(read)

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        clause, args = run_filter_sql(flt, lambda n: f":{n}", epoch_of)
        sql = f"SELECT * FROM runs{clause} ORDER BY id DESC LIMIT :limit"  # noqa: S608 - bound values

        def read(c: sqlite3.Connection) -> list[Run]:
            return [_run(r) for r in c.execute(sql, args)]

        return await self._read(read)

    async def request_cancel(self, run_id: int) -> Run | None:
        q = self.q
        error = json.dumps({"type": "Cancelled", "message": "cancelled before it started"})

        def write(c: sqlite3.Connection) -> Run | None:
            now = time.time()
            row = c.execute(
                q["cancel_queued"], {"id": run_id, "now": now, "error": error}
            ).fetchone()
            if row is None:
                row = c.execute(q["cancel_running"], {"id": run_id}).fetchone()
            if row is None:
                row = c.execute(q["get_run"], {"id": run_id}).fetchone()
                return None if row is None else _run(row)
            c.execute(
                q["insert_event"],
                {"run_id": run_id, "kind": "status", "log_from": 0, "log_to": 0, "now": now},
            )
            return _run(row)

        return await self._write(write)

    async def requeue(self, run_id: int) -> Run | None:
        q = self.q

        def write(c: sqlite3.Connection) -> Run | None:
            now = time.time()
            row = c.execute(q["requeue"], {"id": run_id, "now": now}).fetchone()
            if row is None:
                return None
            c.execute(
                q["insert_event"],
                {"run_id": run_id, "kind": "status", "log_from": 0, "log_to": 0, "now": now},
            )
            return _run(row)

        return await self._write(write)

    async def delete_run(self, run_id: int) -> bool:
        q = self.q

        def write(c: sqlite3.Connection) -> bool:
            if c.execute(q["delete_run"], {"id": run_id}).fetchone() is None:
                return False
            c.execute(q["delete_run_logs"], {"id": run_id})
            return True

        return await self._write(write)

    async def queue_stats(self) -> dict[str, dict[str, Any]]:
        def read(c: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            now = time.time()
            out: dict[str, dict[str, Any]] = {}
            for r in c.execute(self.q["queue_counts"], {"now": now}):
                stats: dict[str, Any] = {
                    k: int(r[k] or 0)
                    for k in (
                        "waiting",
                        "delayed",
                        "active",
                        "retrying",
                        "completed",
                        "failed",
                        "cancelled",
                    )
                }
                oldest = r["oldest_waiting"]
                stats["oldestWaitingAgeSeconds"] = (
                    None if oldest is None else round(max(0.0, now - oldest), 3)
                )
                out[r["queue"]] = stats
            return out

        return await self._read(read)

    # -- maintenance and events ---------------------------------------------------------------

    async def prune(self, retention: dict[str, Retention], default: Retention) -> int:
        q = self.q

        def write(c: sqlite3.Connection) -> int:
            now = time.time()
            doomed: set[int] = set()
            names = [r[0] for r in c.execute(q["finished_job_names"])]
            for name in names:
                rule = retention.get(name, default)
                for status, keep in (
                    ("SUCCESS", rule.keep_completed),
                    ("FAILED", rule.keep_failed),
                    ("CANCELLED", rule.keep_failed),
                ):
                    # also with keep None: a run may carry its own keep (given at enqueue)
                    rows = c.execute(
                        q["prune_candidates"],
                        {"job_name": name, "status": status, "keep": keep},
                    )
                    doomed.update(r[0] for r in rows)
                    if rule.max_age_days is not None:
                        before = now - rule.max_age_days * 86400
                        rows = c.execute(
                            q["prune_older"], {"job_name": name, "status": status, "before": before}
                        )
                        doomed.update(r[0] for r in rows)
            for run_id in doomed:
                if c.execute(q["delete_run"], {"id": run_id}).fetchone() is not None:
                    c.execute(q["delete_run_logs"], {"id": run_id})
            c.execute(q["prune_events"], {"before": now - 600})
            c.execute(q["delete_stale_workers"], {"before": now - 86400})
            return len(doomed)

        return await self._write(write)

    async def finished_per_minute(self, since: datetime) -> list[ThroughputBucket]:
        """SUCCESS / FAILED runs finished at or after `since`, by queue and minute."""

        def read(c: sqlite3.Connection) -> list[ThroughputBucket]:
            rows = c.execute(self.q["finished_per_minute"], {"since": since.timestamp()})
            return [
                ThroughputBucket(
                    r["queue"],
                    datetime.fromtimestamp(r["minute"], UTC),
                    int(r["completed"] or 0),
                    int(r["failed"] or 0),
                )
                for r in rows
            ]

        return await self._read(read)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; `--` comments may contain semicolons."""
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [part.strip() for part in code.split(";") if part.strip()]
