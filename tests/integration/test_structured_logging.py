"""Structured logging, context isolation and correlation, on a real app and worker (SQLite)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers import run_asgi

from jobglass.app import EnqueueRequest, JobGlass
from jobglass.models import FINISHED
from jobglass.observe.asgi import CorrelationIdMiddleware
from jobglass.observe.context import (
    bind,
    current_correlation_id,
    current_run,
    current_tenant_id,
    current_user_id,
)
from jobglass.observe.logging import ContextFilter, TextFormatter, configure_logging
from jobglass.stores.base import NewRun

SECRETS = ("hunter2-secret", "sk-live-123", "tok-abc-999", "123-45-6789", "pw-in-context")
DURATION = r"\d+\.\d\ds"


class InventoryMismatch(Exception):
    pass


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_output() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """JSON lines and text lines of everything logged at INFO and above, via the root logger."""
    root = logging.getLogger()
    level = root.level
    json_out, text_out = io.StringIO(), io.StringIO()
    json_handler = configure_logging(json=True, stream=json_out)
    text_handler = logging.StreamHandler(text_out)
    text_handler.addFilter(ContextFilter())
    text_handler.setFormatter(TextFormatter())
    root.addHandler(text_handler)
    try:
        yield json_out, text_out
    finally:
        root.removeHandler(json_handler)
        root.removeHandler(text_handler)
        root.setLevel(level)


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[JobGlass]:
    app = JobGlass(
        database_url=f"sqlite:///{tmp_path}/t.db",
        sensitive_keys=["password", "token", "secret", "api_key", "ssn"],
        concurrency=64,
    )

    @app.job(name="export-users")
    async def export_users(ctx: Any, **params: Any) -> str:
        logging.getLogger("tests.export").info("exporting %s users", params.get("batch_size"))
        ctx.log.info("calling the API", {"token": "tok-abc-999", "user": "bob"})
        ctx.log.warning("retrying login", {"auth": {"password": "pw-in-context"}})
        logging.getLogger("tests.export").info("sent", extra={"api_key": "sk-live-123"})
        return "ok"

    @app.job(name="export-sync")
    def export_sync(ctx: Any, **params: Any) -> str:
        logging.getLogger("tests.export").info("sync job logging from a thread")
        return "ok"

    @app.job(name="inventory")
    async def inventory(ctx: Any) -> None:
        raise InventoryMismatch("expected 3 got 2")

    @app.job(name="probe-async")
    async def probe_async(ctx: Any, i: int) -> list[list[Any]]:
        seen = []
        for _ in range(4):
            logging.getLogger("tests.probe").info("probe %s", ctx.correlation_id)
            seen.append(_snapshot(ctx))
            await asyncio.sleep(random.uniform(0, 0.02))
        return seen

    @app.job(name="probe-sync")
    def probe_sync(ctx: Any, i: int) -> list[list[Any]]:
        seen = []
        for _ in range(4):
            logging.getLogger("tests.probe").info("probe %s", ctx.correlation_id)
            seen.append(_snapshot(ctx))
            time.sleep(random.uniform(0, 0.01))
        return seen

    @app.job(name="noop")
    async def noop(ctx: Any) -> None:
        return None

    async with app:
        yield app


def _snapshot(ctx: Any) -> list[Any]:
    run = current_run()
    return [
        current_correlation_id(),
        current_tenant_id(),
        current_user_id(),
        run.run_id if run is not None else None,
        run is ctx,
    ]


async def work(app: JobGlass, ids: list[int], concurrency: int = 8) -> None:
    worker = app.worker(concurrency=concurrency)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(600):
            runs = [await app.get_run(i) for i in ids]
            if all(r.status in FINISHED for r in runs):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("runs did not finish")
    finally:
        worker.stop()
        await task


# -- fields and lines --------------------------------------------------------------------------


async def test_json_lines_carry_the_run_fields(
    app: JobGlass, root_output: tuple[io.StringIO, io.StringIO]
) -> None:
    fire = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)
    params = {
        "batch_size": 100,
        "password": "hunter2-secret",
        "options": {"api_key": "sk-live-123", "region": "eu"},
    }
    created = await app.store.create_runs(
        [
            NewRun(
                job_name="export-users",
                params=params,
                correlation_id="abc123def456",
                tenant_id="7",
                user_id="42",
                fire_time=fire,
                next_fire_time=fire + timedelta(days=1),
                schedule_name="nightly-export",
                trigger="SCHEDULE",
            )
        ]
    )
    run = created[0].run
    sync_run = await app.enqueue("export-sync", {"ssn": "123-45-6789"}, correlation_id="c-sync")
    await work(app, [run.id, sync_run.id])

    lines = json_lines(root_output[0])
    mine = [line for line in lines if line.get("job_id") == run.id]
    messages = [line["message"] for line in mine]
    assert (
        messages[0] == f"Starting job export-users (ID: {run.id}) with correlation ID abc123def456"
    )
    assert re.fullmatch(
        rf"Job export-users \(ID: {run.id}\) completed successfully in {DURATION}", messages[-1]
    )
    own = next(line for line in mine if line["logger"] == "tests.export")
    assert own["message"] == "exporting 100 users"
    assert own["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", own["time"])
    assert {
        k: own[k]
        for k in (
            "correlation_id",
            "job_name",
            "job_id",
            "attempt",
            "fire_time",
            "next_fire_time",
            "tenant_id",
            "user_id",
            "job.batch_size",
            "job.password",
            "job.options",
        )
    } == {
        "correlation_id": "abc123def456",
        "job_name": "export-users",
        "job_id": run.id,
        "attempt": 1,
        "fire_time": "2026-01-31T02:00:00.000Z",
        "next_fire_time": "2026-02-01T02:00:00.000Z",
        "tenant_id": "7",
        "user_id": "42",
        "job.batch_size": 100,
        "job.password": "[REDACTED]",
        "job.options": {"api_key": "[REDACTED]", "region": "eu"},
    }
    sent = next(line for line in mine if line["message"] == "sent")
    assert sent["api_key"] == "[REDACTED]"

    threaded = next(line for line in lines if line["message"] == "sync job logging from a thread")
    assert threaded["job_id"] == sync_run.id and threaded["correlation_id"] == "c-sync"
    assert threaded["job.ssn"] == "[REDACTED]"
    assert threaded["fire_time"] is None and threaded["tenant_id"] is None  # stable schema

    text = root_output[1].getvalue()
    assert f"[correlation_id=abc123def456 job=export-users#{run.id} attempt=1 tenant_id=7]" in text


async def test_failure_line_names_the_error_type_and_carries_the_traceback(
    app: JobGlass, root_output: tuple[io.StringIO, io.StringIO]
) -> None:
    run = await app.run_job("inventory", correlation_id="cid-inv")
    assert run.status == "FAILED"
    line = next(
        line
        for line in json_lines(root_output[0])
        if line.get("job_id") == run.id
        and line["level"] == "ERROR"
        and line["logger"] == "jobglass.run"
    )
    assert re.fullmatch(
        rf"Job inventory \(ID: {run.id}\) failed after {DURATION}: "
        r"InventoryMismatch: expected 3 got 2",
        line["message"],
    )
    assert line["error_type"] == "InventoryMismatch" and line["status"] == "error"
    assert "Traceback" in line["exc"] and "InventoryMismatch: expected 3 got 2" in line["exc"]


async def test_sensitive_values_never_reach_stored_logs_or_output(
    app: JobGlass, root_output: tuple[io.StringIO, io.StringIO]
) -> None:
    run = await app.enqueue(
        "export-users",
        {
            "batch_size": 5,
            "password": "hunter2-secret",
            "ssn": "123-45-6789",
            "options": {"api_key": "sk-live-123"},
        },
    )
    await work(app, [run.id])
    stored = await app.get_logs(run.id, limit=1000)
    assert any(line.message == "calling the API" for line in stored)
    dumped = json.dumps([line.to_json() for line in stored])
    output = root_output[0].getvalue() + root_output[1].getvalue()
    assert "exporting 5 users" in output
    for secret in SECRETS:
        assert secret not in dumped, secret
        assert secret not in output, secret
    calling = next(line for line in stored if line.message == "calling the API")
    assert calling.context == {"token": "[REDACTED]", "user": "bob"}


async def test_extra_fields_win_and_never_raise_inside_a_run(app: JobGlass) -> None:
    handler = ListHandler()
    logger = logging.getLogger("tests.extra")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    @app.job(name="extra")
    async def extra(ctx: Any) -> None:
        logger.info("mine", extra={"job_name": "custom", "batch": 3})

    try:
        run = await app.run_job("extra")
    finally:
        logger.removeHandler(handler)
    assert run.status == "SUCCESS"
    (record,) = handler.records
    assert record.job_name == "custom"  # type: ignore[attr-defined]
    assert record.job_id == run.id  # type: ignore[attr-defined]


# -- isolation ---------------------------------------------------------------------------------


async def test_200_concurrent_runs_never_see_each_others_context(app: JobGlass) -> None:
    handler = ListHandler()
    probe_logger = logging.getLogger("tests.probe")
    probe_logger.addHandler(handler)
    probe_logger.setLevel(logging.INFO)
    requests = [
        EnqueueRequest(
            "probe-async" if i % 2 else "probe-sync",
            {"i": i},
            correlation_id=f"cid-{i}",
            tenant_id=f"tenant-{i}",
            user_id=f"user-{i}",
        )
        for i in range(200)
    ]
    try:
        created = await app.enqueue_many(requests)
        ids = [c.run.id for c in created]
        await work(app, ids, concurrency=200)
    finally:
        probe_logger.removeHandler(handler)

    runs = [await app.get_run(run_id) for run_id in ids]
    for i, run in enumerate(runs):
        assert run.status == "SUCCESS", (run.job_name, run.error)
        assert run.result == [[f"cid-{i}", f"tenant-{i}", f"user-{i}", run.id, True]] * 4
    edges = sorted(
        [(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs],
        key=lambda edge: (edge[0], edge[1]),
    )
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    assert peak >= 50, f"runs barely overlapped (peak {peak})"
    assert len(handler.records) == 800
    for record in handler.records:
        attrs = record.__dict__
        assert record.getMessage() == f"probe {attrs['correlation_id']}"
        i = int(attrs["correlation_id"].removeprefix("cid-"))
        assert attrs["job_id"] == ids[i]
        assert attrs["tenant_id"] == f"tenant-{i}" and attrs["user_id"] == f"user-{i}"
        assert attrs["job.i"] == i
    # nothing leaks out of the runs into the test's own context
    assert current_correlation_id() is None and current_run() is None


def _plain_middleware(ctx: Any, call_next: Any) -> Any:
    """No coroutine function: hands on the next layer's coroutine."""
    return call_next()


