"""SQLite store methods for application and audit logs (mixed into `SQLiteStore`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .applog_types import (
    APP_COLUMNS,
    AUDIT,
    AUDIT_COLUMNS,
    ORDER_BY,
    AppLogFilter,
    AppLogRecord,
    applog_filter_sql,
    make_common,
)

T = TypeVar("T")

_JSON_APP = APP_COLUMNS.index("context")
_JSON_AUDIT = (AUDIT_COLUMNS.index("data"), AUDIT_COLUMNS.index("context"))


_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _dumps(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _app_row(rec: AppLogRecord) -> tuple[Any, ...]:
    row = list(rec.row())
    row[_JSON_APP] = _dumps(row[_JSON_APP])
    return tuple(row)


def _audit_row(rec: AppLogRecord) -> tuple[Any, ...]:
    row = list(rec.row())
    for i in _JSON_AUDIT:
        row[i] = _dumps(row[i])
    return tuple(row)


def _record(kind: str, row: sqlite3.Row) -> AppLogRecord:
    values = dict(zip(row.keys(), tuple(row), strict=True))
    for name in ("context", "data"):
        if values.get(name) is not None:
            values[name] = json.loads(values[name])
    return AppLogRecord(
        kind,
        values["created_at"],
        values.get("level"),
        values.get("message"),
        values.get("action"),
        values.get("resource"),
        make_common(values),
        values.get("data"),
        values["context"],
        values["id"],
    )


class SQLiteAppLogMixin:
    """`write_app_logs`, `query_app_logs`, `prune_app_logs` on the SQLite store."""

    q: dict[str, str]

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        """Insert a batch of app lines and audit events in one transaction."""
        app = [_app_row(r) for r in records if r.kind != AUDIT]
        audit = [_audit_row(r) for r in records if r.kind == AUDIT]
        q = self.q

        def write(c: sqlite3.Connection) -> int:
            if app:
                c.executemany(q["insert_app_log"], app)
            if audit:
                c.executemany(q["insert_audit_log"], audit)
            return len(app) + len(audit)

        return await self._write(write)

    async def query_app_logs(self, flt: AppLogFilter) -> list[AppLogRecord]:
        table, columns = (
            ("audit_logs", AUDIT_COLUMNS) if flt.kind == AUDIT else ("app_logs", APP_COLUMNS)
        )
        select = f"SELECT id, {', '.join(columns)} FROM {table}"  # noqa: S608 - fixed names

        def read(c: sqlite3.Connection) -> list[AppLogRecord]:
            cursor_at = None
            if flt.before_id is not None:
                row = c.execute(f"SELECT created_at FROM {table} WHERE id = ?", (flt.before_id,))  # noqa: S608
                found = row.fetchone()
                if found is None:
                    return []  # the cursor row is gone (pruned): nothing older to page to
                cursor_at = found[0]
            clause, args = applog_filter_sql(flt, lambda n: f":{n}", datetime.timestamp, cursor_at)
            sql = f"{select}{clause}{ORDER_BY} LIMIT :limit"
            return [_record(flt.kind, row) for row in c.execute(sql, args)]

        return await self._read(read)

    async def prune_app_logs(
        self, app_before: datetime | None, audit_before: datetime | None, batch: int = 5_000
    ) -> int:
        """Delete app lines and audit events older than the cut-offs, `batch` rows per
        transaction, so the single writer is never held for long."""
        total = 0
        for name, before in (("prune_app_logs", app_before), ("prune_audit_logs", audit_before)):
            if before is None:
                continue
            args = {"before": before.timestamp(), "batch": batch}
            delete = _deleter(self.q[name], args)
            while True:
                deleted = await self._write(delete)
                total += deleted
                if deleted < batch:
                    break
                await asyncio.sleep(0)  # let queued writes in between batches
        return total


def _deleter(sql: str, args: dict[str, Any]) -> Callable[[sqlite3.Connection], int]:
    def delete(c: sqlite3.Connection) -> int:
        return int(c.execute(sql, args).rowcount)

    return delete
