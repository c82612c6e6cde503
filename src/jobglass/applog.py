"""Application and audit logging with request context: the SDK's `client.log` chain.

    app.log.with_request(request).add_user(uid).info("Users list accessed")
    app.log.with_request(request).audit("post.created", "posts", {"postTitle": title})

`AppLogger` is an immutable builder: every chain call returns a new logger, so one
configured logger can be shared by threads, tasks and requests. The terminal calls
(`debug`/`info`/`warning`/`error`/`audit`) are synchronous and cheap: they redact the
context, append one record to the app's buffer and return. `AppLogHub` writes the buffer to
the store in one transaction per batch (about every `flush_interval`, sooner when
`batch_size` records are waiting), the same pattern as the run-feedback flusher. Every
record also goes to the standard `logging` module (logger ``jobglass.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, JobCancelled
from .observe.context import current_correlation_id, current_user_id
from .observe.redact import redact
from .observe.request import RequestContextConfig, extract_logging_context, extract_request_context
from .stores.applog_types import (
    APP,
    APP_LEVELS,
    AUDIT,
    CAMEL,
    COMMON_COLUMNS,
    INDEXED_FILTERS,
    SNAKE,
    AppLogFilter,
    AppLogRecord,
)

if TYPE_CHECKING:
    from .config import Settings
    from .context import JobContext
    from .stores.base import Store

__all__ = [
    "REQUEST_CONTEXT_KEY",
    "AppLogHub",
    "AppLogMixin",
    "AppLogger",
    "bound_logger",
    "job_log_middleware",
]

pylog = logging.getLogger("jobglass.app")
_internal = logging.getLogger("jobglass.applog")

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

_current: contextvars.ContextVar[AppLogger | None] = contextvars.ContextVar(
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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    return round(value)


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

    __slots__ = ("_context", "_fields", "_hub")

    _hub: AppLogHub
    _fields: dict[str, Any]
    _context: dict[str, Any] | None

    def __init__(
        self,
        hub: AppLogHub,
        fields: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        object.__setattr__(self, "_hub", hub)
        object.__setattr__(self, "_fields", fields or {})
        object.__setattr__(self, "_context", context or None)

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
            clean = redact(context, self._hub.sensitive_keys)
            assert isinstance(clean, dict)
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
        bound = _current.get()
        if bound is None or bound._hub is not self._hub:
            return self
        if not self._fields and not self._context:
            return bound
        return bound._with(self._fields, self._context)

    # -- terminals ------------------------------------------------------------------------------

    def debug(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._emit(APP, "debug", message, context)

    def info(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._emit(APP, "info", message, context)

    def warning(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._emit(APP, "warning", message, context)

    warn = warning

    def error(self, message: str, context: Mapping[str, Any] | None = None) -> None:
        self._emit(APP, "error", message, context)

    def log(self, level: str, message: str, context: Mapping[str, Any] | None = None) -> None:
        if level not in _PY_LEVELS:
            raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(APP_LEVELS)}")
        self._emit(APP, level, message, context)

    def audit(self, action: str, resource: str, data: Any = None) -> None:
        """Record an audit event (`post.created` on `posts`); `data` is redacted too."""
        if not action or not resource:
            raise InvalidInput("audit needs a non-empty action and resource")
        self._emit(AUDIT, None, None, None, str(action), str(resource), data)

    async def flush(self) -> None:
        """Persist every record logged so far (by any logger of this app)."""
        await self._hub.flush()

    def _emit(
        self,
        kind: str,
        level: str | None,
        message: str | None,
        context: Mapping[str, Any] | None,
        action: str | None = None,
        resource: str | None = None,
        data: Any = None,
    ) -> None:
        hub = self._hub
        fields = self._fields
        ctx = self._context
        if context:
            clean = redact(context, hub.sensitive_keys)
            if isinstance(clean, dict):
                ctx = {**ctx, **clean} if ctx else clean
        if data is not None:
            data = redact(data, hub.sensitive_keys)
        if "correlation_id" not in fields or "user_id" not in fields:
            fields = dict(fields)
            if "correlation_id" not in fields:
                fields["correlation_id"] = current_correlation_id()
            if "user_id" not in fields:
                fields["user_id"] = current_user_id()
        record = AppLogRecord(
            kind,
            time.time(),
            level,
            None if message is None else str(message),
            action,
            resource,
            data=data,
            context=ctx,
            **fields,
        )
        hub.append(record)
        levelno = _PY_LEVELS[level] if level is not None else logging.INFO
        if pylog.isEnabledFor(levelno):
            _to_logging(levelno, record)


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
    for column in COMMON_COLUMNS:
        value = getattr(record, column)
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


class AppLogHub:
    """Per app: the shared buffer, its background writer, and the request-context config."""

    def __init__(
        self,
        write: Callable[[Sequence[AppLogRecord]], Awaitable[int]],
        *,
        sensitive_keys: frozenset[str],
        interval: float = 0.1,
        batch_size: int = 5_000,
        max_buffered: int = 500_000,
        request_config: RequestContextConfig | None = None,
    ) -> None:
        self._write = write
        self.sensitive_keys = sensitive_keys
        self.interval = interval
        self.batch_size = batch_size
        self.max_buffered = max_buffered
        self.request_config = request_config or RequestContextConfig()
        self.logger = AppLogger(self)
        self._buffer: list[AppLogRecord] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.flushes = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def append(self, record: AppLogRecord) -> None:
        with self._lock:
            buffered = len(self._buffer)
            if buffered >= self.max_buffered:
                self.dropped += 1
                if self.dropped == 1:
                    _internal.error("app log buffer full (%d records): dropping", buffered)
                return
            self._buffer.append(record)
            buffered += 1
        if buffered == 1 or buffered == self.batch_size:
            self._nudge()

    def _nudge(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            self._try_start()
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() flushed
                loop.call_soon_threadsafe(wake.set)

    def _try_start(self) -> None:
        """Start the writer on the running loop of this thread, if there is one."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # buffered until `await flush()`/`start()` from the app's loop
        self.start()

    def start(self) -> None:
        """Start the background writer on the running loop (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task = self._loop.create_task(self._run(), name="jobglass-applog-flusher")
        if self._buffer:
            self._wake.set()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            if len(self._buffer) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.interval)
                wake.clear()
            try:
                await self.flush()
            except Exception:  # the store is down: keep the records, try again later
                _internal.exception("app log flush failed; retrying")
                await asyncio.sleep(min(1.0, self.interval * 10))
                wake.set()

    async def flush(self) -> None:
        """Write everything buffered, `batch_size` records per transaction."""
        if self._flush_lock is None or self._loop is not asyncio.get_running_loop():
            self.start()
        assert self._flush_lock is not None
        async with self._flush_lock:
            while True:
                with self._lock:
                    if not self._buffer:
                        return
                    batch = self._buffer[: self.batch_size]
                    del self._buffer[: self.batch_size]
                try:
                    await self._write(batch)
                except BaseException:
                    with self._lock:
                        self._buffer[:0] = batch
                    raise
                self.flushes += 1
                self.written += len(batch)

    async def close(self) -> None:
        """Stop the writer after a last flush (errors are logged, not raised)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._buffer:
            try:
                await self.flush()
            except Exception:
                _internal.exception("app log: final flush failed; %d records lost", self.pending)
        task, self._task = self._task, None  # flush() may have restarted it
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- JobGlass integration ------------------------------------------------------------------------


