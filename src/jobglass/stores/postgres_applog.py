"""PostgreSQL store methods for application and audit logs (mixed into `PostgresStore`).

A batch is written by binary COPY (one per table; two in one transaction when a batch has
both kinds): the cheapest way to get tens of thousands of rows a second into indexed tables.
The COPY data is built here, not by psycopg's per-value dumpers: what records share (the
logger's common columns, the level, a literal message) is encoded once per batch, a row
costs one `struct.pack`, one JSON encoding and a few appends, and it goes out in chunks
so the server starts on a batch while the rest is encoded. PostgreSQL refuses NUL
characters in text and JSONB (and NaN in JSONB): a refused batch is cleaned (U+FFFD) and
written again through psycopg's dumpers instead of failing forever.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg.types.string import TextLoader

from ..json_codec import compact_encoder
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
    record_rows,
)
from .pg_batch import REPLACEMENT, dumps
from .queries import trusted as _trusted

log = logging.getLogger("jobglass.stores.postgres")

_APP_JSON = (APP_COLUMNS.index("context"),)
_AUDIT_JSON = (AUDIT_COLUMNS.index("data"), AUDIT_COLUMNS.index("context"))
_COMMON_TYPES = tuple("int8" if c in INT_COLUMNS else "text" for c in COMMON_COLUMNS)
#: Binary COPY needs each column's type: (timestamptz, two texts, the common ones, JSON).
_APP_TYPES = ("timestamptz", "text", "text", *_COMMON_TYPES, "jsonb")
_AUDIT_TYPES = ("timestamptz", "text", "text", *_COMMON_TYPES, "jsonb", "jsonb")
_encode = compact_encoder(default=str)  # what records hold was redacted (cycles broken)
_COPY_SQL = {AUDIT: "copy_audit_logs", "app": "copy_app_logs"}

# -- binary COPY, built by hand: https://www.postgresql.org/docs/current/sql-copy.html --------
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
#: timestamptz is int64 microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
#: Rows per `copy.write`: the server works on one chunk while the next is built.
_CHUNK = 1_000
_pack_length = struct.Struct(">i").pack
_pack_int8 = struct.Struct(">iq").pack  # length (8), value
_pack_head = struct.Struct(">hiq").pack  # field count, created_at's length (8) and value
_APP_FIELDS = len(APP_COLUMNS)
_AUDIT_FIELDS = len(AUDIT_COLUMNS)
_Row = tuple[Any, ...]  # an AppLogRecord's fields
_INT_AT = frozenset(i for i, column in enumerate(COMMON_COLUMNS) if column in INT_COLUMNS)


def _json_text(value: Any) -> str:
    """JSONB text for COPY: unknown objects as strings, no \\u0000 (PostgreSQL refuses it)."""
    text = _encode(value)
    return dumps(_clean(value)) if "\\u0000" in text else text


def _context_text(context: Any) -> str:
    """`_json_text` for a context, which the logger may have encoded already (a str)."""
    if type(context) is not str:
        return _json_text(context)
    return dumps(_clean(json.loads(context))) if "\\u0000" in context else context


def _context_value(context: Any) -> Any:
    return json.loads(context) if type(context) is str else context


def _text_field(value: object) -> bytes:
    data = (value if type(value) is str else str(value)).encode()
    return _pack_length(len(data)) + data


def _jsonb_field(text: str) -> bytes:
    data = text.encode()
    return _pack_length(len(data) + 1) + b"\x01" + data  # jsonb's binary format: version 1


def _common_fields(common: tuple[Any, ...]) -> bytes:
    parts = []
    for i, value in enumerate(common):
        if value is None:
            parts.append(_NULL)
        elif i in _INT_AT:
            parts.append(_pack_int8(8, value))
        else:
            parts.append(_text_field(value))
    return b"".join(parts)


class _Shared:
    """Encodings of the values a batch's records share: the common columns (usually one
    tuple per logger, so looked up by identity first) and short texts (levels, messages)."""

    __slots__ = ("by_id", "by_value", "texts")

    def __init__(self) -> None:
        self.by_id: dict[int, bytes] = {}  # the records keep their tuples alive meanwhile
        self.by_value: dict[tuple[Any, ...], bytes] = {}
        self.texts: dict[object, bytes] = {None: _NULL}

    def common(self, common: tuple[Any, ...]) -> bytes:
        try:
            data = self.by_value.get(common)
        except TypeError:  # an unhashable value: encode it, do not keep it
            return _common_fields(common)
        if data is None:
            data = self.by_value[common] = _common_fields(common)
        self.by_id[id(common)] = data
        return data

    def text(self, value: object) -> bytes:
        data = self.texts[value] = _text_field(value)
        return data


def _copy_chunks(records: Sequence[_Row], kind: str) -> Iterator[bytes]:
    """The binary COPY data for `records` (`AppLogRecord` fields in order, all of one
    kind), `_CHUNK` rows at a time."""
    shared = _Shared()
    by_id, texts = shared.by_id, shared.texts
    parts: list[bytes] = [_SIGNATURE]
    add = parts.append
    last_context: object = parts  # no record's context
    last_json = _NULL
    fields = _AUDIT_FIELDS if kind == AUDIT else _APP_FIELDS
    for n, (_, at, level, message, action, resource, common, data, context, _) in enumerate(
        records, 1
    ):
        add(_pack_head(fields, 8, round(at * 1e6) - _PG_EPOCH_US))
        if kind == AUDIT:
            add(texts.get(action) or shared.text(action))
            add(texts.get(resource) or shared.text(resource))
        else:
            add(texts.get(level) or shared.text(level))
            add(texts.get(message) or shared.text(message))
        add(by_id.get(id(common)) or shared.common(common))
        if kind == AUDIT:
            add(_NULL if data is None else _jsonb_field(_json_text(data)))
        if context is not last_context:  # a logger's own context is shared by its lines
            last_context = context
            last_json = _NULL if context is None else _jsonb_field(_context_text(context))
        add(last_json)
        if n % _CHUNK == 0:
            yield b"".join(parts)
            parts.clear()
    add(_TRAILER)
    yield b"".join(parts)


def _fast_row(rec: AppLogRecord, json_at: tuple[int, ...]) -> list[Any]:
    row = list(rec.row())
    row[0] = datetime.fromtimestamp(row[0], UTC)
    return row  # JSON columns stay objects: the COPY's jsonb dumper calls _json_text


def _safe_row(rec: AppLogRecord, json_at: tuple[int, ...]) -> list[Any]:
    """After PostgreSQL refused a batch: no NUL in text, only JSON it accepts (no NaN)."""
    row = _fast_row(rec, json_at)
    row[-1] = _context_value(row[-1])  # the context comes last (APP_COLUMNS, AUDIT_COLUMNS)
    for i, value in enumerate(row):
        if i in json_at:
            row[i] = _clean(value)
        elif isinstance(value, str):
            row[i] = _clean_text(value)
    return row


def _clean(value: Any) -> Any:
    """JSON-safe copy: NUL replaced, non-finite floats and unknown objects as strings."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, int):
        return value
    return _clean(str(value))


