"""Workers on SQLite: registration, heartbeats (lease renewal, cancel pick-up), listing.

A mixin of `SQLiteStore` (its `_write`/`_read` and named queries in `sql/sqlite.sql`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from .base import Heartbeat, WorkerInfo
from .rows import epoch_to_dt, worker_from_row

T = TypeVar("T")


class SQLiteWorkerMixin:
    """The worker part of the `Store` interface for SQLite."""

    if TYPE_CHECKING:
        q: dict[str, str]

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        args = {
            "id": worker.id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "queues": json.dumps(worker.queues),
            "concurrency": worker.concurrency,
            "now": time.time(),
        }
        await self._write(lambda c: c.execute(self.q["upsert_worker"], args))

    async def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[int, int]], lease_seconds: float
    ) -> Heartbeat:
        q = self.q

        def write(c: sqlite3.Connection) -> Heartbeat:
            now = time.time()
            c.execute(q["touch_worker"], {"id": worker_id, "now": now})
            cancel, lost = set(), set()
            for run_id, attempt in runs:
                row = c.execute(
                    q["renew_lease"],
                    {"run_id": run_id, "attempt": attempt, "lease_until": now + lease_seconds},
                ).fetchone()
                if row is None:
                    lost.add(run_id)
                elif row["cancel_requested"]:
                    cancel.add(run_id)
            return Heartbeat(frozenset(cancel), frozenset(lost))

        return await self._write(write)

    async def remove_worker(self, worker_id: str) -> None:
        await self._write(lambda c: c.execute(self.q["remove_worker"], {"id": worker_id}))

    async def list_workers(self, stale_after: float) -> list[WorkerInfo]:
        def read(c: sqlite3.Connection) -> list[WorkerInfo]:
            rows = c.execute(self.q["list_workers"], {"since": time.time() - stale_after})
            return [worker_from_row(r, epoch_to_dt) for r in rows]

        return await self._read(read)
