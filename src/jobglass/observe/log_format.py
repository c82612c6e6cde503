"""Run fields on log records, and the two formatters that write them (text and JSON lines).

- `ContextFilter` adds the run's fields to every record that reaches a handler it is
  attached to, including the job's own `logging` calls (async jobs and sync jobs in
  worker threads alike): `correlation_id`, `job_name`, `job_id` (the run id), `attempt`,
  `fire_time`, `next_fire_time`, `tenant_id`, `user_id` and `job.<param>` (sensitive keys
  redacted). Outside a run, a bound correlation/tenant/user id (an HTTP request) is added.
  A handler filter, not a record factory: a factory would make `extra={"job_name": ...}`
  raise inside runs.
- `JsonFormatter`: one JSON object per line with those fields plus time, level, logger,
  message, exc and any `extra=` values (sensitive keys redacted).
- `TextFormatter`: `time LEVEL logger: message [correlation_id=... job=name#id attempt=n]`.

Per-run work is done once per run: the fields are computed on the first record, and each
formatter formats them once (the JSON members, the text tags) for every record that
carries them unchanged. Both formatters can also make a run's line without a record
(`run_line`), for `observe.logging`'s start and end lines.
"""

from __future__ import annotations

import contextvars
import json as _json
import logging
import math
import operator
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import filterfalse
from typing import TYPE_CHECKING, Any

from ..models import iso
from .context import current_correlation_id, current_run, current_tenant_id, current_user_id
from .redact import DEFAULT_SENSITIVE_KEYS, REDACTED, is_sensitive, redact

if TYPE_CHECKING:
    from ..context import JobContext

__all__ = ["RUN_FIELDS", "ContextFilter", "JsonFormatter", "TextFormatter", "run_log_fields"]

#: The fields a record inside a run carries, in JSON output order (then `job.<param>`).
RUN_FIELDS = (
    "correlation_id",
    "job_name",
    "job_id",
    "attempt",
    "fire_time",
    "next_fire_time",
    "tenant_id",
    "user_id",
)

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class RunFields:
    """The fields of one attempt, computed on the first record that needs them.

    `formats` holds what a formatter makes of them once per run (`JsonFormatter`: their
    JSON text; `TextFormatter`: the tags), for the records that carry them unchanged: the
    start and end lines and the job's own records.
    """

    __slots__ = ("ctx", "fields", "formats")

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.fields: dict[str, Any] | None = None
        self.formats: dict[logging.Formatter, Any] = {}

    def get(self) -> dict[str, Any]:
        if self.fields is None:
            self.fields = run_log_fields(self.ctx)
        return self.fields


fields_var: contextvars.ContextVar[RunFields | None] = contextvars.ContextVar(
    "jobglass_log_fields", default=None
)


# Values that `redact` and `JsonFormatter._clean` return as they are (exactly these types).
_SCALARS = frozenset({str, int, float, bool})
_FLAT = _SCALARS | {type(None)}


def run_log_fields(ctx: JobContext) -> dict[str, Any]:
    """The structured fields of a run's records; params redacted per the app's settings."""
    keys = ctx.app.settings.sensitive_keys if ctx.app is not None else DEFAULT_SENSITIVE_KEYS
    fields: dict[str, Any] = {
        "correlation_id": ctx.correlation_id,
        "job_name": ctx.job_name,
        "job_id": ctx.run_id,
        "attempt": ctx.attempt,
        "fire_time": iso(ctx.fire_time),
        "next_fire_time": iso(ctx.next_fire_time),
        "tenant_id": ctx.tenant_id,
        "user_id": ctx.user_id,
    }
    params = ctx.params
    if not params:
        return fields
    if type(params) is dict:
        for key, value in params.items():  # flat values (the usual): `redact` in one pass
            if type(value) not in _FLAT:
                break
            sensitive = isinstance(key, str) and is_sensitive(key, keys)
            fields[f"job.{key}"] = REDACTED if sensitive else value
        else:
            return fields
    redacted = redact(params, keys)  # nested values: same keys, in the same order
    if isinstance(redacted, Mapping):
        for key, value in redacted.items():
            fields[f"job.{key}"] = value
    return fields


def _current_fields() -> dict[str, Any] | None:
    holder = fields_var.get()
    if holder is not None:
        return holder.get()
    ctx = current_run()
    if ctx is not None:  # the logging middleware is not installed: compute per record
        return run_log_fields(ctx)
    return None


