"""The logging fast paths give the same records and lines as the general ones.

`logging_middleware` builds its start/end records without `findCaller`, and `JsonFormatter` /
`TextFormatter` reuse the run's fields, formatted once per run. These tests pin that the
output is what the key-by-key path gives, and that a changed field is never hidden by the
per-run text.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobglass.context import JobContext
from jobglass.feedback import JobLogger
from jobglass.observe import logging as jlog
from jobglass.observe.context import (
    bind,
    current_correlation_id,
    current_run,
    current_tenant_id,
    current_user_id,
    run_context_middleware,
)
from jobglass.observe.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    logging_middleware,
    run_log_fields,
)
from jobglass.observe.redact import DEFAULT_SENSITIVE_KEYS, REDACTED, redact

START = "Starting job export (ID: 4242) with correlation ID cid-1"


class Capture(logging.Handler):
    """Keeps each record with the line every formatter makes of it, formatted at emit time."""

    def __init__(self, *formatters: logging.Formatter) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.formatters = formatters
        self.records: list[logging.LogRecord] = []
        self.lines: list[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append([f.format(record) for f in self.formatters])


@pytest.fixture
def capture() -> Iterator[Callable[..., Capture]]:
    installed: list[tuple[logging.Logger, Capture, int]] = []

    def install(*formatters: logging.Formatter, name: str = "jobglass.run") -> Capture:
        logger = logging.getLogger(name)
        handler = Capture(*formatters)
        installed.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler

    yield install
    for logger, handler, level in installed:
        logger.removeHandler(handler)
        logger.setLevel(level)


def make_ctx(**overrides: Any) -> JobContext:
    fire = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "run_id": 4242,
        "job_name": "export",
        "log": JobLogger(4242, "export"),
        "params": {"batch": 100, "password": "hunter2", "ratio": 0.5, "ok": True},
        "correlation_id": "cid-1",
        "tenant_id": "t-7",
        "fire_time": fire,
        "next_fire_time": fire + timedelta(days=1),
    }
    values.update(overrides)
    return JobContext(**values)


async def run(ctx: JobContext, body: Callable[[], Any] | None = None) -> None:
    async def call_next() -> None:
        if body is not None:
            body()

    async def with_context() -> None:
        await logging_middleware(ctx, call_next)

    await run_context_middleware(ctx, with_context)


def key_by_key(formatter: JsonFormatter, record: logging.LogRecord) -> str:
    return formatter._format_keys(record)


# -- the start and end lines -------------------------------------------------------------------


async def test_start_and_end_records_are_real_records_through_logger_filters(
    capture: Callable[..., Capture],
) -> None:
    seen: list[logging.LogRecord] = []

    def logger_filter(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    handler = capture(JsonFormatter())
    run_logger = logging.getLogger("jobglass.run")
    run_logger.addFilter(logger_filter)
    try:
        await run(make_ctx())
    finally:
        run_logger.removeFilter(logger_filter)

    start, end = handler.records
    assert seen == [start, end]
    for record in (start, end):
        assert type(record) is logging.LogRecord
        assert record.name == "jobglass.run" and record.levelno == logging.INFO
        assert record.funcName == "logging_middleware"
        assert Path(record.pathname) == Path(jlog.__file__)
        assert record.filename == "logging.py" and record.module == "logging"
        assert record.lineno == logging_middleware.__code__.co_firstlineno
        assert record.exc_info is None and record.stack_info is None
    assert start.getMessage() == START
    assert start.args == ("export", 4242, "cid-1")
    assert end.getMessage().startswith("Job export (ID: 4242) completed successfully in ")
    assert end.getMessage().endswith("s")
    assert end.__dict__["status"] == "success"
    assert isinstance(end.__dict__["duration_ms"], float)
    assert "status" not in start.__dict__


async def test_start_and_end_lines_respect_the_logger_level(
    capture: Callable[..., Capture],
) -> None:
    handler = capture(JsonFormatter())
    logging.getLogger("jobglass.run").setLevel(logging.WARNING)
    await run(make_ctx())
    assert handler.records == []


async def test_a_logger_filter_can_drop_the_lines(capture: Callable[..., Capture]) -> None:
    handler = capture(JsonFormatter())
    run_logger = logging.getLogger("jobglass.run")
    drop = logging.Filter("somewhere.else")
    run_logger.addFilter(drop)
    try:
        await run(make_ctx())
    finally:
        run_logger.removeFilter(drop)
    assert handler.records == []


# -- JSON: the per-run text is the key-by-key line ---------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"params": {}},
        {"params": {"nested": {"token": "t", "list": [1, {"api_key": 2}]}, "n": None}},
        {"params": {"when": datetime(2026, 1, 1, tzinfo=UTC), "big": 10**30, "uni": 'é\n"x'}},
        {"params": {"nan": float("nan"), "inf": float("inf"), 3: "int key"}},
        {"correlation_id": None, "tenant_id": None, "fire_time": None, "next_fire_time": None},
        {"job_name": 'quote"and\\backslash ünïcode'},
    ],
)
async def test_json_lines_inside_a_run_equal_the_key_by_key_lines(
    capture: Callable[..., Capture], overrides: dict[str, Any]
) -> None:
    default, custom = JsonFormatter(), JsonFormatter(frozenset({"id", "batch", "password"}))
    handler = capture(default, custom, name="tests.logfmt")
    run_handler = capture(default, custom)
    job_log = logging.getLogger("tests.logfmt")

    def body() -> None:
        job_log.info("plain %s", "arg")
        job_log.warning("extras", extra={"status": "x", "count": 2, "ctx": {"secret": 1}})
        job_log.info("overrides", extra={"job_name": "mine", "attempt": 9})
        job_log.info("param-like extra", extra={"job.extra": 1, "z": None})
        job_log.info("named exc", extra={"exc": "mine", "stack": 1})
        try:
            raise ValueError("boom")
        except ValueError:
            job_log.exception("failed", stack_info=True)

    await run(make_ctx(**overrides), body)

    records = handler.records + run_handler.records
    assert len(records) == 8
    for record, lines in zip(records, handler.lines + run_handler.lines, strict=True):
        assert lines == [key_by_key(default, record), key_by_key(custom, record)]
        for line in lines:
            json.loads(line)
    start = json.loads(run_handler.lines[0][0])
    assert start["message"] == START or overrides
    assert json.loads(run_handler.lines[0][1])["job_id"] == REDACTED  # "id" is sensitive there


async def test_a_field_changed_after_the_context_filter_shows_in_the_line(
    capture: Callable[..., Capture],
) -> None:
    class Pseudonymise(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if "user_id" in record.__dict__:
                record.__dict__["user_id"] = "anon"
            record.__dict__["tenant_id"] = record.__dict__.get("tenant_id", "") + "!"
            return True

    formatter = JsonFormatter()
    handler = capture(formatter)
    handler.addFilter(Pseudonymise())
    await run(make_ctx(user_id="alice"))
    for record, (line,) in zip(handler.records, handler.lines, strict=True):
        decoded = json.loads(line)
        assert decoded["user_id"] == "anon" and decoded["tenant_id"] == "t-7!"
        assert line == key_by_key(formatter, record)


async def test_a_record_from_another_run_keeps_its_own_fields(
    capture: Callable[..., Capture],
) -> None:
    handler = capture(JsonFormatter())
    await run(make_ctx())
    first_start = handler.records[0]
    formatter = JsonFormatter()
    lines: list[str] = []
    await run(
        make_ctx(run_id=7, correlation_id="cid-2"),
        lambda: lines.append(formatter.format(first_start)),
    )
    assert json.loads(lines[0])["job_id"] == 4242
    assert json.loads(lines[0])["correlation_id"] == "cid-1"


def test_json_time_is_utc_with_milliseconds() -> None:
    record = logging.makeLogRecord({"msg": "x", "created": 1769824803.1209})
    assert json.loads(JsonFormatter().format(record))["time"] == "2026-01-31T02:00:03.120Z"
    record = logging.makeLogRecord({"msg": "x", "created": 1769824803.9996})
    assert json.loads(JsonFormatter().format(record))["time"] == "2026-01-31T02:00:03.999Z"


# -- text ---------------------------------------------------------------------------------------


async def test_text_lines_tag_the_run_and_follow_changed_fields(
    capture: Callable[..., Capture],
) -> None:
    formatter = TextFormatter()
    handler = capture(formatter, name="tests.logfmt")
    job_log = logging.getLogger("tests.logfmt")

    def body() -> None:
        job_log.info("plain")
        job_log.info("override", extra={"job_name": "mine", "tenant_id": None})

    await run(make_ctx(), body)
    (plain,), (override,) = handler.lines
    assert plain.endswith(
        "INFO tests.logfmt: plain [correlation_id=cid-1 job=export#4242 attempt=1 tenant_id=t-7]"
    )
    assert override.endswith(
        "INFO tests.logfmt: override [correlation_id=cid-1 job=mine#4242 attempt=1]"
    )


def test_text_time_matches_the_stdlib_formatter() -> None:
    ours, stdlib = TextFormatter(), logging.Formatter("%(asctime)s")
    now = time.time()
    for created in (now, now + 0.5, now + 1.0009, 1769824803.9999):
        record = logging.makeLogRecord({"msg": "x", "created": created})
        record.msecs = int((created - int(created)) * 1000) + 0.0
        assert ours.formatTime(record) == stdlib.formatTime(record)
        assert ours.formatTime(record, "%H") == stdlib.formatTime(record, "%H")


def test_text_output_outside_a_run_is_unchanged() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("tests.logfmt.outside")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with bind(correlation_id="req-1"):
            logger.info("hello")
        logger.info("bare")
    finally:
        logger.removeHandler(handler)
    first, second = out.getvalue().splitlines()
    assert first.endswith("hello [correlation_id=req-1]")
    assert second.endswith("INFO tests.logfmt.outside: bare")


# -- fields and context -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": 1, "password": "p", "apiKey": "k", "f": 1.5, "b": True, "none": None, 3: "x"},
        {"a": 1, "nested": {"token": "t", "ok": [1, {"secret": 2}]}, "z": "last"},
        {"tuple": (1, {"password": "p"})},
    ],
)
def test_run_log_fields_redact_params_as_redact_does(params: dict[Any, Any]) -> None:
    fields = run_log_fields(make_ctx(params=params))
    redacted = redact(params, DEFAULT_SENSITIVE_KEYS)
    assert isinstance(redacted, dict)
    assert [key for key in fields if key.startswith("job.")] == [f"job.{k}" for k in params]
    assert {k: v for k, v in fields.items() if k.startswith("job.")} == {
        f"job.{k}": v for k, v in redacted.items()
    }


async def test_run_context_middleware_binds_and_restores() -> None:
    ctx = make_ctx(user_id="u-1")
    seen: list[tuple[Any, ...]] = []

    async def call_next() -> str:
        seen.append((current_correlation_id(), current_tenant_id(), current_user_id()))
        seen.append((current_run(),))
        return "done"

    with bind(correlation_id="outer", user_id="outer-user"):
        assert await run_context_middleware(ctx, call_next) == "done"
        assert (current_correlation_id(), current_tenant_id(), current_user_id()) == (
            "outer",
            None,
            "outer-user",
        )
        assert current_run() is None
        # None in the run keeps the ambient value, as `bind` does
        await run_context_middleware(make_ctx(correlation_id=None, tenant_id=None), call_next)
    assert seen[0] == ("cid-1", "t-7", "u-1") and seen[1] == (ctx,)
    assert seen[2] == ("outer", None, "outer-user")


async def test_run_context_middleware_restores_after_an_error() -> None:
    async def boom() -> Awaitable[None]:
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await run_context_middleware(make_ctx(), boom)
    assert current_correlation_id() is None and current_run() is None
