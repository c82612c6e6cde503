"""OpenTelemetry: a span per attempt, continuing the trace that enqueued the run.

`setup_tracing(app)` installs two things:

- a trace-context provider: every enqueue stores the current span context (W3C
  `traceparent`, plus `tracestate`/baggage per `OTEL_PROPAGATORS`) on the run;
- `TracingMiddleware`: each attempt runs in a span named after the job, whose parent is
  that stored context. Attributes: `job.name`, `job.run_id`, `job.attempt`, `job.queue`,
  `job.correlation_id`, `job.tenant_id` (and `job.trigger`, `job.user_id`); a failure
  sets ERROR status and records the exception as an event.

So an HTTP request's span, the job it enqueues and the jobs that job enqueues are one
trace. Export is whatever the global tracer provider does (configured by your code or
by `opentelemetry-instrument` from the standard `OTEL_*` variables); jobglass never
builds exporters. Without opentelemetry installed everything here is a no-op.

`tracing_from_env(app)` (called by `JobGlass()`) runs `setup_tracing(app)` when
opentelemetry is importable and `OTEL_SERVICE_NAME` or `OTEL_TRACES_EXPORTER` (other than
`none`) is set, unless `OTEL_SDK_DISABLED=true`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import context as observe_context

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from ..app import JobGlass
    from ..context import JobContext

__all__ = [
    "TracingMiddleware",
    "inject_trace_context",
    "otel_available",
    "setup_tracing",
    "tracing_from_env",
]

log = logging.getLogger("jobglass.tracing")
TRACER_NAME = "jobglass"


def otel_available() -> bool:
    return importlib.util.find_spec("opentelemetry") is not None


def inject_trace_context() -> dict[str, str]:
    """The current span context as propagation headers (`traceparent`, ...)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class TracingMiddleware:
    """Attempt middleware: one span per attempt, child of the run's stored trace context."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        from opentelemetry import propagate, trace
        from opentelemetry.context import Context

        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)
        self._extract = propagate.extract
        self._root = Context

    async def __call__(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        stored = ctx.trace_context
        # A run enqueued outside any trace starts its own; never adopt the worker's ambient span.
        parent = self._extract(stored) if stored else self._root()
        attributes: dict[str, str | int] = {
            "job.name": ctx.job_name,
            "job.run_id": ctx.run_id,
            "job.attempt": ctx.attempt,
            "job.queue": ctx.queue,
            "job.trigger": ctx.trigger,
        }
        for key, value in (
            ("job.correlation_id", ctx.correlation_id),
            ("job.tenant_id", ctx.tenant_id),
            ("job.user_id", ctx.user_id),
        ):
            if value is not None:
                attributes[key] = value
        with self.tracer.start_as_current_span(
            ctx.job_name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await call_next()
            except Exception as err:
                error_type = type(err).__name__
                span.set_attribute("job.error_type", error_type)
                span.record_exception(err)
                span.set_status(Status(StatusCode.ERROR, f"{error_type}: {err}"))
                raise
            except BaseException:  # cancelled: by a user, the timeout, or shutdown
                reason = ctx.cancel_reason or "cancelled"
                span.set_attribute("job.cancel_reason", reason)
                if reason == "timeout":
                    span.set_status(Status(StatusCode.ERROR, "JobTimeout: timed out"))
                raise
            span.set_status(Status(StatusCode.OK))
        return result


def setup_tracing(
    app: JobGlass, tracer_provider: TracerProvider | None = None
) -> TracingMiddleware | None:
    """Trace the app's attempts and store trace context at enqueue. Idempotent.

    Returns the middleware, or None when opentelemetry is not installed.
    """
    if not otel_available():
        log.info("opentelemetry is not installed; tracing is off")
        return None
    middleware = TracingMiddleware(tracer_provider)
    from .context import run_context_middleware

    chain = app.middleware
    for i, existing in enumerate(chain):
        if isinstance(existing, TracingMiddleware):
            chain[i] = middleware
            break
    else:
        # inside the context middleware (ids bound), outside logging (start/end lines in the span)
        at = chain.index(run_context_middleware) + 1 if run_context_middleware in chain else 0
        chain.insert(at, middleware)
    if inject_trace_context not in observe_context.trace_context_provider:
        observe_context.trace_context_provider.append(inject_trace_context)
    return middleware


def tracing_from_env(app: JobGlass) -> TracingMiddleware | None:
    """`setup_tracing(app)` when the standard OTEL_* environment asks for traces."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    wanted = bool(env.get("OTEL_SERVICE_NAME", "").strip()) or exporter not in ("", "none")
    if not wanted or not otel_available():
        return None
    return setup_tracing(app)
