"""Application and audit logging with request context: the SDK's `client.log` chain.

    app.log.with_request(request).add_user(uid).info("Users list accessed")
    app.log.with_request(request).audit("post.created", "posts", {"postTitle": title})

`AppLogger` is an immutable builder: every chain call returns a new logger, so one
configured logger can be shared by threads, tasks and requests. The terminal calls
(`debug`/`info`/`warning`/`error`/`audit`) are synchronous and cheap: they redact the
context, append one record to the app's buffer and return; `AppLogHub` (applog_hub.py)
writes the buffer to the store in one transaction per batch. Every record also goes to the
standard `logging` module (logger ``jobglass.app``). `AppLogMixin` (applog_app.py) gives
JobGlass `app.log`, `query_logs`, `query_audit` and `prune_app_logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .applog_app import AppLogMixin
from .applog_hub import AppLogHub
from .errors import InvalidInput, JobCancelled
from .json_codec import compact_encoder
from .observe.context import current_correlation_id, current_user_id
from .observe.logging import logging_middleware
from .observe.redact import redact
from .observe.request import RequestContextConfig, extract_logging_context, extract_request_context
from .stores.applog_types import (
    APP,
    APP_LEVELS,
    AUDIT,
    CAMEL,
    COMMON_COLUMNS,
    CORRELATION_AT,
    INDEXED_FILTERS,
    NO_COMMON,
    SNAKE,
    USER_AT,
    AppLogRecord,
    make_common,
    new_record,
)

if TYPE_CHECKING:
    from .context import JobContext

__all__ = [
    "REQUEST_CONTEXT_KEY",
    "AppLogHub",
    "AppLogMixin",
    "AppLogger",
    "bound_logger",
    "job_log_middleware",
]

pylog = logging.getLogger("jobglass.app")

#: Where the request middleware leaves the request's extracted context (ASGI scope / WSGI
#: environ), so `with_request` inside the handler sees the same (possibly generated) id.
REQUEST_CONTEXT_KEY = "jobglass.request_context"
_PY_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: camelCase name -> column of the indexed context (source, external system, record).
_CAMEL_INDEXED = {
    CAMEL[column]: column
    for column in INDEXED_FILTERS
    if column not in ("user_id", "correlation_id")
}

_INT_LIMIT = 2**63 - 1
_SCALARS = frozenset({str, int, float, bool, type(None)})
_now = time.time
#: Contexts are redacted copies (cycles already broken), so no circular-reference check.
_json = compact_encoder(default=str)
_UNSET: Any = object()

_current: contextvars.ContextVar[AppLogger | _RunLogger | None] = contextvars.ContextVar(
    "jobglass_app_logger", default=None
)


@contextlib.contextmanager
def bound_logger(logger: AppLogger) -> Iterator[None]:
    """Make `app.log.current()` return `logger` for the duration of a block."""
    token = _current.set(logger)
    try:
        yield
    finally:
        _current.reset(token)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _opt_int(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    return max(-_INT_LIMIT, min(_INT_LIMIT, round(value)))  # a BIGINT column


def _cached_request_context(request: object) -> dict[str, Any] | None:
    """The context the request middleware extracted for this very request, if any."""
    holders: list[object] = [request]
    for attr in ("scope", "environ", "META"):
        holders.append(getattr(request, attr, None))
    for holder in holders:
        if isinstance(holder, Mapping):
            cached = holder.get(REQUEST_CONTEXT_KEY)
            if isinstance(cached, dict):
                return cached
    return None


class AppLogger:
    """Immutable: each chain method returns a new logger; terminals append one record."""

    __slots__ = ("_common", "_context", "_context_json", "_fields", "_hub")

    _hub: AppLogHub
    _fields: dict[str, Any]
    _common: tuple[Any, ...]
    _context: dict[str, Any] | None
    _context_json: str | dict[str, Any] | None  # `_context` encoded, on first use

    def __init__(
        self,
        hub: AppLogHub,
        fields: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        fields = fields or {}
        object.__setattr__(self, "_hub", hub)
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_common", make_common(fields) if fields else NO_COMMON)
        object.__setattr__(self, "_context", context or None)
        object.__setattr__(self, "_context_json", _UNSET)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AppLogger is immutable: chain methods return a new logger")

    def __repr__(self) -> str:
        return f"AppLogger(fields={self._fields!r}, context={self._context!r})"

    def _with(
        self, fields: Mapping[str, Any], context: Mapping[str, Any] | None = None
    ) -> AppLogger:
        merged = {**self._fields, **{k: v for k, v in fields.items() if v is not None}}
        ctx = self._context
        if context:
            clean = self._hub.clean(context)
            ctx = {**ctx, **clean} if ctx else clean
        return AppLogger(self._hub, merged, ctx)

    # -- chain ----------------------------------------------------------------------------------

    def with_request(
        self, request: object, config: RequestContextConfig | None = None
    ) -> AppLogger:
        """IP (behind trusted proxies), method, path, user agent, correlation id, user and
        session from the JWT, referer and request size, from any supported request shape."""
        cached = _cached_request_context(request)
        if cached is not None:
            return self._with_request_context(cached)
        info = extract_request_context(request, config or self._hub.request_config)
        ambient = current_correlation_id()
        if ambient is not None:  # the middleware (or a job) already named this flow
            info["correlationId"] = ambient
        return self._with_request_context(info)

    def _with_request_context(self, info: Mapping[str, Any]) -> AppLogger:
        fields = {SNAKE[k]: v for k, v in info.items() if k in SNAKE}
        verified = info.get("jwtVerified")
        context = {"jwtVerified": verified} if verified is not None else None
        return self._with(fields, context)

    def add_user(self, user_id: str | int | None) -> AppLogger:
        return self._with({"user_id": _opt_str(user_id)})

    def add_correlation(self, correlation_id: str | None) -> AppLogger:
        return self._with({"correlation_id": _opt_str(correlation_id)})

    def with_indexed_context(
        self,
        context: object = None,
        *,
        source: object = None,
        record: object = None,
    ) -> AppLogger:
        """Indexed fields from `extract_logging_context(...)`'s dict, any mapping or object
        with `sourceKey`/`source_key`-style members, or straight from `source=`/`record=`."""
        fields: dict[str, Any] = {}
        if source is not None or record is not None:
            context = {**_mapping_of(context), **extract_logging_context(source, record)}
        for camel, column in _CAMEL_INDEXED.items():
            value = _member(context, camel, column)
            if value is not None:
                fields[column] = _opt_str(value)
        return self._with(fields)

    def with_credential_context(
        self, credential_id: str | int | None, credential_type: str | None = None
    ) -> AppLogger:
        return self._with(
            {"credential_id": _opt_str(credential_id), "credential_type": _opt_str(credential_type)}
        )

    def with_request_metrics(
        self,
        request_size: int | None = None,
        response_size: int | None = None,
        duration_ms: float | None = None,
    ) -> AppLogger:
        return self._with(
            {
                "request_size": _opt_int("request_size", request_size),
                "response_size": _opt_int("response_size", response_size),
                "duration_ms": _opt_int("duration_ms", duration_ms),
            }
        )

    def with_context(self, **fields: Any) -> AppLogger:
        """Extra (unindexed) context carried by every record of the new logger; redacted."""
        return self._with({}, fields)

    def current(self) -> AppLogger:
        """The logger bound to the current request (or run) when inside the middleware, with
        this logger's own fields on top; otherwise this logger."""
        held = _current.get()
        bound = held.logger() if isinstance(held, _RunLogger) else held
        if bound is None or bound._hub is not self._hub:
            return self
        if not self._fields and not self._context:
            return bound
        return bound._with(self._fields, self._context)

    # -- terminals ------------------------------------------------------------------------------

    def debug(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._line("debug", logging.DEBUG, message, context)

    def info(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._line("info", logging.INFO, message, context)

    def warning(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._line("warning", logging.WARNING, message, context)

    warn = warning

    def error(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._line("error", logging.ERROR, message, context)

    def log(self, level: str, message: str, context: Mapping[str, Any] | None = None) -> None:
        if level not in _PY_LEVELS:
            raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(APP_LEVELS)}")
        self._line(level, _PY_LEVELS[level], message, context)

    def audit(self, action: str, resource: str, data: Any = None) -> None:
        """Record an audit event (`post.created` on `posts`); `data` is redacted too."""
        if not action or not resource:
            raise InvalidInput("audit needs a non-empty action and resource")
        self._emit(AUDIT, None, None, None, str(action), str(resource), data)

    async def flush(self) -> None:
        """Persist every record logged so far (by any logger of this app)."""
        await self._hub.flush()

    def _own_json(self) -> str | dict[str, Any] | None:
        """The logger's own context as JSON text, encoded once (a benign race: two threads
        may both encode it)."""
        encoded = self._context_json
        if encoded is _UNSET:
            encoded = _json_or_dict(self._context)
            object.__setattr__(self, "_context_json", encoded)
        return encoded

    def _line(
        self, level: str, levelno: int, message: str, context: Mapping[str, Any] | None
    ) -> None:
        """An application line: `_emit`'s hot path, inlined for the common case (a flat
        context of plain values with known-safe keys, request fields already bound).

        The record's context is buffered as JSON text, encoded here once (see applog_hub
        for why the buffer holds no dicts); the caller's dict may change afterwards."""
        hub = self._hub
        ctx = self._context
        if context:
            if (
                type(context) is dict
                and hub._safe_keys.issuperset(context)
                and _SCALARS.issuperset(map(type, context.values()))
            ):  # `hub.clean`'s fast path: plain values cannot fail to encode
                if ctx:
                    ctx = {**ctx, **context}
                    encoded: str | dict[str, Any] | None = _json_or_dict(ctx)
                else:
                    ctx = context
                    encoded = _json(ctx)
            else:
                clean = hub.clean(context)
                ctx = {**ctx, **clean} if ctx else clean
                encoded = _json_or_dict(ctx)
        else:
            encoded = self._context_json
            if encoded is _UNSET:
                encoded = self._own_json()
        common = self._common
        if common[USER_AT] is None or common[CORRELATION_AT] is None:
            common = _ambient(common)
        # an `AppLogRecord` as a plain tuple: see applog_hub
        row = (
            APP,
            _now(),
            level,
            message if type(message) is str else _text(message),
            None,
            None,
            common,
            None,
            encoded,
            None,
        )
        buffer = hub._buffer  # hub.append, inlined
        if len(buffer) < hub.max_buffered:
            buffer.append(row)
            if len(buffer) >= hub._wake_at:
                hub._nudge()
        else:
            hub._drop()
        if pylog.isEnabledFor(levelno):
            if ctx is context and ctx is not None:
                ctx = dict(ctx)  # the caller's own dict: logging handlers may keep it
            record = (APP, row[1], level, row[3], None, None, common, None, ctx, None)
            _to_logging(levelno, new_record(record))

    def _emit(
        self,
        kind: str,
        level: str | None,
        message: str | None,
        context: Mapping[str, Any] | None,
        action: str | None = None,
        resource: str | None = None,
        data: Any = None,
        to_logging: bool = True,
    ) -> None:
        hub = self._hub
        ctx = self._context
        if context:
            clean = hub.clean(context)
            ctx = {**ctx, **clean} if ctx else clean
        if data is not None:
            data = redact(data, hub.sensitive_keys)
        common = self._common
        if common[USER_AT] is None or common[CORRELATION_AT] is None:
            common = _ambient(common)
        text = None if kind == AUDIT else _text(message)
        encoded = _json_or_dict(ctx) if context else self._own_json()
        at = _now()
        hub.append((kind, at, level, text, action, resource, common, data, encoded, None))
        levelno = _PY_LEVELS[level] if level is not None else logging.INFO
        if to_logging and pylog.isEnabledFor(levelno):
            record = (kind, at, level, text, action, resource, common, data, ctx, None)
            _to_logging(levelno, new_record(record))


def _json_or_dict(context: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """A (redacted) context as compact JSON text. A key JSON has no form for (a tuple...)
    becomes its str(); if it still does not encode, the dict is kept for the store to
    clean: a log call never raises for its context."""
    if not context:
        return None
    try:
        return _json(context)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return _json(_str_keys(context))
    except (TypeError, ValueError, RecursionError):
        return context


def _str_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k if isinstance(k, str | int | float | bool) or k is None else str(k): _str_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_str_keys(v) for v in value]
    return value


def _ambient(common: tuple[Any, ...]) -> tuple[Any, ...]:
    """`common` with a missing user / correlation filled in from the request/run context."""
    user, correlation = common[USER_AT], common[CORRELATION_AT]
    ambient_user = current_user_id() if user is None else user
    ambient_correlation = current_correlation_id() if correlation is None else correlation
    if ambient_user is user and ambient_correlation is correlation:
        return common
    filled = list(common)
    filled[USER_AT] = ambient_user
    filled[CORRELATION_AT] = ambient_correlation
    return tuple(filled)


def _text(message: object) -> str:
    """An application line's message: the column is NOT NULL, so None becomes ""."""
    if type(message) is str:
        return message
    return "" if message is None else str(message)


def _mapping_of(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _member(obj: object, *names: str) -> object:
    if obj is None:
        return None
    for name in names:
        try:
            value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        except Exception:  # a raising property must not break a log call
            value = None
        if value is not None:
            return value
    return None


def _to_logging(levelno: int, record: AppLogRecord) -> None:
    """Standard `extra=` fields (snake_case) for formatters such as the JSON one."""
    extra: dict[str, Any] = {"log_kind": record.kind}
    for column, value in zip(COMMON_COLUMNS, record.common, strict=True):
        if value is not None:
            extra[column] = value
    if record.context:
        extra["context"] = record.context
    if record.kind == AUDIT:
        extra["action"] = record.action
        extra["resource"] = record.resource
        if record.data is not None:
            extra["audit_data"] = record.data
        message = f"audit {record.action} {record.resource}"
    else:
        message = record.message or ""
    pylog.log(levelno, "%s", message, extra=extra, stacklevel=4)


# -- the seed's job-processor lines, for every run ------------------------------------------------


#: The context keys of the job-processor lines (made directly once all are known safe).
_JOB_KEYS = ("jobId", "jobType", "userId", "attempt", "durationMs")


class _RunLogger:
    """`app.log.current()` inside a run: the run's logger, made on first use (most runs never
    ask for it; making it cost as much as one of the run's job lines)."""

    __slots__ = ("_base", "_ctx", "_logger")

    def __init__(self, base: AppLogger, ctx: JobContext) -> None:
        self._base, self._ctx = base, ctx
        self._logger: AppLogger | None = None

    def logger(self) -> AppLogger:
        logger = self._logger
        if logger is None:
            ctx = self._ctx
            # its own context leads every record's context with the job lines' keys, in order
            logger = self._logger = self._base._with(
                {"correlation_id": ctx.correlation_id, "user_id": ctx.user_id},
                {"jobId": str(ctx.run_id), "jobType": ctx.job_name},
            )
        return logger


async def job_log_middleware(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
    """Default attempt middleware: `Job started` / `Job completed` / `Job failed` (with
    jobId, jobType, userId and the error) through the app logger; inside the run,
    `app.log.current()` carries the run's correlation, user, jobId and jobType."""
    app = ctx.app
    if app is None:
        return await call_next()
    base = app.log
    binding = _RunLogger(base, ctx)
    fields: dict[str, Any] = {
        "jobId": str(ctx.run_id),
        "jobType": ctx.job_name,
        "userId": ctx.user_id,
        "attempt": ctx.attempt,
    }
    # the seed 004 start/finish lines already reach Python logging (logging_middleware):
    # these job-processor records go to the app-log store only, not to logging twice
    quiet = logging_middleware in app.middleware
    hub = base._hub
    if (
        quiet
        and not base._fields
        and not base._context
        and hub._safe_keys.issuperset(_JOB_KEYS)
        and type(ctx.user_id) in _SCALARS
    ):  # the usual case: the two rows made here, as `_emit` would make them
        common = _ambient(
            make_common({"correlation_id": ctx.correlation_id, "user_id": ctx.user_id})
        )
        started_json = _json(fields)
        hub.append(
            (APP, _now(), "info", "Job started", None, None, common, None, started_json, None)
        )
    else:
        common = None
        started_json = ""
        binding.logger()._emit(APP, "info", "Job started", fields, to_logging=not quiet)
    started = time.monotonic()
    token = _current.set(binding)
    try:
        result = await call_next()
    except BaseException as err:
        elapsed = round((time.monotonic() - started) * 1000)
        failure = {**fields, "durationMs": elapsed, "errorType": type(err).__name__}
        if isinstance(err, asyncio.CancelledError | JobCancelled):
            reason = ctx.cancel_reason or str(err) or "cancelled"
            binding.logger()._emit(
                APP, "warning", "Job cancelled", {**failure, "error": reason}, to_logging=not quiet
            )
        else:
            error = str(err) or type(err).__name__
            binding.logger()._emit(
                APP, "error", "Job failed", {**failure, "error": error}, to_logging=not quiet
            )
        raise
    finally:
        _current.reset(token)
    elapsed = round((time.monotonic() - started) * 1000)
    if common is not None:  # the started row's JSON with `durationMs` last, as `_json` makes it
        ended_json = f'{started_json[:-1]},"durationMs":{elapsed}}}'
        hub.append(
            (APP, _now(), "info", "Job completed", None, None, common, None, ended_json, None)
        )
    else:
        binding.logger()._emit(
            APP, "info", "Job completed", {**fields, "durationMs": elapsed}, to_logging=not quiet
        )
    return result
