"""Schedules on SQLite: a mixin of `SQLiteStore` (its `_write`/`_read` and run insert).

SQL in `sql/sqlite_schedules.sql`. Writes are serialized by SQLite (one IMMEDIATE
transaction at a time), and the `schedule_fires` primary key makes a fire time that another
scheduler process already decided insert nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..models import Run
from ..scheduler import ClaimedFire, FireBatch, FireRecord, LiveRun, Schedule, ScheduleSync
from .base import NewRun
from .rows import epoch_to_dt

T = TypeVar("T")
#: fire times are whole seconds; stored REALs compare within this
_EPSILON = 0.0005


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def schedule_args(s: Schedule, now: float) -> dict[str, Any]:
    return {
        "name": s.name,
        "job_name": s.job_name,
        "cron": s.cron,
        "every_seconds": s.every_seconds,
        "timezone": s.timezone,
        "description": s.description,
        "enabled": int(s.enabled),
        "params": json.dumps(s.params, separators=(",", ":")),
        "tenant_id": s.tenant_id,
        "user_id": s.user_id,
        "correlation_prefix": s.correlation_prefix,
        "misfire": s.misfire,
        "overlap": s.overlap,
        "catch_up_limit": s.catch_up_limit,
        "next_fire_at": _ts(s.next_fire_at),
        "now": now,
        "source": s.source,
    }


class SQLiteScheduleMixin:
    """The schedule part of the `Store` interface for SQLite."""

    if TYPE_CHECKING:
        q: dict[str, str]

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        def _insert_run(self, c: sqlite3.Connection, new: NewRun, now: float) -> Run | None: ...

    async def sync_schedules(self, sync: ScheduleSync) -> None:
        now = sync.now.timestamp()
        q = self.q

        def write(c: sqlite3.Connection) -> None:
            c.executemany(q["upsert_schedule"], [schedule_args(s, now) for s in sync.schedules])
            if sync.disable_others:
                names = json.dumps([s.name for s in sync.schedules])
                c.execute(q["disable_other_schedules"], {"names": names, "now": now})

        await self._write(write)

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        args = {"now": now.timestamp(), "limit": limit}

        def read(c: sqlite3.Connection) -> list[Schedule]:
            rows = c.execute(self.q["due_schedules"], args).fetchall()
            return [Schedule.from_row(r, epoch_to_dt) for r in rows]

        return await self._read(read)

    async def next_schedule_fire(self) -> datetime | None:
        def read(c: sqlite3.Connection) -> datetime | None:
            return epoch_to_dt(c.execute(self.q["next_schedule_fire"]).fetchone()[0])

        return await self._read(read)

    async def claim_schedule_fires(self, batch: FireBatch) -> list[ClaimedFire]:
        """One transaction: insert each fire (the claim), its run, and move schedules on."""
        if not batch.advances:
            return []
        q = self.q

        def write(c: sqlite3.Connection) -> list[ClaimedFire]:
            now = time.time()
            names = json.dumps([a.schedule_name for a in batch.advances])
            states = {r["name"]: r for r in c.execute(q["schedule_states"], {"names": names})}
            live: set[str] = set()
            for adv in batch.advances:
                row = states.get(adv.schedule_name)
                if (
                    row is not None
                    and row["enabled"]
                    and not row["paused"]
                    and row["next_fire_at"] is not None
                    and abs(row["next_fire_at"] - adv.expected.timestamp()) < _EPSILON
                ):
                    live.add(adv.schedule_name)  # nobody decided this window yet
                    c.execute(
                        q["advance_schedule"],
                        {"name": adv.schedule_name, "next_fire_at": _ts(adv.next_fire_at)},
                    )
            out: list[ClaimedFire] = []
            for fire in batch.fires:
                if fire.schedule_name not in live:
                    continue
                key = {"name": fire.schedule_name, "fire_time": fire.fire_time.timestamp()}
                if (
                    c.execute(
                        q["insert_schedule_fire"], {**key, "decided": fire.decided, "now": now}
                    ).fetchone()
                    is None
                ):
                    continue
                run = None
                if fire.run is not None:
                    run = self._insert_run(c, fire.run, now)
                    assert run is not None, "a scheduled run has no job_id to collide on"
                    c.execute(q["set_fire_run"], {**key, "run_id": run.id})
                    c.execute(q["record_schedule_run"], {**key, "run_id": run.id})
                out.append(ClaimedFire(fire, run))
            return out

        return await self._write(write)

    async def list_schedules(self) -> list[Schedule]:
        def read(c: sqlite3.Connection) -> list[Schedule]:
            rows = c.execute(self.q["list_schedules"]).fetchall()
            return [Schedule.from_row(r, epoch_to_dt) for r in rows]

        return await self._read(read)

    async def get_schedule(self, name: str) -> Schedule | None:
        def read(c: sqlite3.Connection) -> Schedule | None:
            row = c.execute(self.q["get_schedule"], {"name": name}).fetchone()
            return None if row is None else Schedule.from_row(row, epoch_to_dt)

        return await self._read(read)

    async def set_schedule_paused(
        self, name: str, paused: bool, next_fire_at: datetime | None, now: datetime
    ) -> Schedule | None:
        q = self.q
        args = {
            "name": name,
            "paused": int(paused),
            "next_fire_at": _ts(next_fire_at),
            "now": now.timestamp(),
        }

        def write(c: sqlite3.Connection) -> Schedule | None:
            if c.execute(q["set_schedule_paused"], args).fetchone() is None:
                return None
            row = c.execute(q["get_schedule"], {"name": name}).fetchone()
            return Schedule.from_row(row, epoch_to_dt)

        return await self._write(write)

    async def trigger_schedule_run(self, name: str, new: NewRun) -> Run:
        """Insert a run for the schedule now (not a fire time) and remember it as its last."""
        q = self.q

        def write(c: sqlite3.Connection) -> Run:
            run = self._insert_run(c, new, time.time())
            assert run is not None, "a triggered run has no job_id to collide on"
            c.execute(q["record_schedule_run"], {"name": name, "run_id": run.id, "fire_time": None})
            return run

        return await self._write(write)

    async def list_schedule_fires(self, name: str, limit: int = 100) -> list[FireRecord]:
        def read(c: sqlite3.Connection) -> list[FireRecord]:
            rows = c.execute(self.q["list_schedule_fires"], {"name": name, "limit": limit})
            return [_fire_record(r) for r in rows]

        return await self._read(read)

    async def live_runs_by_concurrency_key(self, keys: Sequence[str]) -> dict[str, LiveRun]:
        """One live run per key that has any (RUNNING first, else the oldest)."""
        if not keys:
            return {}
        args = {"keys": json.dumps(sorted(set(keys)))}

        def read(c: sqlite3.Connection) -> dict[str, LiveRun]:
            rows = c.execute(self.q["live_runs_by_concurrency_key"], args).fetchall()
            return {r["concurrency_key"]: _live_run(r) for r in rows}

        return await self._read(read)


def _live_run(r: Any) -> LiveRun:
    return LiveRun(r["concurrency_key"], r["id"], r["status"], r["trigger"], r["schedule_name"])


def _fire_record(r: Any) -> FireRecord:
    fire_time = epoch_to_dt(r["fire_time"])
    assert fire_time is not None
    return FireRecord(
        r["schedule_name"], fire_time, r["run_id"], r["decided"], epoch_to_dt(r["created_at"])
    )


__all__ = ["SQLiteScheduleMixin", "schedule_args"]