def _task_middleware(ctx: Any, call_next: Any) -> Any:
    """Returns an awaitable that is no coroutine (a task)."""
    return asyncio.ensure_future(call_next())


@pytest.mark.parametrize(
    "shape",
    ["default", "outer coroutine", "outer plain function", "outer task", "context inside"],
)
async def test_every_middleware_shape_runs_the_job_in_its_context(
    app: JobGlass, shape: str
) -> None:
    """The runner binds the run's ids in the attempt task's own context when
    `run_context_middleware` is outermost; anything around it sees the caller's context."""
    outside: list[Any] = []

    async def outer(ctx: Any, call_next: Any) -> Any:
        outside.append(current_correlation_id())
        result = await call_next()
        outside.append(current_correlation_id())
        return result

    default = list(app.middleware)
    extra = {
        "default": [],
        "outer coroutine": [outer],
        "outer plain function": [_plain_middleware],
        "outer task": [_task_middleware],
    }.get(shape)
    if extra is None:  # the context bound by a layer around the handler, not the task
        app.middleware = [outer, *default[1:]]
        app.middleware.insert(1, default[0])
    else:
        app.middleware = [*extra, *default]
    try:
        with bind(correlation_id="the-caller"):
            run = await app.run_job(
                "probe-async", {"i": 1}, correlation_id="cid-x", tenant_id="t-1", user_id="u-1"
            )
            assert current_correlation_id() == "the-caller"  # nothing leaked out of the run
    finally:
        app.middleware = default
    assert run.status == "SUCCESS", run.error
    assert run.result == [["cid-x", "t-1", "u-1", run.id, True]] * 4
    if shape in ("outer coroutine", "context inside"):
        assert outside == ["the-caller", "the-caller"]
    assert current_correlation_id() is None and current_run() is None


