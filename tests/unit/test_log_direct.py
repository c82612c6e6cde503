"""The start and end lines' direct path, and the batched stream handler.

When our stream handler is the only thing a start or end record would reach, `_emit` writes
the line that handler would write without making the record (checked once per batch of a
batching handler: a change counts from the next loop turn). These tests pin that the line
is the same as through a real record (text and JSON, with params, tenant, redaction and
extras), and that anything else that could see the record (a logger filter, another
handler, a record factory, a patched `Logger.callHandlers`) gets the real record.

Batched (`configure_logging(batched=True)`, what `jobglass worker` uses), lines logged on an
event loop reach the stream at the end of the loop turn, in order, also when a thread or a
WARNING writes in between, within `SWEEP` when the loop is blocked, and on `flush()`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobglass.context import JobContext
from jobglass.feedback import JobLogger
from jobglass.observe import logging as jlog
from jobglass.observe.context import run_context_middleware
from jobglass.observe.logging import TextFormatter, configure_logging, logging_middleware
from jobglass.observe.redact import REDACTED

RUN_LOGGER = logging.getLogger("jobglass.run")


@pytest.fixture
def own_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., tuple[io.StringIO, Any]]]:
    """Our handler alone on `jobglass.run`, not propagating: pytest's capture handlers (on
    the root logger, and on this one while a test runs) are set aside for the test."""

    def install(**options: Any) -> tuple[io.StringIO, Any]:
        out = io.StringIO()
        if not any(getattr(h, "_jobglass", False) for h in RUN_LOGGER.handlers):
            monkeypatch.setattr(RUN_LOGGER, "handlers", [])  # a second call replaces ours
        handler = configure_logging(stream=out, logger=RUN_LOGGER, **options)
        return out, handler

    monkeypatch.setattr(RUN_LOGGER, "propagate", False)
    yield install
    RUN_LOGGER.setLevel(logging.NOTSET)


def make_ctx(**overrides: Any) -> JobContext:
    values: dict[str, Any] = {
        "run_id": 77,
        "job_name": "DataCleanupJob",
        "log": JobLogger(77, "DataCleanupJob"),
        "params": {"batch": 5, "api_key": "s3cret", "nested": {"token": "t", "n": [1, 2]}},
        "correlation_id": "abc123def456",
        "tenant_id": "t-9",
        "user_id": 12,
    }
    values.update(overrides)
    return JobContext(**values)


async def run_once(ctx: JobContext, fail: bool = False) -> None:
    async def handler() -> None:
        if fail:
            raise ValueError("boom")

    async def with_context() -> None:
        await logging_middleware(ctx, handler)

    with pytest.raises(ValueError) if fail else _nothing():
        await run_context_middleware(ctx, with_context)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def masked(text: str) -> list[str]:
    """Lines with their clock time and measured durations blanked (the two paths run apart)."""
    text = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", "T", text, flags=re.M)
    text = re.sub(r'"time": "[^"]+"', '"time": "T"', text)
    text = re.sub(r"in \d+(\.\d+)?(ms|s|m|h)\b", "in D", text)
    text = re.sub(r'"duration_ms": [0-9.e-]+', '"duration_ms": 0', text)
    return text.splitlines()


def always(record: logging.LogRecord) -> bool:
    return True


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(
    "ctx_options",
    [
        {},
        {"params": {}},
        {"tenant_id": None, "user_id": None, "correlation_id": None},
        {"correlation_id": "abc\ndef"},
    ],
    ids=["params", "no-params", "no-ids", "line-break"],
)
async def test_direct_lines_equal_the_record_lines(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
    json_lines: bool,
    ctx_options: dict[str, Any],
) -> None:
    out, handler = own_handler(json=json_lines)
    assert jlog._direct_handler() is handler
    await run_once(make_ctx(**ctx_options))
    direct = out.getvalue()
    out.seek(0)
    out.truncate()

    RUN_LOGGER.addFilter(always)  # a logger filter must see records: the record path
    try:
        assert jlog._direct_handler() is None
        await run_once(make_ctx(**ctx_options))
    finally:
        RUN_LOGGER.removeFilter(always)
    through_records = out.getvalue()

    broken = not json_lines and "\n" in str(ctx_options.get("correlation_id"))
    if not broken:
        assert len(direct.splitlines()) == 2
    assert masked(direct) == masked(through_records)
    if json_lines:
        start, end = (json.loads(line) for line in direct.splitlines())
        assert start["message"] == (
            "Starting job DataCleanupJob (ID: 77) with correlation ID "
            f"{ctx_options.get('correlation_id', 'abc123def456')}"
        )
        assert end["status"] == "success" and isinstance(end["duration_ms"], float)
        if not ctx_options:
            assert start["job.api_key"] == REDACTED and "s3cret" not in direct
            assert end["tenant_id"] == "t-9" and end["user_id"] == 12
    elif not broken:
        assert "s3cret" not in direct
        assert direct.splitlines()[0].endswith(
            "[correlation_id=abc123def456 job=DataCleanupJob#77 attempt=1 tenant_id=t-9]"
            if not ctx_options or ctx_options.get("params") == {}
            else "[job=DataCleanupJob#77 attempt=1]"
        )


async def test_a_failure_goes_through_a_record_with_its_traceback(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(json=True)
    await run_once(make_ctx(), fail=True)
    start, failed = (json.loads(line) for line in out.getvalue().splitlines())
    assert start["message"].startswith("Starting job DataCleanupJob")
    assert failed["level"] == "ERROR" and failed["error_type"] == "ValueError"
    assert "Traceback" in failed["exc"] and "boom" in failed["exc"]


@pytest.mark.parametrize("change", ["handler", "factory", "call_handlers", "formatter", "level"])
async def test_anything_else_that_could_see_the_record_gets_it(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    out, handler = own_handler()
    seen: list[logging.LogRecord] = []
    restore: list[Callable[[], None]] = []
    try:
        await _see_records(change, handler, monkeypatch, seen, restore)
    finally:
        for undo in restore:
            undo()
    if change == "level":
        assert out.getvalue() == ""
        return
    assert [r.getMessage()[:12] for r in seen] == ["Starting job", "Job DataClea"]
    if change == "formatter":
        assert out.getvalue().startswith("mine: Starting job")


async def _see_records(
    change: str,
    handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    seen: list[logging.LogRecord],
    restore: list[Callable[[], None]],
) -> None:

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    if change == "handler":
        monkeypatch.setattr(logging.getLogger("jobglass"), "handlers", [Keep()])
        RUN_LOGGER.propagate = True
        monkeypatch.setattr(logging.getLogger("jobglass"), "propagate", False)
    elif change == "factory":
        default = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = default(*args, **kwargs)
            seen.append(record)
            return record

        logging.setLogRecordFactory(factory)
        restore.append(lambda: logging.setLogRecordFactory(default))
    elif change == "call_handlers":
        original = logging.Logger.callHandlers

        def patched(self: logging.Logger, record: logging.LogRecord) -> None:
            seen.append(record)
            original(self, record)

        monkeypatch.setattr(logging.Logger, "callHandlers", patched)
    elif change == "formatter":

        class Mine(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                seen.append(record)
                return "mine: " + super().format(record)

        handler.setFormatter(Mine())
    else:
        handler.setLevel(logging.WARNING)

    assert jlog._direct_handler() is None or handler.direct() is None
    await run_once(make_ctx())


# -- batching ----------------------------------------------------------------------------------


async def test_batched_lines_reach_the_stream_at_the_end_of_the_loop_turn(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("one")
    RUN_LOGGER.info("two")
    assert out.getvalue() == ""  # waiting for the end of this turn
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [line.split(": ", 1)[1] for line in out.getvalue().splitlines()] == ["one", "two"]


async def test_a_batch_checks_the_direct_path_once_and_a_change_counts_from_the_next_turn(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(batched=True)
    seen: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    await run_once(make_ctx())  # nothing here suspends: both lines wait in this turn's batch
    RUN_LOGGER.addFilter(keep)
    try:
        await run_once(make_ctx(run_id=78))
        assert seen == []  # the batch keeps the direct path its first line found
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(out.getvalue().splitlines()) == 4
        await run_once(make_ctx(run_id=79))  # a new batch: the filter now sees the records
        assert [message[:16] for message in seen] == ["Starting job Dat", "Job DataCleanupJ"]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [line.split(" (ID: ")[1][:2] for line in out.getvalue().splitlines()] == [
            "77", "77", "78", "78", "79", "79"
        ]  # fmt: skip
    finally:
        RUN_LOGGER.removeFilter(keep)


async def test_a_level_raised_mid_turn_counts_from_the_next_turn(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(batched=True)
    await run_once(make_ctx())  # the batch's direct plan was made with INFO enabled
    RUN_LOGGER.setLevel(logging.WARNING)
    await run_once(make_ctx(run_id=78))  # same turn: the plan still holds
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await run_once(make_ctx(run_id=79))  # a new turn: checked again, INFO is off
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [line.split(" (ID: ")[1][:2] for line in out.getvalue().splitlines()] == [
        "77", "77", "78", "78"
    ]  # fmt: skip


async def test_without_batching_a_level_counts_at_once(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler()
    await run_once(make_ctx())
    RUN_LOGGER.setLevel(logging.WARNING)
    await run_once(make_ctx(run_id=78))
    assert [line.split(" (ID: ")[1][:2] for line in out.getvalue().splitlines()] == ["77", "77"]


def test_the_direct_text_line_starts_as_format_starts_it() -> None:
    formatter = TextFormatter()
    for created in (1_700_000_000.0, 1_700_000_000.1234, 1_700_000_059.9996):
        record = logging.makeLogRecord({"msg": "m", "levelname": "INFO", "name": "jobglass.run"})
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        whole, milli = int(created), int(record.msecs)
        prefix = formatter.run_prefix(whole, milli, "INFO", "jobglass.run")
        assert prefix + "m" == formatter.format(record)


async def test_a_warning_or_a_thread_writes_at_once_after_the_waiting_lines(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("first")
    RUN_LOGGER.warning("second")
    assert [line.split(": ", 1)[1] for line in out.getvalue().splitlines()] == ["first", "second"]
    RUN_LOGGER.info("third")
    thread = threading.Thread(target=RUN_LOGGER.info, args=("fourth",))
    thread.start()
    thread.join()
    messages = [line.split(": ", 1)[1] for line in out.getvalue().splitlines()]
    assert messages == ["first", "second", "third", "fourth"]


async def test_a_blocked_loop_still_gets_its_lines_out_within_the_sweep(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, handler = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("before a long blocking call")
    deadline = time.monotonic() + 5
    while "before a long" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)  # noqa: ASYNC251 - the loop is blocked on purpose: only the sweeper writes
    waited = 5 - (deadline - time.monotonic())
    assert "before a long blocking call" in out.getvalue()
    assert waited >= handler.SWEEP * 0.9


async def test_flush_and_reconfiguring_write_what_waits(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, handler = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("kept by flush")
    handler.flush()
    assert "kept by flush" in out.getvalue()
    RUN_LOGGER.info("kept when replaced")
    own_handler()  # configure_logging again on the same logger replaces the handler
    assert "kept when replaced" in out.getvalue()
    assert handler not in RUN_LOGGER.handlers


def test_without_a_loop_a_batched_handler_writes_at_once(
    own_handler: Callable[..., tuple[io.StringIO, Any]],
) -> None:
    out, _ = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("no loop here")
    assert "no loop here" in out.getvalue()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
async def test_a_forked_child_does_not_write_its_parents_waiting_lines(
    own_handler: Callable[..., tuple[io.StringIO, Any]], tmp_path: Any
) -> None:
    out, handler = own_handler(batched=True)
    RUN_LOGGER.setLevel(logging.DEBUG)
    RUN_LOGGER.info("the parent's line")
    marker = tmp_path / "child.txt"
    with warnings.catch_warnings():  # 3.12+ warns of forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: what waits is the parent's
        try:
            marker.write_text(f"{len(handler._pending)} {handler._sweeper_pid}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)  # noqa: ASYNC222 - a child that exits at once
    assert marker.read_text() == "0 0"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert out.getvalue().count("the parent's line") == 1
