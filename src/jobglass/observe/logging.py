"""Structured logging on the standard `logging` module (the BaseJob seed's LogContext).

- `configure_logging(json=..., level=...)`: a root handler (`log_stream.StreamHandler`) with
  `ContextFilter` and `JsonFormatter` or `TextFormatter` (`log_format`: the run fields on
  every record, including the job's own `logging` calls, and the two line formats).
- `logging_middleware`: the seed's start and end lines, on the `jobglass.run` logger.

The start and end records skip `findCaller` (their source is this module's
`logging_middleware`), and when our handler alone would receive them, the record itself
(`_emit`). What a worker pays per line is measured by
`benchmarks/observability_overhead.py --log json|text`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING, Any

from ..errors import JobCancelled
from ..formatting import duration
from .log_format import (
    RUN_FIELDS,
    ContextFilter,
    JsonFormatter,
    RunFields,
    TextFormatter,
    fields_var,
    run_log_fields,
    with_tags,
)
from .log_stream import StreamHandler
from .redact import DEFAULT_SENSITIVE_KEYS

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

run_log = logging.getLogger("jobglass.run")


def configure_logging(
    json: bool = False,
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS,
    logger: logging.Logger | None = None,
    batched: bool = False,
) -> logging.Handler:
    """Log to `stream` (stderr) with run fields; JSON lines when `json` is true.

    `batched`: write the lines logged in one event-loop turn at once, at the end of the
    turn (at most 0.1 s late when the loop is blocked; WARNING and worse at once): what a
    busy worker wants; a test reading `stream` right after logging does not.
    Replaces the handler a previous call installed on the same logger (root by default).
    Returns the handler, e.g. to remove it later.
    """
    target = logger or logging.getLogger()
    for old in list(target.handlers):
        if getattr(old, "_jobglass", False):
            old.flush()
            target.removeHandler(old)
    handler = StreamHandler(stream if stream is not None else sys.stderr, batched=batched)
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
    holder = RunFields(ctx)
    token = fields_var.set(holder)
    started = time.monotonic()
    name, run_id = ctx.job_name, ctx.run_id
    try:
        _emit(holder, _START, (name, run_id, ctx.correlation_id))
        try:
            result = await call_next()
        except BaseException as err:
            _log_failure(ctx, err, (time.monotonic() - started) * 1000)
            raise
        ms = (time.monotonic() - started) * 1000
        _emit(holder, _SUCCESS, (name, run_id, duration(ms)), ms)
        return result
    finally:
        fields_var.reset(token)


_START = "Starting job %s (ID: %s) with correlation ID %s"
_SUCCESS = "Job %s (ID: %s) completed successfully in %s"
# Where the start and end records say they come from: `run_log.info` would find the same
# file and function, walking the stack (`findCaller`) for each of them.
_SOURCE = logging_middleware.__code__
_SOURCE_FILE, _SOURCE_LINE, _SOURCE_FUNC = (
    _SOURCE.co_filename,
    _SOURCE.co_firstlineno,
    _SOURCE.co_name,
)


def _emit(
    holder: RunFields, msg: str, args: tuple[Any, ...], success_ms: float | None = None
) -> None:
    """`run_log.info(msg, *args)` (`_START` or `_SUCCESS`) without the stack walk; with
    `success_ms`, the end line's `extra=` (status, duration_ms). A real LogRecord, through
    the logger's filters and handlers; or, when our stream handler alone would see it, the
    very line it would write, made without the record (`_DirectPlan`)."""
    plan = _plan[0]
    if plan is None or not plan.batch or plan.handler._pending is not plan.batch:
        # none, or not made for the batch still waiting: check again (a plan implies INFO)
        if not run_log.isEnabledFor(logging.INFO):
            return
        plan = _direct_plan()
    if plan is not None:
        text = plan.text
        if text is not None:  # the whole line in one step, as `format` would make it
            tags = holder.formats.get(text)
            if tags is None:
                tags = text.run_tags(holder)
            milli = time.time_ns() // 1_000_000  # `time.time()`'s int(), * 1000... cost more
            known, prefix = plan.stamp  # one tuple: loops in other threads may share the plan
            if milli != known:  # a busy worker writes several lines a millisecond
                prefix = text.run_prefix(milli // 1000, milli % 1000, plan.level, _RUN_LOG)
                plan.stamp = (milli, prefix)
            name, run_id, last = args  # `msg % args`, inlined: a fraction of its cost
            made = (
                f"{prefix}Starting job {name} (ID: {run_id}) with correlation ID {last} {tags}"
                if msg is _START
                else f"{prefix}Job {name} (ID: {run_id}) completed successfully in {last} {tags}"
            )
            if not tags or "\n" in made:  # a value with a line break: as `format` places it
                made = with_tags(f"{prefix}{msg % args}", tags)
            line: str | None = made
        else:
            line = plan.formatter.run_line(
                time.time(), plan.level, _RUN_LOG, msg % args, holder, _extra(success_ms)
            )
        if line is not None:
            handler, batch = plan.handler, plan.batch
            if batch:  # join the batch (its turn's flush is scheduled) while it waits
                lock = handler.lock
                assert lock is not None  # made by `Handler.__init__`
                lock.acquire()  # (not `with`: half the cost)
                try:
                    if handler._pending is batch:
                        batch.append(line + handler.terminator)
                        if len(batch) >= 1024:
                            handler._write_reporting()
                        return
                finally:
                    lock.release()
            handler.emit_line(line, logging.INFO)
            return
    extra = _extra(success_ms)
    if logging.getLogRecordFactory() is logging.LogRecord:
        record = _info_record(msg, args)
    else:  # someone's factory adds or changes attributes: let it
        record = run_log.makeRecord(
            run_log.name, logging.INFO, _SOURCE_FILE, _SOURCE_LINE, msg, args, None, _SOURCE_FUNC
        )
    if extra:  # what makeRecord does with `extra=`, minus its checks: these keys are ours
        record.__dict__.update(extra)
    run_log.handle(record)


def _extra(success_ms: float | None) -> dict[str, Any] | None:
    if success_ms is None:
        return None
    return {"status": "success", "duration_ms": round(success_ms, 3)}


_RUN_LOG = run_log.name
# What the direct path must find unchanged: a patched `Logger.handle` or `callHandlers` (an
# error tracker's breadcrumbs), another logger class or record factory wants the record.
_HANDLE, _CALL_HANDLERS = logging.Logger.handle, logging.Logger.callHandlers


class _DirectPlan:
    """What the direct path found (`_direct_plan`): our handler, its formatter, the level's
    name, and the handler's batch waiting when it was made (None when not batched)."""

    __slots__ = ("batch", "formatter", "handler", "level", "stamp", "text")

    def __init__(
        self,
        handler: StreamHandler,
        formatter: TextFormatter | JsonFormatter,
        batch: list[str] | None,
    ) -> None:
        self.handler, self.formatter, self.batch = handler, formatter, batch
        self.level = logging.getLevelName(logging.INFO)
        self.text = formatter if type(formatter) is TextFormatter else None
        self.stamp = (-1, "")  # (millisecond, the text lines' start for it)