class ContextFilter(logging.Filter):
    """Adds the current run's (or request's) fields to each record; never drops one.

    Values given with `extra=` win over the context's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        holder = fields_var.get()
        if holder is None:
            fields = _current_fields()
        else:
            fields = holder.fields
            if fields is None:
                fields = holder.get()
        if fields is not None:
            if fields.keys().isdisjoint(attrs.keys()):  # the common case: one C-level copy
                attrs.update(fields)
                return True
            for key, value in fields.items():
                if key not in attrs:
                    attrs[key] = value
            return True
        for key, get in (
            ("correlation_id", current_correlation_id),
            ("tenant_id", current_tenant_id),
            ("user_id", current_user_id),
        ):
            value = get()
            if value is not None and key not in attrs:
                attrs[key] = value
        return True


# One encoder for every line: `json.dumps(..., default=str)` builds a JSONEncoder per call.
# No circular check: nested values go through `redact`, which replaces a cycle.
_encode = _json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False).encode
_quote = _json.encoder.encode_basestring  # what the encoder does with a str
# What a record's extras are not: the standard attributes and the head of a line.
_NOT_EXTRA = _STANDARD | {"time", "level", "logger"}
# Extras that `format` places after others (`exc`, `stack`): `_format_keys` lays them out.
_TAIL = frozenset({"exc", "stack"})


def _value(value: Any) -> str:
    """`_encode(value)`, without its per-call set-up for the common scalars."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _encode(value)


