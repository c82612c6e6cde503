"""Application and audit log records as they cross the store boundary, and their filters.

Both kinds share one record type (`AppLogRecord`): an application line has a level and a
message, an audit event an action, a resource and its data. They live in two tables
(`app_logs`, `audit_logs`) because they differ in volume, retention and query shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple, overload

APP = "app"
AUDIT = "audit"
APP_LEVELS = ("debug", "info", "warning", "error")

#: Columns both tables have, in insert order (after `created_at` and the kind's own columns).
COMMON_COLUMNS = (
    "user_id",
    "correlation_id",
    "source_key",
    "source_display_name",
    "external_system_key",
    "external_system_display_name",
    "record_key",
    "record_display_name",
    "ip_address",
    "method",
    "path",
    "user_agent",
    "session_id",
    "referer",
    "request_size",
    "response_size",
    "duration_ms",
    "credential_id",
    "credential_type",
)
APP_COLUMNS = ("created_at", "level", "message", *COMMON_COLUMNS, "context")
AUDIT_COLUMNS = ("created_at", "action", "resource", *COMMON_COLUMNS, "data", "context")

#: Equality filters: each has an index (see the 0003 migration) in every table that has it.
INDEXED_FILTERS = (
    "user_id",
    "correlation_id",
    "source_key",
    "source_display_name",
    "external_system_key",
    "external_system_display_name",
    "record_key",
    "record_display_name",
)
AUDIT_FILTERS = ("action", "resource")

#: Column name -> the seed's camelCase JSON name.
CAMEL = {
    "user_id": "userId",
    "correlation_id": "correlationId",
    "source_key": "sourceKey",
    "source_display_name": "sourceDisplayName",
    "external_system_key": "externalSystemKey",
    "external_system_display_name": "externalSystemDisplayName",
    "record_key": "recordKey",
    "record_display_name": "recordDisplayName",
    "ip_address": "ipAddress",
    "method": "method",
    "path": "path",
    "user_agent": "userAgent",
    "session_id": "sessionId",
    "referer": "referer",
    "request_size": "requestSize",
    "response_size": "responseSize",
    "duration_ms": "durationMs",
    "credential_id": "credentialId",
    "credential_type": "credentialType",
}
SNAKE = {camel: snake for snake, camel in CAMEL.items()}
INT_COLUMNS = frozenset({"request_size", "response_size", "duration_ms"})


COMMON_INDEX = {column: i for i, column in enumerate(COMMON_COLUMNS)}
NO_COMMON: tuple[Any, ...] = (None,) * len(COMMON_COLUMNS)
USER_AT = COMMON_INDEX["user_id"]
CORRELATION_AT = COMMON_INDEX["correlation_id"]


def make_common(fields: Mapping[str, Any]) -> tuple[Any, ...]:
    """`COMMON_COLUMNS` values, in order, from a column -> value mapping."""
    return tuple(map(fields.get, COMMON_COLUMNS))  # C-level: a generator costs 3x more


class AppLogRecord(NamedTuple):
    """One application log line (`kind="app"`) or audit event (`kind="audit"`).

    `created_at` is unix seconds (cheap to take on every log call); `common` holds the
    `COMMON_COLUMNS` values in order (a tuple shared with the logger that made the record,
    so a log call copies nothing); `id` is set by the store. `context` is a dict, or (in
    the records a logger makes) that dict already encoded as compact JSON text, which the
    stores write as is: `context_dict()` gives the dict either way. A named tuple: the
    app's log buffer holds the same fields as plain tuples (see `RecordBatch`).
    """

    kind: str
    created_at: float
    level: str | None = None
    message: str | None = None
    action: str | None = None
    resource: str | None = None
    common: tuple[Any, ...] = NO_COMMON
    data: Any = None
    context: dict[str, Any] | str | None = None
    id: int | None = None

    def context_dict(self) -> dict[str, Any] | None:
        """The context as a dict (decoded when the logger left it as JSON text)."""
        context = self.context
        if isinstance(context, str):
            decoded: dict[str, Any] = json.loads(context)
            return decoded
        return context

    def get(self, column: str) -> Any:
        """A common column's value (`record.get("correlation_id")`)."""
        return self.common[COMMON_INDEX[column]]

    def row(self) -> tuple[Any, ...]:
        """Values in `APP_COLUMNS` / `AUDIT_COLUMNS` order (JSON columns as they are: data
        not yet encoded, the context a dict or its JSON text)."""
        if self.kind == AUDIT:
            return (
                self.created_at,
                self.action,
                self.resource,
                *self.common,
                self.data,
                self.context,
            )
        return (self.created_at, self.level, self.message, *self.common, self.context)

    def to_json(self) -> dict[str, Any]:
        """camelCase, every field present (null when unknown), as the admin API returns it."""
        out: dict[str, Any] = {
            "id": None if self.id is None else str(self.id),
            "timestamp": _iso(self.created_at),
        }
        if self.kind == AUDIT:
            out["action"] = self.action
            out["resource"] = self.resource
        else:
            out["level"] = self.level
            out["message"] = self.message
        for column, value in zip(COMMON_COLUMNS, self.common, strict=True):
            out[CAMEL[column]] = value
        if self.kind == AUDIT:
            out["data"] = self.data
        out["context"] = self.context_dict()
        return out


