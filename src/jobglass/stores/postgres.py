"""PostgreSQL store: psycopg 3, pooled, for many workers on many machines.

Batches are one statement each (see `sql/postgres.sql` and `pg_batch`). Changes reach other
processes by NOTIFY, sent in the writing transaction so they are delivered only on commit:
`jobglass_wakeup` (payload: a queue that got new work) and `jobglass_events` (payload: a JSON
array of `{"r": run_id, "k": "feedback"|"status", "f": first_seq, "t": last_seq}`, each payload
below 8000 bytes). There is no events table: `events_after` is empty.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ..errors import SchemaTooNew
from ..models import LogLine, Run
from . import pg_batch as pb
from . import queries
from .base import (
    ClaimParams,
    Event,
    Feedback,
    Finish,
    Heartbeat,
    Notify,
    Retention,
    RunFilter,
    ThroughputBucket,
    WorkerInfo,
)
from .filters import levels_at_or_above, run_filter_sql
from .pg_cursor import dict_cursor as _cursor
from .pg_cursor import tuple_cursor
from .postgres_applog import PostgresAppLogMixin
from .postgres_create import PostgresRunCreationMixin, insert_variants
from .postgres_schedules import PostgresScheduleMixin
from .queries import trusted as _literal
from .rows import aware, log_from_row, run_from_row, run_from_values, worker_from_row

log = logging.getLogger("jobglass.stores.postgres")

#: `pg_advisory_xact_lock` key held while migrating ("jobglass" in ASCII).
MIGRATION_LOCK = 0x6A6F62676C617373
#: Delivered to a `listen` handler after a lost connection was re-established: notifications
#: may have been missed meanwhile, so subscribers should re-read what they show.
RECONNECTED_CHANNEL = "jobglass_reconnected"
LISTEN_CHANNELS = (pb.WAKEUP_CHANNEL, pb.EVENTS_CHANNEL)
LISTEN_BACKOFF = (0.2, 30.0)  # first and longest pause between reconnection attempts
LISTEN_PING = 30.0  # seconds without a notification before checking the connection
CLAIM_TRIES = 5
PRUNE_BATCH = 500

Conn = AsyncConnection[DictRow]
Row = dict[str, Any]


class PostgresStore(PostgresRunCreationMixin, PostgresAppLogMixin, PostgresScheduleMixin):
    """Every method is one transaction on a pooled autocommit connection."""

    pushes_events = True

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = max(1, pool_size)
        self.q = {name: _literal(sql) for name, sql in queries.load("postgres").items()}
        self._inserts = insert_variants(self.q["insert_runs"])
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._opening: asyncio.Lock | None = None

    # -- plumbing -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # first use may come from several tasks at once
            if self._pool is None:
                self._pool = await self._new_pool()

    async def _new_pool(self) -> AsyncConnectionPool[Conn]:
        pool = AsyncConnectionPool(
            self.url,
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=self.pool_size,
            open=False,
            name="jobglass",
            configure=_configure_session,
        )
        await pool.open(wait=True)
        return pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled autocommit connection (dict rows); e.g. for `create_runs(conn=...)`."""
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        async with self._pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def _fetch(self, conn: AsyncConnection[Any], name: str, args: Any = None) -> list[Row]:
        cur = _cursor(conn)
        await cur.execute(self.q[name], args)
        return await cur.fetchall()

    async def _one(self, name: str, args: Any = None) -> list[Row]:
        """One statement on its own (autocommit: its own transaction)."""
        async with self.connection() as conn:
            return await self._fetch(conn, name, args)

    async def _exec(self, conn: AsyncConnection[Any], name: str, args: Any = None) -> None:
        await conn.execute(self.q[name], args)

    async def _notify_events(self, conn: AsyncConnection[Any], entries: list[str]) -> None:
        if entries:
            await self._exec(conn, "notify_events", {"payloads": pb.payloads(entries)})

    # -- schema -----------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply the missing migrations, all in one transaction under an advisory lock."""
        known = queries.migrations("postgres")
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            version = await self._version(conn)
            if version > len(known):
                raise SchemaTooNew(
                    f"database schema is version {version}, this jobglass knows {len(known)}:"
                    " upgrade jobglass"
                )
            for number, name, sql in known[version:]:
                await conn.execute(_literal(sql))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name)
                )
                version = number
            return version

    async def _version(self, conn: AsyncConnection[Any]) -> int:
        cur = _cursor(conn)
        await cur.execute(
            "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0"
            " ELSE (SELECT COALESCE(max(version), 0) FROM schema_migrations) END AS v"
        )
        row = await cur.fetchone()
        return int(row["v"]) if row else 0

    async def schema_version(self) -> int:
        async with self.connection() as conn:
            try:
                return await self._version(conn)
            except psycopg.errors.UndefinedTable:  # created between the two checks' plans
                return 0

    # -- runs -------------------------------------------------------------------------------

    async def claim_runs(self, params: ClaimParams) -> list[Run]:
        """Claim due runs with `FOR UPDATE SKIP LOCKED`; at most one RUNNING run per key.

        Two claimers may pick different runs of one free key at the same moment: the unique
        index `runs_concurrency_running` refuses the second, whose claim is then retried and
        sees the key busy.
        """
        queues = list(dict.fromkeys(params.queues))
        if not queues or params.limit < 1:
            return []
        args = {
            "queues": queues,
            "limit": params.limit,
            "worker_id": params.worker_id,
            "lease_seconds": float(params.lease_seconds),
        }
        for attempt in range(CLAIM_TRIES):
            try:
                async with self.connection() as conn:
                    cur = tuple_cursor(conn)
                    await cur.execute(self.q["claim_runs"], args)
                    rows = await cur.fetchall()
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as err:
                log.debug("claim raced on a concurrency key (%s), retrying", type(err).__name__)
                await asyncio.sleep(0.002 * (attempt + 1))
                continue
            claimed = [run_from_values(r, aware) for r in rows]
            claimed.sort(key=lambda r: (-r.priority, r.run_at, r.id))
            return claimed
        return []

    async def write_feedback(self, batches: Sequence[Feedback]) -> list[bool]:
        """One statement (one transaction): fenced updates, the accepted runs' log rows, and
        their events (NOTIFY, several only past 80 runs)."""
        if not batches:
            return []
        rows = await self._one("write_feedback", self._feedback_args(batches))
        accepted = {(int(r["id"]), int(r["attempt"])) for r in rows}
        return [(fb.run_id, fb.attempt) in accepted for fb in batches]

    @staticmethod
    def _feedback_args(batches: Sequence[Feedback]) -> dict[str, Any]:
        args = pb.feedback_params(batches)
        args["batches"] = Jsonb(args["batches"], dumps=pb.dumps)
        return args

    async def finish_runs(
        self, finishes: Sequence[Finish], feedback: Sequence[Feedback] = ()
    ) -> list[bool]:
        """One fenced UPDATE for the batch with its NOTIFY; per-item result in input order.
        With `feedback` (the attempts' last lines and state), both in one transaction: in the
        same UPDATE when each feedback belongs to one of the finishes (the worker's case)."""
        if not finishes:
            return []
        records = pb.finish_records(finishes)
        ends = {(r["run_id"], r["attempt"]) for r in records}
        if {(fb.run_id, fb.attempt) for fb in feedback} <= ends:
            rows = await self._one("finish_runs", self._finish_args(records, feedback))
        else:
            async with self._tx() as conn:
                await self._fetch(conn, "write_feedback", self._feedback_args(feedback))
                rows = await self._fetch(conn, "finish_runs", self._finish_args(records, ()))
        done = {int(r["i"]) for r in rows}
        return [i in done for i in range(len(finishes))]

    def _finish_args(
        self, records: list[dict[str, Any]], feedback: Sequence[Feedback]
    ) -> dict[str, Any]:
        return {"finishes": Jsonb(records, dumps=pb.dumps), **self._feedback_args(feedback)}

    async def reclaim_expired(self) -> list[Run]:
        """RUNNING runs whose lease expired; the worker retries or fails them (`finish_runs`)."""
        return [run_from_row(r, aware) for r in await self._one("expired_runs")]

    async def get_run(self, run_id: int) -> Run | None:
        rows = await self._one("get_run", {"id": run_id})
        return run_from_row(rows[0], aware) if rows else None

    async def get_logs(
        self, run_id: int, *, min_level: str | None, limit: int, after: int | None
    ) -> list[LogLine]:
        args = {
            "run_id": run_id,
            "after": after or 0,
            "levels": levels_at_or_above(min_level),
            "limit": limit,
        }
        return [log_from_row(r) for r in await self._one("get_logs", args)]

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        # SQLite's LIKE ignores ASCII case; ILIKE keeps the text search the same here.
        clause, args = run_filter_sql(flt, lambda n: f"%({n})s", lambda v: v, like="ILIKE")
        sql = f"SELECT * FROM runs{clause} ORDER BY id DESC LIMIT %(limit)s"  # noqa: S608 - bound values
        async with self.connection() as conn:
            cur = _cursor(conn)
            await cur.execute(_literal(sql), args)
            return [run_from_row(r, aware) for r in await cur.fetchall()]

    async def request_cancel(self, run_id: int) -> Run | None:
        """Cancel a waiting run at once; ask a running one to stop (`cancel_requested`)."""
        error = Jsonb({"type": "Cancelled", "message": "cancelled before it started"})
        async with self._tx() as conn:
            rows = await self._fetch(conn, "cancel_queued", {"id": run_id, "error": error})
            if not rows:
                rows = await self._fetch(conn, "cancel_running", {"id": run_id})
            if not rows:
                rows = await self._fetch(conn, "get_run", {"id": run_id})
                return run_from_row(rows[0], aware) if rows else None
            await self._notify_events(conn, [pb.entry(run_id, "status")])
            return run_from_row(rows[0], aware)

    async def requeue(self, run_id: int) -> Run | None:
        """A failed or cancelled run goes back to the queue (with at least one more attempt)."""
        async with self._tx() as conn:
            rows = await self._fetch(conn, "requeue", {"id": run_id})
            if not rows:
                return None
            run = run_from_row(rows[0], aware)
            await self._notify_events(conn, [pb.entry(run_id, "status")])
            await self._exec(conn, "notify_wakeup", {"queue": run.queue})
            return run

    async def delete_run(self, run_id: int) -> bool:
        async with self._tx() as conn:
            if not await self._fetch(conn, "delete_run", {"id": run_id}):
                return False
            await self._exec(conn, "delete_run_logs", {"id": run_id})
            return True

    # -- workers ----------------------------------------------------------------------------

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        args = {
            "id": worker.id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "queues": Jsonb(list(worker.queues)),
            "concurrency": worker.concurrency,
        }
        async with self.connection() as conn:
            await self._exec(conn, "upsert_worker", args)

    async def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[int, int]], lease_seconds: float
    ) -> Heartbeat:
        """Renew this worker's leases (fenced by attempt); learn cancels and lost runs."""
        async with self._tx() as conn:
            await self._exec(conn, "touch_worker", {"id": worker_id})
            rows: list[Row] = []
            if runs:
                args = {
                    "run_ids": [r for r, _ in runs],
                    "attempts": [a for _, a in runs],
                    "lease_seconds": float(lease_seconds),
                }
                rows = await self._fetch(conn, "renew_leases", args)
        owned = {int(r["id"]) for r in rows}
        cancel = {int(r["id"]) for r in rows if r["cancel_requested"]}
        lost = {run_id for run_id, _ in runs if run_id not in owned}
        return Heartbeat(frozenset(cancel), frozenset(lost))

    async def remove_worker(self, worker_id: str) -> None:
        async with self.connection() as conn:
            await self._exec(conn, "remove_worker", {"id": worker_id})

    async def list_workers(self, stale_after: float) -> list[WorkerInfo]:
        rows = await self._one("list_workers", {"stale_after": float(stale_after)})
        return [worker_from_row(r, aware) for r in rows]

    async def queue_stats(self) -> dict[str, dict[str, Any]]:
        keys = ("waiting", "delayed", "active", "retrying", "completed", "failed", "cancelled")
        out: dict[str, dict[str, Any]] = {}
        for r in await self._one("queue_counts"):
            stats: dict[str, Any] = {k: int(r[k] or 0) for k in keys}
            age = r["oldest_age"]
            stats["oldestWaitingAgeSeconds"] = (
                None if age is None else round(max(0.0, float(age)), 3)
            )
            out[r["queue"]] = stats
        return out

    # -- maintenance and events ---------------------------------------------------------------

    async def prune(self, retention: dict[str, Retention], default: Retention) -> int:
        """Delete finished runs past retention (and their logs) in batches; never a live run."""
        doomed: set[int] = set()
        async with self.connection() as conn:
            names = [r["job_name"] for r in await self._fetch(conn, "finished_job_names")]
            for name in names:
                rule = retention.get(name, default)
                for status, keep in (
                    ("SUCCESS", rule.keep_completed),
                    ("FAILED", rule.keep_failed),
                    ("CANCELLED", rule.keep_failed),
                ):
                    args: dict[str, Any] = {"job_name": name, "status": status}
                    # also with keep None: a run may carry its own keep (given at enqueue)
                    rows = await self._fetch(conn, "prune_candidates", {**args, "keep": keep})
                    doomed.update(int(r["id"]) for r in rows)
                    if rule.max_age_days is not None:
                        age = {**args, "max_age_seconds": float(rule.max_age_days) * 86400}
                        rows = await self._fetch(conn, "prune_older", age)
                        doomed.update(int(r["id"]) for r in rows)
            deleted = 0
            for ids in pb.chunks(sorted(doomed), PRUNE_BATCH):
                rows = await self._fetch(conn, "delete_runs", {"ids": ids})
                deleted += int(rows[0]["deleted"])
            await self._exec(conn, "delete_stale_workers")
        return deleted

    async def events_after(self, cursor: int, limit: int = 500) -> list[Event]:
        """PostgreSQL pushes events by NOTIFY (`listen`); there is no outbox to follow."""
        return []

    async def last_event_id(self) -> int:
        return 0

    async def listen(self, channel_handler: Notify) -> None:
        """Deliver every `jobglass_wakeup`/`jobglass_events` notification until cancelled.

        One dedicated autocommit connection (not from the pool). When it is lost, reconnect
        with backoff, listen again and then call the handler with `RECONNECTED_CHANNEL`.
        A handler may be sync or async; its errors are logged, never fatal.
        """
        pause = LISTEN_BACKOFF[0]
        connected_before = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name="jobglass-listen"
                )
            except psycopg.OperationalError as err:
                log.warning("listener cannot connect (%s); retrying in %.1fs", err, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, LISTEN_BACKOFF[1])
                continue
            try:
                async with conn:
                    for channel in LISTEN_CHANNELS:
                        await conn.execute(_literal(f"LISTEN {channel}"))
                    pause = LISTEN_BACKOFF[0]
                    if connected_before:
                        await _deliver(channel_handler, RECONNECTED_CHANNEL, "")
                    connected_before = True
                    while True:
                        async with aclosing(conn.notifies(timeout=LISTEN_PING)) as notes:
                            async for note in notes:
                                await _deliver(channel_handler, note.channel, note.payload)
                        await conn.execute("SELECT 1")  # quiet for a while: still connected?
            except psycopg.Error as err:  # terminated, network gone, server restarted...
                log.warning("listener connection lost (%s); reconnecting in %.1fs", err, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, LISTEN_BACKOFF[1])

    async def finished_per_minute(self, since: datetime) -> list[ThroughputBucket]:
        """SUCCESS / FAILED runs finished at or after `since`, by queue and minute."""
        rows = await self._one("finished_per_minute", {"since": since})
        return [
            ThroughputBucket(
                r["queue"],
                datetime.fromtimestamp(float(r["minute"]), UTC),
                int(r["completed"] or 0),
                int(r["failed"] or 0),
            )
            for r in rows
        ]


async def _configure_session(conn: AsyncConnection[Any]) -> None:
    """Plan each prepared query once per connection: left to choose, PostgreSQL re-plans the
    claim query on every call (0.4 ms of planning for 0.06 ms of work). And a UTC session:
    psycopg then returns times in `datetime.UTC` itself, which `rows.aware` keeps as they
    are (no `astimezone` per column of every claimed run)."""
    await conn.execute("SET plan_cache_mode = force_generic_plan; SET TimeZone = 'UTC'")


async def _deliver(handler: Notify, channel: str, payload: str) -> None:
    try:
        result = handler(channel, payload)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("listen handler failed on %s", channel)