_run_values = operator.itemgetter(*RUN_FIELDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run fields, extras, exc.

    A record that carries the current run's fields as `ContextFilter` added them reuses
    their JSON text, encoded once per run; other records are encoded key by key. Both
    give the same line.
    """

    def __init__(self, sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS) -> None:
        super().__init__()
        self.sensitive_keys = frozenset(sensitive_keys)
        # (sensitive keys, which RUN_FIELDS they redact), for `_run_json`
        self._run_fields: tuple[frozenset[str], tuple[bool, ...]] | None = None
        # (level name, logger name) -> the line's text from `"level"` to `"message": `
        self._heads: dict[tuple[str, str], str] = {}
        # a run's field names -> the keys of its records that are not extras
        self._not_extra: dict[tuple[str, ...], frozenset[str]] = {}

    def format(self, record: logging.LogRecord) -> str:
        holder = fields_var.get()
        if holder is not None:
            fields = holder.fields
            attrs = record.__dict__
            # the run's fields as the filter copied them (`==` is `is` for those): not when
            # `extra=` or a later filter changed one, or the record comes from another run
            if fields is not None and fields.items() <= attrs.items():
                cached = holder.formats.get(self)
                if cached is None:
                    cached = holder.formats[self] = self._run_json(fields)
                members, not_extra = cached
                level, name = record.levelname, record.name
                head = self._heads.get((level, name)) or self._head(level, name)
                message = record.getMessage()
                line = (
                    f'{{"time": "{_time(record.created)}", {head}'
                    f"{_quote(message) if type(message) is str else _value(message)}, {members}"
                )
                if attrs.keys() <= not_extra and not (
                    record.exc_info or record.exc_text or record.stack_info
                ):
                    return f"{line}}}"
                tail = self._tail(record, not_extra)
                if tail is not None:
                    return f"{line}{tail}}}"
        return self._format_keys(record)

    def run_line(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        holder: RunFields,
        extra: dict[str, Any] | None,
    ) -> str | None:
        """The line `format` makes of a run's record with these values and `extra=`, without
        the record; None when an extra would need `format`'s general path."""
        cached = holder.formats.get(self)
        if cached is None:
            cached = holder.formats[self] = self._run_json(holder.get())
        members, not_extra = cached
        tail = ""
        if extra:
            parts = [""]
            for key, value in extra.items():
                if key in not_extra or key.startswith("job.") or key in _TAIL:
                    return None
                if value is not None:
                    parts.append(f"{_quote(key)}: {_value(self._clean(key, value))}")
            tail = ", ".join(parts)
        head = self._heads.get((level, name)) or self._head(level, name)
        return f'{{"time": "{_time(created)}", {head}{_quote(message)}, {members}{tail}}}'

    def _format_keys(self, record: logging.LogRecord) -> str:
        """The line, encoded key by key (what the run fields' cached JSON stands for)."""
        out: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        attrs = record.__dict__
        in_run = "job_name" in attrs
        keys = self.sensitive_keys
        for key in RUN_FIELDS:
            if key in attrs:
                value = attrs[key]
                if value is not None or in_run:  # a run's fields: null too (stable schema)
                    out[key] = REDACTED if is_sensitive(key, keys) else value
        params: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        for key, value in attrs.items():
            if value is None or key in _STANDARD or key in out:
                continue
            (params if key.startswith("job.") else extras)[key] = self._clean(key, value)
        out.update(params)
        out.update(extras)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _encode(out)

    def _head(self, level: str, name: str) -> str:
        head = f'"level": {_value(level)}, "logger": {_value(name)}, "message": '
        if len(self._heads) >= 256:  # logger names made up at run time: stay small
            self._heads.clear()
        self._heads[level, name] = head
        return head

    def _tail(self, record: logging.LogRecord, not_extra: frozenset[str]) -> str | None:
        """`, "key": value` for each extra (in the record's order), then exc and stack.

        None for an extra named `job.*`, `exc` or `stack` (or not a string): `_format_keys`
        then places it.
        """
        parts = [""]
        attrs = record.__dict__
        for key in filterfalse(not_extra.__contains__, attrs):
            value = attrs[key]
            if value is None:
                continue
            if type(key) is not str or key.startswith("job.") or key in _TAIL:
                return None
            parts.append(f"{_quote(key)}: {_value(self._clean(key, value))}")
        if record.exc_info:
            parts.append(f'"exc": {_quote(self.formatException(record.exc_info))}')
        elif record.exc_text:
            parts.append(f'"exc": {_value(record.exc_text)}')
        if record.stack_info:
            parts.append(f'"stack": {_quote(self.formatStack(record.stack_info))}')
        return ", ".join(parts)

    def _run_json(self, fields: dict[str, Any]) -> tuple[str, frozenset[str]]:
        """The run fields' JSON members, as `format` orders and redacts them, and the keys of
        a record that are not extras. Once per run."""
        keys = self.sensitive_keys
        known = self._run_fields
        if known is None or known[0] is not keys:
            flags = tuple(is_sensitive(key, keys) for key in RUN_FIELDS)
            known = self._run_fields = (keys, flags)
        names = tuple(fields)
        not_extra = self._not_extra.get(names)
        if not_extra is None:
            if len(self._not_extra) >= 256:
                self._not_extra.clear()
            not_extra = self._not_extra[names] = _NOT_EXTRA.union(names)
        if names[: len(RUN_FIELDS)] == RUN_FIELDS and not any(known[1]):
            # `run_log_fields`' order and no run field redacted (the usual): as `format` would
            # encode them, unless a param is null or nested, or this formatter redacts it
            cid, name, run_id, attempt, fire, next_fire, tenant, user = _run_values(fields)
            parts = [
                f'"correlation_id": {_value(cid)}, "job_name": {_value(name)}, '
                f'"job_id": {_value(run_id)}, "attempt": {_value(attempt)}, '
                f'"fire_time": {_value(fire)}, "next_fire_time": {_value(next_fire)}, '
                f'"tenant_id": {_value(tenant)}, "user_id": {_value(user)}'
            ]
            for key in names[len(RUN_FIELDS) :]:
                value = fields[key]
                if type(value) not in _SCALARS or is_sensitive(key, keys):
                    break
                parts.append(f"{_quote(key)}: {_value(value)}")
            else:
                return ", ".join(parts), not_extra
        out: dict[str, Any] = {}
        for key, sensitive in zip(RUN_FIELDS, known[1], strict=True):
            if key in fields:
                out[key] = REDACTED if sensitive else fields[key]
        for key, value in fields.items():
            if value is not None and key not in out:
                out[key] = self._clean(key, value)
        return _encode(out)[1:-1], not_extra

    def _clean(self, key: str, value: Any) -> Any:
        if is_sensitive(key, self.sensitive_keys):
            return REDACTED
        if type(value) in _SCALARS or isinstance(value, str | int | float):
            return value  # the common case: nothing nested to redact
        return redact(value, self.sensitive_keys)


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [correlation_id=... job=name#id attempt=n]`."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)
        # (whole second, its strftime text): one localtime + strftime per second
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """As `logging.Formatter.formatTime`, with the seconds' text cached."""
        if datefmt or self.converter is not time.localtime or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created, record.msecs)

    def _asctime(self, created: float, msecs: float) -> str:
        whole = int(created)
        second, text = self._second
        if second != whole:
            text = time.strftime(self.default_time_format, self.converter(whole))
            self._second = (whole, text)
        return (self.default_msec_format or "%s,%03d") % (text, msecs)  # set: see callers

    def plain(self) -> bool:
        """Formats as made (format, time): `run_line` then makes `format`'s line."""
        return (
            self._style._fmt is _TEXT_FORMAT
            and type(self._style) is logging.PercentStyle
            and not self.datefmt
            and self.converter is time.localtime
            and bool(self.default_msec_format)
        )

    def run_line(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        holder: RunFields,
        extra: dict[str, Any] | None,
    ) -> str:
        """The line `format` makes of a run's record with these values, without the record
        (for a `plain()` formatter; `extra` does not show in text)."""
        whole = int(created)
        prefix = self.run_prefix(whole, int((created - whole) * 1000), level, name)
        tags = holder.formats.get(self)
        if tags is None:
            tags = self.run_tags(holder)
        if tags and "\n" not in message:
            return f"{prefix}{message} {tags}"
        return with_tags(f"{prefix}{message}", tags)

    def run_prefix(self, second: int, milli: int, level: str, name: str) -> str:
        """`asctime level name: `, the start of `format`'s line of a record made at this
        second and millisecond (for a `plain()` formatter)."""
        return f"{self._asctime(second, milli + 0.0)} {level} {name}: "

    def run_tags(self, holder: RunFields) -> str:
        """The run's tags (`[correlation_id=... job=name#id ...]`), once per run: kept in
        `holder.formats` for this formatter."""
        ctx, fields = holder.ctx, holder.fields
        tags = holder.formats[self] = (  # five fields, not all of them (params redacted...)
            self._tags(fields)
            if fields is not None
            else _tags_of(  # as `run_log_fields` has them
                ctx.correlation_id, ctx.job_name, ctx.run_id, ctx.attempt, ctx.tenant_id
            )
        )
        return tags

    def format(self, record: logging.LogRecord) -> str:
        if (
            self._style._fmt is _TEXT_FORMAT
            and type(self._style) is logging.PercentStyle
            and not (record.exc_info or record.exc_text or record.stack_info)
        ):  # `Formatter.format` for this format and no traceback, without its steps
            message = record.message = record.getMessage()
            asctime = record.asctime = self.formatTime(record)
            text = f"{asctime} {record.levelname} {record.name}: {message}"
        else:
            text = super().format(record)
        attrs = record.__dict__
        holder = fields_var.get()
        if (
            holder is not None
            and holder.fields is not None
            and holder.fields.items() <= attrs.items()
        ):
            tags = holder.formats.get(self)  # the run's fields, unchanged: once per run
            if tags is None:
                tags = holder.formats[self] = self._tags(attrs)
        else:
            tags = self._tags(attrs)
        return with_tags(text, tags)

    @staticmethod
    def _tags(attrs: dict[str, Any]) -> str:
        return _tags_of(
            attrs.get("correlation_id"),
            attrs.get("job_name"),
            attrs.get("job_id"),
            attrs.get("attempt"),
            attrs.get("tenant_id"),
        )


def _tags_of(correlation_id: Any, job_name: Any, job_id: Any, attempt: Any, tenant_id: Any) -> str:
    """`[correlation_id=... job=name#id attempt=n tenant_id=...]`, each part when set."""
    if job_name and correlation_id:  # a run's usual record: one f-string
        if tenant_id:
            return (
                f"[correlation_id={correlation_id} job={job_name}#{job_id}"
                f" attempt={attempt} tenant_id={tenant_id}]"
            )
        return f"[correlation_id={correlation_id} job={job_name}#{job_id} attempt={attempt}]"
    tags = []
    if correlation_id:
        tags.append(f"correlation_id={correlation_id}")
    if job_name:
        tags.append(f"job={job_name}#{job_id}")
        tags.append(f"attempt={attempt}")
    if tenant_id:
        tags.append(f"tenant_id={tenant_id}")
    return f"[{' '.join(tags)}]" if tags else ""


def with_tags(text: str, tags: str) -> str:
    if not tags:
        return text
    if "\n" not in text:
        return f"{text} {tags}"
    head, sep, rest = text.partition("\n")  # keep a traceback below the tags
    return f"{head} {tags}{sep}{rest}"


# (whole second, its formatted prefix), swapped as one tuple: one strftime per second.
_last_second: list[tuple[int, str]] = [(-1, "")]


def _time(created: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as `models.iso`."""
    whole = int(created)
    second, prefix = _last_second[0]
    if second != whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second[0] = (whole, prefix)
    return prefix + _MILLIS[int((created - whole) * 1000)]


# "000Z" ... "999Z", and "999Z" again should a fraction round up to 1000 ms
_MILLIS = tuple(f"{min(ms, 999):03d}Z" for ms in range(1001))
