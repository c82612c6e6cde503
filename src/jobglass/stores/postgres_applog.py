"""PostgreSQL store methods for application and audit logs (mixed into `PostgresStore`).

A batch is written by binary COPY (one per table) inside one transaction: the cheapest way to get
tens of thousands of rows a second into indexed tables. PostgreSQL refuses NUL characters
in text and JSONB, so they become U+FFFD instead of failing the whole batch.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg.types.string import TextLoader

from .applog_types import (
    APP_COLUMNS,
    AUDIT,
    AUDIT_COLUMNS,
    COMMON_COLUMNS,
    INT_COLUMNS,
    ORDER_BY,
    AppLogFilter,
    AppLogRecord,
    applog_filter_sql,
    make_common,
)
from .pg_batch import REPLACEMENT, dumps

log = logging.getLogger("jobglass.stores.postgres")

_APP_JSON = (APP_COLUMNS.index("context"),)
_AUDIT_JSON = (AUDIT_COLUMNS.index("data"), AUDIT_COLUMNS.index("context"))
_COMMON_TYPES = tuple("int8" if c in INT_COLUMNS else "text" for c in COMMON_COLUMNS)
#: Binary COPY needs each column's type: (timestamptz, two texts, the common ones, JSON).
_APP_TYPES = ("timestamptz", "text", "text", *_COMMON_TYPES, "jsonb")
_AUDIT_TYPES = ("timestamptz", "text", "text", *_COMMON_TYPES, "jsonb", "jsonb")
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _trusted(text: str) -> LiteralString:
    """Our own SQL: fixed column and table names, values always bound."""
    return text  # pyright: ignore[reportReturnType]


def _json_text(value: Any) -> str:
    """JSONB text for COPY: unknown objects as strings, no \\u0000 (PostgreSQL refuses it)."""
    text = _encode(value)
    return dumps(_clean(value)) if "\\u0000" in text else text


def _fast_row(rec: AppLogRecord, json_at: tuple[int, ...]) -> list[Any]:
    row = list(rec.row())
    row[0] = datetime.fromtimestamp(row[0], UTC)
    return row  # JSON columns stay objects: the COPY's jsonb dumper calls _json_text


def _safe_row(rec: AppLogRecord, json_at: tuple[int, ...]) -> list[Any]:
    """After PostgreSQL refused a batch: no NUL in text, only JSON it accepts (no NaN)."""
    row = _fast_row(rec, json_at)
    for i, value in enumerate(row):
        if i in json_at:
            row[i] = _clean(value)
        elif isinstance(value, str) and "\x00" in value:
            row[i] = value.replace("\x00", REPLACEMENT)
    return row


def _clean(value: Any) -> Any:
    """JSON-safe copy: NUL replaced, non-finite floats and unknown objects as strings."""
    if isinstance(value, str):
        return value.replace("\x00", REPLACEMENT)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, int):
        return value
    return _clean(str(value))


def _record(kind: str, row: dict[str, Any]) -> AppLogRecord:
    for name in ("context", "data"):
        value = row.get(name)
        if value is not None:
            row[name] = json.loads(value)
    return AppLogRecord(
        kind,
        row["created_at"].timestamp(),
        row.get("level"),
        row.get("message"),
        row.get("action"),
        row.get("resource"),
        make_common(row),
        row.get("data"),
        row["context"],
        row["id"],
    )


class PostgresAppLogMixin:
    """`write_app_logs`, `query_app_logs`, `prune_app_logs` on the PostgreSQL store."""

    q: dict[str, LiteralString]

    if TYPE_CHECKING:

        def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...

    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        """One transaction: COPY the app lines, then the audit events."""
        app = [r for r in records if r.kind != AUDIT]
        audit = [r for r in records if r.kind == AUDIT]
        if not app and not audit:
            return 0
        try:
            await self._copy_logs(app, audit, _fast_row)
        except psycopg.DataError as err:  # e.g. a NUL character or NaN: clean and retry once
            log.warning("app log batch refused (%s); retrying with cleaned values", err)
            await self._copy_logs(app, audit, _safe_row)
        return len(app) + len(audit)

    async def _copy_logs(
        self,
        app: list[AppLogRecord],
        audit: list[AppLogRecord],
        to_row: Callable[[AppLogRecord, tuple[int, ...]], list[Any]],
    ) -> None:
        async with self.connection() as conn, conn.transaction():
            cur = conn.cursor()
            set_json_dumps(_json_text, cur)
            for name, records, json_at, types in (
                ("copy_app_logs", app, _APP_JSON, _APP_TYPES),
                ("copy_audit_logs", audit, _AUDIT_JSON, _AUDIT_TYPES),
            ):
                if records:
                    async with cur.copy(self.q[name]) as copy:
                        copy.set_types(types)
                        for record in records:
                            await copy.write_row(to_row(record, json_at))

    async def query_app_logs(self, flt: AppLogFilter) -> list[AppLogRecord]:
        table, columns = (
            ("audit_logs", AUDIT_COLUMNS) if flt.kind == AUDIT else ("app_logs", APP_COLUMNS)
        )
        select = f"SELECT id, {', '.join(columns)} FROM {table}"  # noqa: S608 - fixed names
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.adapters.register_loader("jsonb", TextLoader)
            cursor_at = None
            if flt.before_id is not None:
                await cur.execute(
                    _trusted(f"SELECT created_at FROM {table} WHERE id = %s"),  # noqa: S608
                    (flt.before_id,),
                )
                found = await cur.fetchone()
                if found is None:
                    return []  # the cursor row is gone (pruned): nothing older to page to
                cursor_at = found["created_at"]
            clause, args = applog_filter_sql(flt, lambda n: f"%({n})s", lambda t: t, cursor_at)
            await cur.execute(_trusted(f"{select}{clause}{ORDER_BY} LIMIT %(limit)s"), args)
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
