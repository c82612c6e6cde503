"""Unit tests for jobglass.applog: the immutable chain, redaction, context, the buffer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from jobglass.applog import AppLogger, AppLogHub, bound_logger
from jobglass.config import Settings
from jobglass.errors import ConfigError, InvalidInput
from jobglass.observe.context import bind
from jobglass.observe.request import extract_logging_context
from jobglass.stores.applog_types import AppLogRecord

KEYS = frozenset({"password", "token", "secret", "authorization", "cookie", "api_key"})


class Sink:
    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[AppLogRecord]] = []
        self.fail = fail

    async def __call__(self, records: Sequence[AppLogRecord]) -> int:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("store down")
        self.batches.append(list(records))
        return len(records)

    @property
    def records(self) -> list[AppLogRecord]:
        return [r for batch in self.batches for r in batch]


def make_hub(**options: Any) -> tuple[AppLogHub, Sink]:
    sink = Sink(options.pop("fail", 0))
    return AppLogHub(sink, sensitive_keys=KEYS, **options), sink


def last(hub: AppLogHub) -> AppLogRecord:
    """The newest buffered record (buffered as a plain tuple, its context as JSON text)."""
    record = AppLogRecord(*hub._buffer[-1])
    return record._replace(context=record.context_dict())


def test_chain_returns_new_loggers_and_never_changes_the_original() -> None:
    hub, _ = make_hub()
    base = hub.logger
    user = base.add_user("u1")
    both = user.add_correlation("c1").with_context(a=1)
    assert base is not user and user is not both
    base.info("base")
    assert last(hub).get("user_id") is None
    user.info("user")
    assert (last(hub).get("user_id"), last(hub).get("correlation_id")) == ("u1", None)
    both.info("both")
    assert (last(hub).get("user_id"), last(hub).get("correlation_id")) == ("u1", "c1")
    assert last(hub).context == {"a": 1}
    with pytest.raises(AttributeError):
        base._fields = {}  # type: ignore[misc]


def test_later_calls_win_and_none_does_not_erase() -> None:
    hub, _ = make_hub()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(b"x-correlation-id", b"from-header")],
        "client": ("10.1.2.3", 5000),
    }
    logger = hub.logger.with_request(scope).add_user("explicit").add_correlation(None)
    logger.info("hi")
    record = last(hub)
    assert record.get("user_id") == "explicit"
    assert record.get("correlation_id") == "from-header"
    assert (record.get("method"), record.get("path"), record.get("ip_address")) == (
        "GET",
        "/x",
        "10.1.2.3",
    )


def test_ambient_correlation_and_user_fill_in_but_explicit_values_win() -> None:
    hub, _ = make_hub()
    with bind(correlation_id="ambient-c", user_id="ambient-u"):
        hub.logger.info("ambient")
        assert (last(hub).get("correlation_id"), last(hub).get("user_id")) == (
            "ambient-c",
            "ambient-u",
        )
        hub.logger.add_user("me").add_correlation("mine").info("explicit")
        assert (last(hub).get("correlation_id"), last(hub).get("user_id")) == ("mine", "me")
        # with_request without a correlation header keeps the bound (echoed) id
        hub.logger.with_request({"type": "http", "headers": []}).info("req")
        assert last(hub).get("correlation_id") == "ambient-c"


def test_current_is_the_bound_logger_with_own_fields_on_top() -> None:
    hub, _ = make_hub()
    other_hub, _ = make_hub()
    request_logger = hub.logger.add_correlation("req-1").with_context(path="/a")
    assert hub.logger.current() is hub.logger
    with bound_logger(request_logger):
        assert hub.logger.current() is request_logger
        assert other_hub.logger.current() is other_hub.logger  # another app's logger
        hub.logger.with_context(extra=True).current().warning("w")
    record = last(hub)
    assert record.get("correlation_id") == "req-1"
    assert record.context == {"path": "/a", "extra": True}
    assert record.level == "warning"


def test_context_and_audit_data_are_redacted_and_copied() -> None:
    hub, _ = make_hub()
    context: dict[str, Any] = {"password": "p", "nested": {"apiKey": "k", "ok": 1}, "n": 1}
    logger = hub.logger.with_context(sessionToken="t", keep="yes")
    logger.error("boom", context)
    context["n"] = 2
    context["nested"]["ok"] = 2
    record = last(hub)
    assert record.context == {
        "sessionToken": "[REDACTED]",
        "keep": "yes",
        "password": "[REDACTED]",
        "nested": {"apiKey": "[REDACTED]", "ok": 1},
        "n": 1,
    }
    # the fast path (flat dict, known keys) copies too
    flat = {"n": 1}
    logger.info("a", flat)
    logger.info("b", flat)
    flat["n"] = 3
    assert last(hub).context == {"sessionToken": "[REDACTED]", "keep": "yes", "n": 1}
    logger.audit("user.login", "authentication", {"user": "u", "Authorization": "Bearer x"})
    assert last(hub).data == {"user": "u", "Authorization": "[REDACTED]"}
    assert (last(hub).kind, last(hub).action, last(hub).resource) == (
        "audit",
        "user.login",
        "authentication",
    )


@dataclass
class External:
    key: str
    display_name: str


@dataclass
class Source:
    key: str
    display_name: str
    external_system: External


def test_indexed_context_from_dicts_objects_and_source_record() -> None:
    hub, _ = make_hub()
    expected = {
        "source_key": "ds-1",
        "source_display_name": "PostgreSQL DB",
        "external_system_key": "sys-1",
        "external_system_display_name": "External API",
        "record_key": "rec-1",
        "record_display_name": "User Profile",
    }
    source = Source("ds-1", "PostgreSQL DB", External("sys-1", "External API"))
    record = SimpleNamespace(key="rec-1", displayName="User Profile")
    ways: list[AppLogger] = [
        hub.logger.with_indexed_context(extract_logging_context(source=source, record=record)),
        hub.logger.with_indexed_context(source=source, record=record),
        hub.logger.with_indexed_context(expected),  # snake_case mapping
        hub.logger.with_indexed_context(
            SimpleNamespace(
                sourceKey="ds-1",
                sourceDisplayName="PostgreSQL DB",
                externalSystemKey="sys-1",
                externalSystemDisplayName="External API",
                recordKey="rec-1",
                recordDisplayName="User Profile",
            )
        ),
    ]
    for logger in ways:
        logger.info("x")
        assert {k: last(hub).get(k) for k in expected} == expected
    hub.logger.with_indexed_context({"recordKey": 42}).info("int key")
    assert last(hub).get("record_key") == "42"


def test_credential_context_and_request_metrics() -> None:
    hub, _ = make_hub()
    hub.logger.with_credential_context("cred-123", "oauth2").with_request_metrics(
        10, 20, 12.6
    ).info("API call completed")
    record = last(hub)
    assert (record.get("credential_id"), record.get("credential_type")) == ("cred-123", "oauth2")
    assert (record.get("request_size"), record.get("response_size")) == (10, 20)
    assert record.get("duration_ms") == 13
    hub.logger.with_request_metrics(2**80).info("huge")
    assert last(hub).get("request_size") == 2**63 - 1
    with pytest.raises(InvalidInput):
        hub.logger.with_request_metrics("10")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        hub.logger.with_request_metrics(duration_ms=float("nan"))
    with pytest.raises(InvalidInput):
        hub.logger.audit("", "posts")
    with pytest.raises(InvalidInput):
        hub.logger.log("loud", "x")


def test_records_also_go_to_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    hub, _ = make_hub()
    with caplog.at_level(logging.DEBUG, logger="jobglass.app"):
        hub.logger.add_correlation("c-9").debug("dbg", {"password": "p", "n": 1})
        hub.logger.add_user("u").audit("post.created", "posts", {"title": "t"})
    first, second = caplog.records
    assert (first.levelno, first.getMessage()) == (logging.DEBUG, "dbg")
    assert first.correlation_id == "c-9"  # type: ignore[attr-defined]
    assert first.context == {"password": "[REDACTED]", "n": 1}  # type: ignore[attr-defined]
    assert first.funcName == "test_records_also_go_to_python_logging"
    assert second.getMessage() == "audit post.created posts"
    assert second.action == "post.created"  # type: ignore[attr-defined]
    assert second.audit_data == {"title": "t"}  # type: ignore[attr-defined]


async def test_buffer_batches_retries_and_caps() -> None:
    hub, sink = make_hub(batch_size=3, interval=0.01, max_buffered=10, fail=1)
    for n in range(7):
        hub.logger.info(f"line {n}")
    with pytest.raises(ConnectionError):
        await hub.flush()  # the write failed: nothing is lost
    assert hub.pending == 7
    await hub.flush()
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert [r.message for r in sink.records] == [f"line {n}" for n in range(7)]
    for n in range(12):
        hub.logger.info(f"more {n}")
    assert (hub.pending, hub.dropped) == (10, 2)
    await hub.close()
    assert hub.pending == 0 and len(sink.records) == 17


async def test_background_writer_flushes_without_being_asked() -> None:
    hub, sink = make_hub(interval=0.02)
    hub.start()
    hub.logger.info("from the loop")
    await asyncio.get_running_loop().run_in_executor(None, hub.logger.info, "from a thread")
    for _ in range(100):
        if len(sink.records) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(r.message or "" for r in sink.records) == ["from a thread", "from the loop"]
    await hub.close()


async def test_threads_logging_while_the_writer_runs_lose_and_repeat_nothing() -> None:
    """Four threads log flat out while the background writer drains the lock-free buffer
    in small batches, and the store fails now and then: every record arrives exactly once,
    each thread's in order."""
    per_thread = 5_000
    sink = Sink(fail=0)
    calls = 0

    async def flaky(records: Sequence[AppLogRecord]) -> int:
        nonlocal calls
        calls += 1
        if calls % 7 == 3:
            raise ConnectionError("store blinked")
        await asyncio.sleep(0)
        return await sink(records)

    hub = AppLogHub(flaky, sensitive_keys=KEYS, interval=0.001, batch_size=500)
    hub.start()

    def writer(i: int) -> None:
        log = hub.logger.add_user(f"t{i}")
        for n in range(per_thread):
            log.info("line", {"n": n})

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, writer, i) for i in range(4)))
    for _ in range(500):  # the writer drains it without being asked (retries included)
        if len(sink.records) == 4 * per_thread:
            break
        await asyncio.sleep(0.01)
    await hub.close()
    assert hub.pending == 0 and hub.written == 4 * per_thread
    for i in range(4):
        mine = [r for r in sink.records if r.get("user_id") == f"t{i}"]
        assert [r.context_dict() for r in mine] == [{"n": n} for n in range(per_thread)]


async def test_the_writer_wakes_for_every_burst() -> None:
    """After each drain the writer waits again; a lone record later must wake it."""
    hub, sink = make_hub(interval=0.005, batch_size=50)
    hub.start()
    for burst in range(20):
        for n in range(burst * 7 % 120):  # 0 to 119 records: below and above batch_size
            hub.logger.info(f"{burst}-{n}")
        hub.logger.info(f"{burst}-last")
        for _ in range(200):
            if sink.records and sink.records[-1].message == f"{burst}-last":
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError(f"burst {burst} was not written without a flush")
    assert len(sink.records) == sum(burst * 7 % 120 + 1 for burst in range(20))
    await hub.close()


def test_settings_retention_days() -> None:
    settings = Settings.load({}, env_file=None)
    assert (settings.app_log_days, settings.audit_log_days) == (30.0, 365.0)
    assert Settings.load({"app_log_days": "none"}, env_file=None).app_log_days is None
    with pytest.raises(ConfigError):
        Settings.load({"audit_log_days": 0}, env_file=None)
