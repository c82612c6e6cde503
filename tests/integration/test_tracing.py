"""OpenTelemetry: request -> job -> child job as one trace, captured in memory.

The "API process" is a real ASGI app served by uvicorn in a thread (its own event loop and
its own JobGlass on the same SQLite file), wrapped in CorrelationIdMiddleware and starting
a SERVER span; the "worker process" is another JobGlass whose worker runs in the test loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers import run_asgi
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobglass.app import JobGlass
from jobglass.models import FINISHED
from jobglass.observe import context as observe_context
from jobglass.observe import tracing
from jobglass.observe.asgi import CorrelationIdMiddleware
from jobglass.observe.context import run_context_middleware
from jobglass.observe.logging import logging_middleware
from jobglass.observe.tracing import TracingMiddleware, setup_tracing, tracing_from_env


class InventoryMismatch(Exception):
    pass


@pytest.fixture(autouse=True)
def _forget_provider() -> Iterator[None]:
    """The trace-context provider list is process-wide: leave it as we found it."""
    before = list(observe_context.trace_context_provider)
    yield
    observe_context.trace_context_provider[:] = before


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def register_jobs(app: JobGlass) -> None:
    @app.job(name="build-report")
    async def build_report(ctx: Any, pages: int = 1) -> int:
        assert ctx.app is not None
        child = await ctx.app.enqueue("render-page", {"page": pages})
        return int(child.id)

    @app.job(name="render-page")
    async def render_page(ctx: Any, page: int) -> str:
        return f"page {page}"

    @app.job(name="broken")
    async def broken(ctx: Any) -> None:
        raise InventoryMismatch("expected 3 got 2")


@pytest.fixture
async def worker_app(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> AsyncIterator[JobGlass]:
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")
    register_jobs(app)
    setup_tracing(app, spans[0])
    async with app:
        yield app


def by_name(found: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matching = [s for s in found if s.name == name]
    assert len(matching) == 1, [s.name for s in found]
    return matching[0]


async def test_request_job_and_child_job_form_one_trace(
    tmp_path: Path, worker_app: JobGlass, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("test-web")
    web = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")  # the API process's app
    register_jobs(web)
    setup_tracing(web, provider)

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await web.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        with tracer.start_as_current_span("POST /reports", kind=SpanKind.SERVER):
            run = await web.enqueue("build-report", {"pages": 3}, tenant_id=7)
        body = json.dumps({"runId": run.id}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    with run_asgi(CorrelationIdMiddleware(endpoint), lifespan="on") as url:
        response = await asyncio.to_thread(
            httpx.post, f"{url}/reports", headers={"x-correlation-id": "req-abc.123"}
        )
    assert response.status_code == 202
    assert response.headers["x-correlation-id"] == "req-abc.123"
    parent_id = response.json()["runId"]

    worker = worker_app.worker(concurrency=4)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(400):
            parent = await worker_app.get_run(parent_id)
            if parent.status in FINISHED and isinstance(parent.result, int):
                child = await worker_app.get_run(parent.result)
                if child.status in FINISHED:
                    break
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await task
    assert parent.status == "SUCCESS" and child.status == "SUCCESS"
    # correlation and tenant ride along: request -> run -> child run
    assert parent.correlation_id == child.correlation_id == "req-abc.123"
    assert parent.tenant_id == child.tenant_id == "7"
    assert parent.trace_context["traceparent"].startswith("00-")

    found = exporter.get_finished_spans()
    server = by_name(found, "POST /reports")
    job = by_name(found, "build-report")
    child_span = by_name(found, "render-page")
    assert server.kind == SpanKind.SERVER
    assert job.kind == child_span.kind == SpanKind.CONSUMER
    trace_ids = {s.context.trace_id for s in (server, job, child_span)}
    assert len(trace_ids) == 1
    assert job.parent is not None and job.parent.span_id == server.context.span_id
    assert child_span.parent is not None and child_span.parent.span_id == job.context.span_id
    assert dict(job.attributes or {}) == {
        "job.name": "build-report",
        "job.run_id": parent.id,
        "job.attempt": 1,
        "job.queue": "default",
        "job.trigger": "API",
        "job.correlation_id": "req-abc.123",
        "job.tenant_id": "7",
    }
    assert job.status.status_code == StatusCode.OK
    assert (child_span.attributes or {})["job.run_id"] == child.id


async def test_failure_sets_error_status_and_exception_event(
    worker_app: JobGlass, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    with provider.get_tracer("test").start_as_current_span("caller"):
        run = await worker_app.run_job("broken", correlation_id="cid-1")
    assert run.status == "FAILED"
    found = exporter.get_finished_spans()
    span = by_name(found, "broken")
    caller = by_name(found, "caller")
    assert span.parent is not None and span.parent.span_id == caller.context.span_id
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "InventoryMismatch: expected 3 got 2"
    assert (span.attributes or {})["job.error_type"] == "InventoryMismatch"
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert str((events[0].attributes or {})["exception.type"]).endswith("InventoryMismatch")
    assert (events[0].attributes or {})["exception.message"] == "expected 3 got 2"


async def test_a_run_enqueued_outside_a_trace_starts_its_own(
    worker_app: JobGlass, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    first = await worker_app.run_job("render-page", {"page": 1})
    with provider.get_tracer("test").start_as_current_span("unrelated"):
        pass
    second = await worker_app.run_job("render-page", {"page": 2})
    assert first.trace_context == {} and second.trace_context == {}
    spans_ = [s for s in exporter.get_finished_spans() if s.name == "render-page"]
    assert len(spans_) == 2
    assert all(s.parent is None for s in spans_)
    assert spans_[0].context.trace_id != spans_[1].context.trace_id


def test_setup_is_idempotent_and_placed_inside_the_context_middleware(tmp_path: Path) -> None:
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")
    first = setup_tracing(app)
    second = setup_tracing(app)
    assert isinstance(second, TracingMiddleware) and first is not second
    chain = app.middleware
    assert chain.count(second) == 1 and first not in chain
    assert chain.index(run_context_middleware) + 1 == chain.index(second)
    assert chain.index(second) < chain.index(logging_middleware)
    assert observe_context.trace_context_provider.count(tracing.inject_trace_context) == 1


def test_no_op_without_opentelemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "otel_available", lambda: False)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "jobs")
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")
    before = list(app.middleware)
    assert setup_tracing(app) is None
    assert app.middleware == before
    assert not any(isinstance(m, TracingMiddleware) for m in before)
    assert tracing.inject_trace_context not in observe_context.trace_context_provider


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "jobs"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_SERVICE_NAME": "jobs", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_enabled_from_otel_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name in ("OTEL_SERVICE_NAME", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")
    assert any(isinstance(m, TracingMiddleware) for m in app.middleware) is enabled
    assert (tracing_from_env(app) is not None) is enabled