class AppLogMixin:
    """`app.log`, `app.query_logs`, `app.query_audit`, `app.prune_app_logs` on JobGlass."""

    settings: Settings
    _applog_hub: AppLogHub | None = None

    if TYPE_CHECKING:

        async def _ready(self) -> Store: ...

    @property
    def app_logs(self) -> AppLogHub:
        """The app's log hub; `app.app_logs.request_config = RequestContextConfig(...)`."""
        hub = self._applog_hub
        if hub is None:
            hub = AppLogHub(
                self._write_app_logs,
                sensitive_keys=self.settings.sensitive_keys,
                interval=self.settings.flush_interval,
            )
            self._applog_hub = hub
        return hub

    @property
    def log(self) -> AppLogger:
        """The base application logger (`app.log.with_request(req).info(...)`)."""
        return self.app_logs.logger

    async def _write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        return await (await self._ready()).write_app_logs(records)

    async def _close_app_logs(self) -> None:
        if self._applog_hub is not None:
            await self._applog_hub.close()

    async def query_logs(
        self,
        *,
        level: str | Sequence[str] | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
        source_key: str | None = None,
        source_display_name: str | None = None,
        external_system_key: str | None = None,
        external_system_display_name: str | None = None,
        record_key: str | None = None,
        record_display_name: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        before_id: int | str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Application logs, newest first: `{"logs": [...], "nextCursor": id | None}`."""
        levels = [level] if isinstance(level, str) else list(level or ())
        for name in levels:
            if name not in APP_LEVELS:
                raise InvalidInput(f"unknown level {name!r}; use one of {', '.join(APP_LEVELS)}")
        flt = AppLogFilter(
            APP,
            levels,
            user_id,
            correlation_id,
            source_key,
            source_display_name,
            external_system_key,
            external_system_display_name,
            record_key,
            record_display_name,
        )
        records, cursor = await self._query(flt, since, until, before_id, limit)
        return {"logs": [r.to_json() for r in records], "nextCursor": cursor}

    async def query_audit(
        self,
        *,
        action: str | None = None,
        resource: str | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
        source_key: str | None = None,
        source_display_name: str | None = None,
        external_system_key: str | None = None,
        external_system_display_name: str | None = None,
        record_key: str | None = None,
        record_display_name: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        before_id: int | str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Audit events, newest first: `{"events": [...], "nextCursor": id | None}`."""
        flt = AppLogFilter(
            AUDIT,
            (),
            user_id,
            correlation_id,
            source_key,
            source_display_name,
            external_system_key,
            external_system_display_name,
            record_key,
            record_display_name,
            action,
            resource,
        )
        records, cursor = await self._query(flt, since, until, before_id, limit)
        return {"events": [r.to_json() for r in records], "nextCursor": cursor}

    async def _query(
        self,
        flt: AppLogFilter,
        since: datetime | str | None,
        until: datetime | str | None,
        before_id: int | str | None,
        limit: int,
    ) -> tuple[list[AppLogRecord], str | None]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be an integer from 1 to 1000")
        flt.since = _time_arg("since", since)
        flt.until = _time_arg("until", until)
        flt.before_id = _cursor_arg(before_id)
        flt.limit = limit + 1
        records = await (await self._ready()).query_app_logs(flt)
        more = len(records) > limit
        records = records[:limit]
        cursor = str(records[-1].id) if more and records else None
        return records, cursor

    async def prune_app_logs(self) -> int:
        """Delete app logs older than `app_log_days` and audit events older than
        `audit_log_days` (workers also do this in their maintenance loop)."""
        s = self.settings
        now = datetime.now(UTC)
        app_days, audit_days = s.app_log_days, s.audit_log_days
        app_before = None if app_days is None else now - timedelta(days=app_days)
        audit_before = None if audit_days is None else now - timedelta(days=audit_days)
        if app_before is None and audit_before is None:
            return 0
        return await (await self._ready()).prune_app_logs(app_before, audit_before)


def _time_arg(name: str, value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{name} {value!r} is not an ISO-8601 time") from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime or an ISO-8601 string")
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must carry a time zone (e.g. ...Z or +02:00)")
    return value.astimezone(UTC)


def _cursor_arg(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        cursor = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"cursor {value!r} is not a log id") from None
    if cursor <= 0 or cursor > 2**63 - 1:
        raise InvalidInput(f"cursor {value!r} is not a log id")
    return cursor


# -- the seed's job-processor lines, for every run ------------------------------------------------


async def job_log_middleware(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
    """Default attempt middleware: `Job started` / `Job completed` / `Job failed` (with
    jobId, jobType, userId and the error) through the app logger; inside the run,
    `app.log.current()` carries the run's correlation, user, jobId and jobType."""
    app = ctx.app
    if app is None:
        return await call_next()
    logger = app.log.add_correlation(ctx.correlation_id).add_user(ctx.user_id)
    fields: dict[str, Any] = {
        "jobId": str(ctx.run_id),
        "jobType": ctx.job_name,
        "userId": ctx.user_id,
        "attempt": ctx.attempt,
    }
    logger.info("Job started", fields)
    started = time.monotonic()
    token = _current.set(logger.with_context(jobId=fields["jobId"], jobType=ctx.job_name))
    try:
        result = await call_next()
    except BaseException as err:
        elapsed = round((time.monotonic() - started) * 1000)
        failure = {**fields, "durationMs": elapsed, "errorType": type(err).__name__}
        if isinstance(err, asyncio.CancelledError | JobCancelled):
            reason = ctx.cancel_reason or str(err) or "cancelled"
            logger.warning("Job cancelled", {**failure, "error": reason})
        else:
            logger.error("Job failed", {**failure, "error": str(err) or type(err).__name__})
        raise
    finally:
        _current.reset(token)
    elapsed = round((time.monotonic() - started) * 1000)
    logger.info("Job completed", {**fields, "durationMs": elapsed})
    return result