# -- correlation through HTTP, system and tenant jobs ------------------------------------------


async def test_correlation_id_middleware_over_http(tmp_path: Path, app: JobGlass) -> None:
    web = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")

    @web.job(name="noop")
    async def noop(ctx: Any) -> None:
        return None

    handler = ListHandler()
    web_logger = logging.getLogger("tests.web")
    web_logger.addHandler(handler)
    web_logger.setLevel(logging.INFO)

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await web.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        web_logger.info("handling")
        run = await web.enqueue("noop")
        body = json.dumps(
            {
                "runCorrelationId": run.correlation_id,
                "current": current_correlation_id(),
                "state": scope["state"]["correlation_id"],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"x-correlation-id", b"app-set-this"),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    cases = [
        ({"x-correlation-id": "corr-1"}, "corr-1"),
        ({"x-request-id": "req-2"}, "req-2"),
        ({"x-correlation-id": "corr-3", "x-request-id": "req-3"}, "corr-3"),
        ({"x-correlation-id": "bad id\twith spaces"}, None),
        ({}, None),
    ]
    try:
        with run_asgi(CorrelationIdMiddleware(endpoint), lifespan="on") as url:
            async with httpx.AsyncClient(base_url=url) as client:
                responses = [await client.get("/", headers=h) for h, _ in cases]
    finally:
        web_logger.removeHandler(handler)
    for (_, expected), response, record in zip(cases, responses, handler.records, strict=True):
        echoed = response.headers.get_list("x-correlation-id")
        assert len(echoed) == 1
        if expected is None:
            assert re.fullmatch(r"[0-9a-f]{32}", echoed[0])
        else:
            assert echoed[0] == expected
        body = response.json()
        assert body == {"runCorrelationId": echoed[0], "current": echoed[0], "state": echoed[0]}
        assert record.correlation_id == echoed[0]  # type: ignore[attr-defined]


async def test_system_and_tenant_helpers(app: JobGlass) -> None:
    with bind(correlation_id="req-9", tenant_id="t-1", user_id="u-1"):
        plain = await app.enqueue("noop")
        system = await app.enqueue_system("noop")
        tenant = await app.enqueue_tenant(55, "noop")
        tenant_user = await app.enqueue_tenant("56", "noop", user_id=3)
    assert (plain.tenant_id, plain.user_id, plain.scope) == ("t-1", "u-1", "tenant")
    assert (system.tenant_id, system.user_id, system.scope) == (None, None, "system")
    assert (tenant.tenant_id, tenant.user_id, tenant.scope) == ("55", None, "tenant")
    assert (tenant_user.tenant_id, tenant_user.user_id) == ("56", "3")
    assert {r.correlation_id for r in (plain, system, tenant, tenant_user)} == {"req-9"}
    assert current_tenant_id() is None