#: `new_record((kind, created_at, level, message, action, resource, common, data, context,
#: id))`: an `AppLogRecord` from a full 10-tuple, without the keyword-handling `__new__`.
new_record: Callable[[tuple[Any, ...]], AppLogRecord] = partial(tuple.__new__, AppLogRecord)


class RecordBatch(Sequence[AppLogRecord]):
    """A batch from the app's log buffer: plain tuples in `AppLogRecord` field order, made
    `AppLogRecord`s only when read through the `Sequence` interface.

    The stores read `rows` directly (`record_rows`). Making a record object for each row of
    a batch in flight would hand the cyclic garbage collector hundreds of thousands of
    objects to walk (a tuple subclass is never untracked), for nothing.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> AppLogRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[AppLogRecord]: ...
    def __getitem__(self, index: int | slice) -> AppLogRecord | list[AppLogRecord]:
        if isinstance(index, slice):
            return list(map(new_record, self.rows[index]))
        return new_record(self.rows[index])

    def __iter__(self) -> Iterator[AppLogRecord]:
        return map(new_record, self.rows)

    def __repr__(self) -> str:
        return f"RecordBatch({len(self.rows)} records)"


def record_rows(records: Sequence[AppLogRecord]) -> Sequence[tuple[Any, ...]]:
    """The records as tuples in `AppLogRecord` field order, for positional unpacking (an
    `AppLogRecord` is one already; a `RecordBatch` has them without making records)."""
    return records.rows if type(records) is RecordBatch else records


def _iso(epoch: float) -> str:
    value = datetime.fromtimestamp(epoch, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class AppLogFilter:
    """Newest first; `before_id` is the cursor from the previous page."""

    kind: str = APP
    levels: Sequence[str] = ()
    user_id: str | None = None
    correlation_id: str | None = None
    source_key: str | None = None
    source_display_name: str | None = None
    external_system_key: str | None = None
    external_system_display_name: str | None = None
    record_key: str | None = None
    record_display_name: str | None = None
    action: str | None = None
    resource: str | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    before_id: int | None = None
    limit: int = 50


#: Newest first; ties (same created_at) by id. Every index ends in (created_at, id).
ORDER_BY = " ORDER BY created_at DESC, id DESC"


def applog_filter_sql(
    flt: AppLogFilter,
    placeholder: Callable[[str], str],
    encode_time: Callable[[datetime], Any],
    cursor_at: Any = None,
) -> tuple[str, dict[str, Any]]:
    """WHERE clause (values bound, column names from a fixed list) and its parameters.

    With `flt.before_id`, `cursor_at` is that row's stored `created_at`: the page continues
    strictly after (`created_at`, `id`) in newest-first order.
    """
    where: list[str] = []
    args: dict[str, Any] = {}
    if flt.kind == APP and flt.levels:
        marks = []
        for i, level in enumerate(flt.levels):
            args[f"level{i}"] = level
            marks.append(placeholder(f"level{i}"))
        where.append(f"level = {marks[0]}" if len(marks) == 1 else f"level IN ({', '.join(marks)})")
    names = INDEXED_FILTERS + (AUDIT_FILTERS if flt.kind == AUDIT else ())
    for name in names:
        value = getattr(flt, name)
        if value is not None:
            where.append(f"{name} = {placeholder(name)}")
            args[name] = value
    if flt.since is not None:
        where.append(f"created_at >= {placeholder('since')}")
        args["since"] = encode_time(flt.since)
    if flt.until is not None:
        where.append(f"created_at < {placeholder('until')}")
        args["until"] = encode_time(flt.until)
    if flt.before_id is not None and cursor_at is not None:
        where.append(f"(created_at, id) < ({placeholder('cursor_at')}, {placeholder('before_id')})")
        args["cursor_at"] = cursor_at
        args["before_id"] = flt.before_id
    args["limit"] = flt.limit
    return (" WHERE " + " AND ".join(where)) if where else "", args
