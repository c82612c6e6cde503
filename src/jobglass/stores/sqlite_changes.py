"""How other processes learn of changes on SQLite: the events outbox that API servers poll
(`events_after`), and wake-ups for idle workers from other connections' commits (`listen`).

A mixin of `SQLiteStore` (its `_read`, `path` and named queries in `sql/sqlite.sql`).
PostgreSQL pushes both with NOTIFY instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from .base import Event, Notify
from .rows import epoch_to_dt
from .sqlite_wakeup import watch_commits

T = TypeVar("T")


class SQLiteChangesMixin:
    """The change-feed part of the `Store` interface for SQLite."""

    if TYPE_CHECKING:
        q: dict[str, str]
        path: str

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def events_after(self, cursor: int, limit: int = 500) -> list[Event]:
        def read(c: sqlite3.Connection) -> list[Event]:
            rows = c.execute(self.q["events_after"], {"cursor": cursor, "limit": limit})
            return [
                Event(
                    r["id"],
                    r["run_id"],
                    r["kind"],
                    r["log_from"],
                    r["log_to"],
                    epoch_to_dt(r["created_at"]) or datetime.now(),
                )
                for r in rows
            ]

        return await self._read(read)

    async def last_event_id(self) -> int:
        return await self._read(lambda c: int(c.execute(self.q["last_event_id"]).fetchone()[0]))

    async def listen(self, channel_handler: Notify) -> None:
        """Wake-ups only, from outside commits (followers poll `events_after` for events)."""
        if self.path in ("", ":memory:"):
            return
        await watch_commits(self.path, channel_handler)
