"""PostgreSQL store methods for application and audit logs (mixed into `PostgresStore`).

A batch is written by COPY (one per table) inside one transaction: the cheapest way to get
tens of thousands of rows a second into indexed tables. PostgreSQL refuses NUL characters
in text and JSONB, so they become U+FFFD instead of failing the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader

from .applog_types import (
    APP_COLUMNS,
    AUDIT,
    AUDIT_COLUMNS,
    AppLogFilter,
    AppLogRecord,
    applog_filter_sql,
)
from .pg_batch import REPLACEMENT, dumps

_APP_JSON = frozenset({APP_COLUMNS.index("context")})
_AUDIT_JSON = frozenset({AUDIT_COLUMNS.index("data"), AUDIT_COLUMNS.index("context")})


def _trusted(text: str) -> LiteralString:
    """Our own SQL: fixed column and table names, values always bound."""
    return text  # pyright: ignore[reportReturnType]


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return dumps(value)
    except (TypeError, ValueError):  # not JSON: keep what can be kept, as text
        return dumps(json.loads(json.dumps(value, default=str)))


def _copy_row(rec: AppLogRecord, json_at: frozenset[int]) -> list[Any]:
    row = list(rec.row())
    row[0] = datetime.fromtimestamp(row[0], UTC)
    for i, value in enumerate(row):
        if i in json_at:
            row[i] = _json(value)
        elif isinstance(value, str) and "\x00" in value:
            row[i] = value.replace("\x00", REPLACEMENT)
    return row


def _record(kind: str, row: dict[str, Any]) -> AppLogRecord:
    for name in ("context", "data"):
        value = row.get(name)
        if value is not None:
            row[name] = json.loads(value)
    row["created_at"] = row["created_at"].timestamp()
    return AppLogRecord(kind=kind, **row)


class PostgresAppLogMixin:
    """`write_app_logs`, `query_app_logs`, `prune_app_logs` on the PostgreSQL store."""

    q: dict[str, LiteralString]

    if TYPE_CHECKING:

        def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...

    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        """One transaction: COPY the app lines, then the audit events."""
        app = [_copy_row(r, _APP_JSON) for r in records if r.kind != AUDIT]
        audit = [_copy_row(r, _AUDIT_JSON) for r in records if r.kind == AUDIT]
        if not app and not audit:
            return 0
        async with self.connection() as conn, conn.transaction():
            cur = conn.cursor()
            for name, rows in (("copy_app_logs", app), ("copy_audit_logs", audit)):
                if rows:
                    async with cur.copy(self.q[name]) as copy:
                        for row in rows:
                            await copy.write_row(row)
        return len(app) + len(audit)

    async def query_app_logs(self, flt: AppLogFilter) -> list[AppLogRecord]:
        table, columns = (
            ("audit_logs", AUDIT_COLUMNS) if flt.kind == AUDIT else ("app_logs", APP_COLUMNS)
        )
        clause, args = applog_filter_sql(flt, lambda n: f"%({n})s", lambda t: t)
        sql = _trusted(
            f"SELECT id, {', '.join(columns)} FROM {table}{clause}"  # noqa: S608 - fixed names
            " ORDER BY id DESC LIMIT %(limit)s"
        )
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.adapters.register_loader("jsonb", TextLoader)
            await cur.execute(sql, args)
            rows = await cur.fetchall()
        return [_record(flt.kind, row) for row in rows]

    async def prune_app_logs(
        self, app_before: datetime | None, audit_before: datetime | None, batch: int = 5_000
    ) -> int:
        """Delete rows older than the cut-offs, `batch` rows per statement (each its own
        transaction), so retention never holds long locks or builds a huge WAL burst."""
        total = 0
        async with self.connection() as conn:
            for name, before in (
                ("prune_app_logs", app_before),
                ("prune_audit_logs", audit_before),
            ):
                if before is None:
                    continue
                while True:
                    cur = await conn.execute(self.q[name], {"before": before, "batch": batch})
                    total += max(0, cur.rowcount)
                    if cur.rowcount < batch:
                        break
        return total