def _clean_text(value: str) -> str:
    """No NUL, and valid UTF-8 (a lone surrogate cannot be encoded: it becomes U+FFFD)."""
    value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


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
    #: Records per batch (`AppLogHub.batch_size`): each COPY costs a few round trips to the
    #: server, and the loop thread that makes them shares the GIL with the threads that log,
    #: so big batches keep the server busy (20,000 rows are ~5 MB and ~0.3 s of its work).
    app_log_batch_size = 20_000

    if TYPE_CHECKING:

        def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...

    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        """One transaction: COPY the app lines, then the audit events."""
        rows = record_rows(records)  # positional: kind first (see AppLogRecord)
        if not rows:
            return 0
        audit = [r for r in rows if r[0] == AUDIT]
        app = [r for r in rows if r[0] != AUDIT] if audit else rows
        try:
            await self._copy_fast(app, audit)
        except (psycopg.DataError, ValueError, TypeError, struct.error) as err:
            # a NUL character, NaN, a value our encoder does not take: clean and retry once
            log.warning("app log batch refused (%s); retrying with cleaned values", err)
            await self._copy_logs(
                [AppLogRecord(*r) for r in app], [AppLogRecord(*r) for r in audit], _safe_row
            )
        return len(app) + len(audit)

    async def _copy_fast(self, app: Sequence[_Row], audit: Sequence[_Row]) -> None:
        async with self.connection() as conn:
            if conn.autocommit and not (app and audit):  # one COPY is its own transaction
                await self._copy_kind(conn, app or audit, AUDIT if audit else "app")
                return
            async with conn.transaction():
                if app:
                    await self._copy_kind(conn, app, "app")
                if audit:
                    await self._copy_kind(conn, audit, AUDIT)

    async def _copy_kind(
        self, conn: AsyncConnection[Any], records: Sequence[_Row], kind: str
    ) -> None:
        async with conn.cursor().copy(self.q[_COPY_SQL[kind]]) as copy:
            for chunk in _copy_chunks(records, kind):
                await copy.write(chunk)

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