#: The last direct plan (see `_direct_plan`).
_plan: list[_DirectPlan | None] = [None]


def _direct_plan() -> _DirectPlan | None:
    """The direct path's plan when it applies, else None.

    Checked once per batch of a batching handler: while the lines of the batch the plan was
    made for still wait (one event-loop turn, at most `StreamHandler.SWEEP` when the loop is
    blocked), the next start and end lines reuse it (`_emit` checks that). So a logging
    configuration change made in the middle of a loop turn reaches these lines from the
    next turn: the walk and the handler's checks were a third of a line's cost. Without
    batching, checked every time.
    """
    handler = _direct_handler()
    formatter = handler.direct() if handler is not None else None
    if handler is None or formatter is None:
        _plan[0] = None
        return None
    made = _plan[0] = _DirectPlan(handler, formatter, handler._pending if handler.batched else None)
    return made


def _direct_handler() -> StreamHandler | None:
    """Our stream handler, when it is the only thing a start or end record would reach: no
    logger filter on the way, no other handler, stock `logging` (checked each time: a
    configuration may change at any moment). Then the record itself can be skipped: it
    costs more than the line (a worker's two lines per run were a third of its time)."""
    if (
        logging.Logger.handle is not _HANDLE
        or logging.Logger.callHandlers is not _CALL_HANDLERS
        or logging.getLogRecordFactory() is not logging.LogRecord
        or type(run_log) is not logging.Logger
        or "handle" in run_log.__dict__  # patched on the instance
        or "callHandlers" in run_log.__dict__
    ):
        return None
    found = None
    logger: logging.Logger | None = run_log
    while logger is not None:
        if logger.filters or logger.disabled:
            return None
        for handler in logger.handlers:
            if found is not None or type(handler) is not StreamHandler:
                return None
            found = handler
        if not logger.propagate:
            break
        logger = logger.parent
    return found


# What `LogRecord.__init__` sets that does not change between the start and end records of
# one thread in one process: copied from a record it made, per thread (and its name); a
# forked child (another pid) starts afresh.
_Template = tuple[dict[str, Any], float, str]
_templates: dict[threading.Thread, _Template] = {}
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_templates.clear)
_PER_RECORD = ("msg", "args", "created", "msecs", "relativeCreated", "taskName")
_new_record = logging.LogRecord.__new__
_HAS_TASK_NAME = hasattr(logging, "logAsyncioTasks")


def _info_record(msg: str, args: tuple[Any, ...]) -> logging.LogRecord:
    """The record `run_log.makeRecord` makes for the start and end lines, at a third of its
    cost: its constant attributes come from a template (`LogRecord.__init__` asks the
    thread, process and paths each time), the time and message are set here."""
    thread = threading.current_thread()
    known = _templates.get(thread)
    if known is None or known[2] != thread.name:
        model = run_log.makeRecord(
            run_log.name, logging.INFO, _SOURCE_FILE, _SOURCE_LINE, "", (), None, _SOURCE_FUNC
        ).__dict__
        # `relativeCreated` is ms since logging's start: keep the start, not the offset
        start = model["created"] - model["relativeCreated"] / 1000
        constant = {k: v for k, v in model.items() if k not in _PER_RECORD}
        if len(_templates) >= 256:  # threads come and go: stay small
            _templates.clear()
        known = _templates[thread] = (constant, start, thread.name)
    constant, start, _ = known
    record: logging.LogRecord = _new_record(logging.LogRecord)
    attrs = record.__dict__
    attrs.update(constant)
    now = time.time()
    attrs["msg"] = msg
    attrs["args"] = args
    attrs["created"] = now
    attrs["msecs"] = int((now - int(now)) * 1000) + 0.0
    attrs["relativeCreated"] = (now - start) * 1000
    if _HAS_TASK_NAME and getattr(
        logging, "logAsyncioTasks", True
    ):  # Python 3.12+: the asyncio task's name
        task = asyncio.current_task() if asyncio._get_running_loop() is not None else None
        attrs["taskName"] = task.get_name() if task is not None else None
    return record


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
