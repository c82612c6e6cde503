"""Schedules on PostgreSQL: a mixin of `PostgresStore` (its pool and `create_runs`).

SQL in `sql/postgres_schedules.sql`. A tick is one transaction of a constant number of
statements whatever the number of due schedules: lock their rows in name order, move them on,
insert the fires (`ON CONFLICT DO NOTHING`: the claim), insert the runs of the fires this
transaction won (`create_runs` on the same connection), then link fires and runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..models import Run
from ..scheduler import ClaimedFire, Fire, FireBatch, FireRecord, LiveRun, Schedule, ScheduleSync
from .base import Created, NewRun
from .pg_batch import dumps, iso
from .rows import aware

Row = dict[str, Any]


def _record(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "job_name": s.job_name,
        "cron": s.cron,
        "every_seconds": s.every_seconds,
        "timezone": s.timezone,
        "description": s.description,
        "enabled": s.enabled,
        "params": s.params,
        "tenant_id": s.tenant_id,
        "user_id": s.user_id,
        "correlation_prefix": s.correlation_prefix,
        "misfire": s.misfire,
        "overlap": s.overlap,
        "catch_up_limit": s.catch_up_limit,
        "next_fire_at": iso(s.next_fire_at),
        "source": s.source,
    }


class PostgresScheduleMixin:
    """The schedule part of the `Store` interface for PostgreSQL."""

    q: dict[str, LiteralString]

    if TYPE_CHECKING:

        def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...
        async def create_runs(
            self, runs: Sequence[NewRun], *, conn: Any = None
        ) -> list[Created]: ...
        async def _fetch(
            self, conn: AsyncConnection[Any], name: str, args: Any = None
        ) -> list[Row]: ...

    async def sync_schedules(self, sync: ScheduleSync) -> None:
        records = [_record(s) for s in sync.schedules]
        async with self.connection() as conn, conn.transaction():
            if records:
                await conn.execute(
                    self.q["upsert_schedule"],
                    {"schedules": Jsonb(records, dumps=dumps), "now": sync.now},
                )
            if sync.disable_others:
                await conn.execute(
                    self.q["disable_other_schedules"],
                    {"names": [s.name for s in sync.schedules], "now": sync.now},
                )

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        async with self.connection() as conn:
            rows = await self._fetch(conn, "due_schedules", {"now": now, "limit": limit})
        return [Schedule.from_row(r, aware) for r in rows]

    async def next_schedule_fire(self) -> datetime | None:
        async with self.connection() as conn:
            rows = await self._fetch(conn, "next_schedule_fire")
        return aware(rows[0]["next_fire_at"]) if rows else None

    async def claim_schedule_fires(self, batch: FireBatch) -> list[ClaimedFire]:
        """One transaction, six statements, however many schedules are due."""
        if not batch.advances:
            return []
        q = self.q
        names = sorted({a.schedule_name for a in batch.advances})
        async with self.connection() as conn, conn.transaction():
            states = {
                r["name"]: r for r in await self._fetch(conn, "schedule_states", {"names": names})
            }
            advances = [
                a
                for a in batch.advances
                if (row := states.get(a.schedule_name)) is not None
                and row["enabled"]
                and not row["paused"]
                and row["next_fire_at"] == a.expected  # nobody decided this window yet
            ]
            if not advances:
                return []
            await conn.execute(
                q["advance_schedule"],
                {
                    "names": [a.schedule_name for a in advances],
                    "next_fire_ats": [a.next_fire_at for a in advances],
                },
            )
            live = {a.schedule_name for a in advances}
            fires = [f for f in batch.fires if f.schedule_name in live]
            if not fires:
                return []
            rows = await self._fetch(
                conn,
                "insert_schedule_fire",
                {
                    "names": [f.schedule_name for f in fires],
                    "fire_times": [f.fire_time for f in fires],
                    "decided": [f.decided for f in fires],
                },
            )
            won = {(r["schedule_name"], r["fire_time"]) for r in rows}
            mine = [f for f in fires if (f.schedule_name, f.fire_time) in won]
            return await self._start_runs(conn, mine)

    async def _start_runs(self, conn: AsyncConnection[Any], mine: list[Fire]) -> list[ClaimedFire]:
        with_run = [f for f in mine if f.run is not None]
        runs: dict[int, Run] = {}
        if with_run:
            created = await self.create_runs([f.run for f in with_run if f.run], conn=conn)
            runs = {id(f): c.run for f, c in zip(with_run, created, strict=True)}
            args = {
                "names": [f.schedule_name for f in with_run],
                "fire_times": [f.fire_time for f in with_run],
                "run_ids": [runs[id(f)].id for f in with_run],
            }
            await conn.execute(self.q["set_fire_run"], args)
            await conn.execute(self.q["record_schedule_run"], args)
        return [ClaimedFire(f, runs.get(id(f))) for f in mine]

    async def list_schedules(self) -> list[Schedule]:
        async with self.connection() as conn:
            rows = await self._fetch(conn, "list_schedules")
        return [Schedule.from_row(r, aware) for r in rows]

    async def get_schedule(self, name: str) -> Schedule | None:
        async with self.connection() as conn:
            rows = await self._fetch(conn, "get_schedule", {"name": name})
        return Schedule.from_row(rows[0], aware) if rows else None

    async def set_schedule_paused(
        self, name: str, paused: bool, next_fire_at: datetime | None, now: datetime
    ) -> Schedule | None:
        args = {"name": name, "paused": paused, "next_fire_at": next_fire_at, "now": now}
        async with self.connection() as conn, conn.transaction():
            if not await self._fetch(conn, "set_schedule_paused", args):
                return None
            rows = await self._fetch(conn, "get_schedule", {"name": name})
        return Schedule.from_row(rows[0], aware)

    async def trigger_schedule_run(self, name: str, new: NewRun) -> Run:
        """Insert a run for the schedule now (not a fire time) and remember it as its last."""
        async with self.connection() as conn, conn.transaction():
            run = (await self.create_runs([new], conn=conn))[0].run
            await conn.execute(
                self.q["record_schedule_run"],
                {"names": [name], "run_ids": [run.id], "fire_times": [None]},
            )
        return run

    async def list_schedule_fires(self, name: str, limit: int = 100) -> list[FireRecord]:
        async with self.connection() as conn:
            rows = await self._fetch(conn, "list_schedule_fires", {"name": name, "limit": limit})
        out = []
        for r in rows:
            fire_time = aware(r["fire_time"])
            assert fire_time is not None
            out.append(
                FireRecord(
                    r["schedule_name"], fire_time, r["run_id"], r["decided"], aware(r["created_at"])
                )
            )
        return out

    async def live_runs_by_concurrency_key(self, keys: Sequence[str]) -> dict[str, LiveRun]:
        """One live run per key that has any (RUNNING first, else the oldest)."""
        if not keys:
            return {}
        async with self.connection() as conn:
            rows = await self._fetch(
                conn, "live_runs_by_concurrency_key", {"keys": sorted(set(keys))}
            )
        return {
            r["concurrency_key"]: LiveRun(
                r["concurrency_key"], r["id"], r["status"], r["trigger"], r["schedule_name"]
            )
            for r in rows
        }
