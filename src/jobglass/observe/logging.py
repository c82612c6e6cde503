"""Structured logging on the standard `logging` module (the BaseJob seed's LogContext).

- `ContextFilter` adds the run's fields to every record that reaches a handler it is
  attached to, including the job's own `logging` calls (async jobs and sync jobs in
  worker threads alike): `correlation_id`, `job_name`, `job_id` (the run id), `attempt`,
  `fire_time`, `next_fire_time`, `tenant_id`, `user_id` and `job.<param>` (sensitive keys
  redacted). Outside a run, a bound correlation/tenant/user id (an HTTP request) is added.
  A handler filter, not a record factory: a factory would make `extra={"job_name": ...}`
  raise inside runs.
- `JsonFormatter`: one JSON object per line with those fields plus time, level, logger,
  message, exc and any `extra=` values (sensitive keys redacted).
- `configure_logging(json=..., level=...)`: a root handler with both.
- `logging_middleware`: the seed's start and end lines, on the `jobglass.run` logger.
"""

from __future__ import annotations

import asyncio
import contextvars
import json as _json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from ..errors import JobCancelled
from ..formatting import duration
from ..models import iso
from .context import current_correlation_id, current_run, current_tenant_id, current_user_id
from .redact import DEFAULT_SENSITIVE_KEYS, REDACTED, is_sensitive, redact

if TYPE_CHECKING:
    from ..context import JobContext

__all__ = [
    "RUN_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "logging_middleware",
    "run_log_fields",
]

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
run_log = logging.getLogger("jobglass.run")

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class _RunFields:
    """The fields of one attempt, computed on the first record that needs them."""

    __slots__ = ("ctx", "fields")

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.fields: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self.fields is None:
            self.fields = run_log_fields(self.ctx)
        return self.fields


_fields: contextvars.ContextVar[_RunFields | None] = contextvars.ContextVar(
    "jobglass_log_fields", default=None
)


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
    params = redact(ctx.params, keys)
    if isinstance(params, Mapping):
        for key, value in params.items():
            fields[f"job.{key}"] = value
    return fields


def _current_fields() -> dict[str, Any] | None:
    holder = _fields.get()
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
        fields = _current_fields()
        if fields is not None:
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run fields, extras, exc."""

    def __init__(self, sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS) -> None:
        super().__init__()
        self.sensitive_keys = frozenset(sensitive_keys)

    def format(self, record: logging.LogRecord) -> str:
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
        return _json.dumps(out, default=str, ensure_ascii=False)

    def _clean(self, key: str, value: Any) -> Any:
        if is_sensitive(key, self.sensitive_keys):
            return REDACTED
        if isinstance(value, str | int | float):  # the common case: nothing nested to redact
            return value
        return redact(value, self.sensitive_keys)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [correlation_id=... job=name#id attempt=n]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        attrs = record.__dict__
        tags = []
        if attrs.get("correlation_id"):
            tags.append(f"correlation_id={attrs['correlation_id']}")
        if attrs.get("job_name"):
            tags.append(f"job={attrs['job_name']}#{attrs.get('job_id')}")
            tags.append(f"attempt={attrs.get('attempt')}")
        if attrs.get("tenant_id"):
            tags.append(f"tenant_id={attrs['tenant_id']}")
        if not tags:
            return text
        head, sep, rest = text.partition("\n")  # keep a traceback below the tags
        return f"{head} [{' '.join(tags)}]{sep}{rest}"


# (whole second, its formatted prefix), swapped as one tuple: one strftime per second.
_last_second: list[tuple[int, str]] = [(-1, "")]


def _time(created: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as `models.iso`."""
    whole = int(created)
    second, prefix = _last_second[0]
    if second != whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second[0] = (whole, prefix)
    millis = min(999, int((created - whole) * 1000))
    return f"{prefix}{millis:03d}Z"


def configure_logging(
    json: bool = False,
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Log to `stream` (stderr) with run fields; JSON lines when `json` is true.

    Replaces the handler a previous call installed on the same logger (root by default).
    Returns the handler, e.g. to remove it later.
    """
    target = logger or logging.getLogger()
    for old in list(target.handlers):
        if getattr(old, "_jobglass", False):
            target.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(sensitive_keys) if json else TextFormatter())
    handler._jobglass = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level)
    return handler


async def logging_middleware(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
    """The run's fields for its records, and the seed's start and end lines.

    `Starting job DataCleanupJob (ID: 123) with correlation ID abc123def456`, then
    `Job DataCleanupJob (ID: 123) completed successfully in 2.34s` or
    `Job DataCleanupJob (ID: 123) failed after 2.34s: ValueError: message`.
    """
    token = _fields.set(_RunFields(ctx))
    started = time.monotonic()
    name, run_id = ctx.job_name, ctx.run_id
    try:
        if run_log.isEnabledFor(logging.INFO):
            run_log.info(
                "Starting job %s (ID: %s) with correlation ID %s", name, run_id, ctx.correlation_id
            )
        try:
            result = await call_next()
        except BaseException as err:
            _log_failure(ctx, err, (time.monotonic() - started) * 1000)
            raise
        if run_log.isEnabledFor(logging.INFO):
            ms = (time.monotonic() - started) * 1000
            run_log.info(
                "Job %s (ID: %s) completed successfully in %s",
                name,
                run_id,
                duration(ms),
                extra={"status": "success", "duration_ms": round(ms, 3)},
            )
        return result
    finally:
        _fields.reset(token)


def _log_failure(ctx: JobContext, err: BaseException, ms: float) -> None:
    name, run_id, took = ctx.job_name, ctx.run_id, duration(ms)
    extra = {"duration_ms": round(ms, 3)}
    if isinstance(err, asyncio.CancelledError | JobCancelled):
        reason = ctx.cancel_reason or "cancelled"
        if reason == "timeout":
            run_log.error(
                "Job %s (ID: %s) failed after %s: %s: %s",
                name,
                run_id,
                took,
                "JobTimeout",
                "timed out",
                extra={**extra, "status": "error", "error_type": "JobTimeout"},
            )
        else:
            run_log.warning(
                "Job %s (ID: %s) cancelled after %s (%s)",
                name,
                run_id,
                took,
                reason,
                extra={**extra, "status": "cancelled"},
            )
        return
    error_type = type(err).__name__
    run_log.error(
        "Job %s (ID: %s) failed after %s: %s: %s",
        name,
        run_id,
        took,
        error_type,
        str(err) or error_type,
        exc_info=err,
        extra={**extra, "status": "error", "error_type": error_type},
    )
