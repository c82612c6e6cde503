"""SQLite store methods for application and audit logs (mixed into `SQLiteStore`)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..json_codec import compact_encoder
from .applog_types import (
    APP_COLUMNS,
    AUDIT,
    AUDIT_COLUMNS,
    ORDER_BY,
    AppLogFilter,
    AppLogRecord,
    applog_filter_sql,
    make_common,
    record_rows,
)
from .sqlite_nulls import insert_filled

T = TypeVar("T")
log = logging.getLogger("jobglass.stores.sqlite")

_Row = tuple[Any, ...]


_encode = compact_encoder(default=str)  # what records hold was redacted (cycles broken)


def _dumps(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _context_text(context: Any) -> str | None:
    """`_dumps` for a context, which the logger may have encoded already (a str)."""
    return context if context is None or type(context) is str else _encode(context)


def _rows(records: Sequence[AppLogRecord]) -> tuple[list[_Row], list[_Row]]:
    """The `app_logs` and `audit_logs` rows (`APP_COLUMNS`/`AUDIT_COLUMNS`)."""
    app: list[_Row] = []
    audit: list[_Row] = []
    add = app.append
    for kind, at, level, message, action, resource, common, data, context, _ in record_rows(
        records
    ):
        if kind == AUDIT:
            audit.append((at, action, resource, *common, _dumps(data), _context_text(context)))
        else:
            add((at, level, message, *common, _context_text(context)))
    return app, audit


def _utf8(rows: list[_Row]) -> list[_Row]:
    """Rows whose strings all encode as UTF-8 (a lone surrogate becomes U+FFFD)."""
    return [tuple(_utf8_text(v) if type(v) is str else v for v in row) for row in rows]


def _utf8_text(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


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
    #: Records per batch (`AppLogHub.batch_size`): a batch holds the store's one writer.
    app_log_batch_size = 5_000

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        """Insert a batch of app lines and audit events in one transaction."""
        app, audit = _rows(records)
        try:
            return await self._write(self._inserter(app, audit))
        except UnicodeEncodeError as err:  # a lone surrogate: clean and retry once
            log.warning("app log batch refused (%s); retrying with cleaned values", err)
            return await self._write(self._inserter(_utf8(app), _utf8(audit)))

    def _inserter(self, app: list[_Row], audit: list[_Row]) -> Callable[[sqlite3.Connection], int]:
        def write(c: sqlite3.Connection) -> int:
            if app:  # their empty context columns unbound: see sqlite_nulls
                insert_filled(c, "app_logs", APP_COLUMNS, app)
            if audit:
                insert_filled(c, "audit_logs", AUDIT_COLUMNS, audit)
            return len(app) + len(audit)

        return write

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
