"""Context that rides with a run: correlation id, tenant, user, the run itself.

Context variables keep concurrent runs apart in one loop and in worker threads (each sync
job runs in a copy of its run's context). Enqueue reads them, so child jobs inherit.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import JobContext


@dataclass(frozen=True)
class EnqueueContext:
    correlation_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    trace_context: dict[str, str] = field(default_factory=dict)


_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jobglass_correlation_id", default=None
)
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jobglass_tenant_id", default=None
)
_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("jobglass_user_id", default=None)
_run: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "jobglass_run", default=None
)

#: Extra providers (e.g. tracing) that add to what enqueue captures.
trace_context_provider: list[Callable[[], dict[str, str]]] = []


def current_correlation_id() -> str | None:
    return _correlation.get()


def current_tenant_id() -> str | None:
    return _tenant.get()


def current_user_id() -> str | None:
    return _user.get()


def current_run() -> JobContext | None:
    return _run.get()


def current_enqueue_context() -> EnqueueContext:
    trace: dict[str, str] = {}
    for provider in trace_context_provider:
        trace.update(provider())
    return EnqueueContext(_correlation.get(), _tenant.get(), _user.get(), trace)


@contextmanager
def bind(
    correlation_id: str | None = None,
    tenant_id: str | None = None,
    user_id: str | None = None,
    run: JobContext | None = None,
) -> Iterator[None]:
    """Set the context for a block (a request, a run); restored on exit."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    pairs: tuple[tuple[contextvars.ContextVar[Any], Any], ...] = (
        (_correlation, correlation_id),
        (_tenant, tenant_id),
        (_user, user_id),
        (_run, run),
    )
    for var, value in pairs:
        if value is not None:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def cleared(*, tenant: bool = False, user: bool = False) -> Iterator[None]:
    """Hide the ambient tenant and/or user for a block (system and tenant jobs)."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    for var, clear in ((_tenant, tenant), (_user, user)):
        if clear:
            tokens.append((var, var.set(None)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_run(ctx: JobContext) -> None:
    """What `run_context_middleware` binds, for good: for a context that ends with the
    attempt (the runner's attempt task runs in one when this middleware is outermost)."""
    if ctx.correlation_id is not None:
        _correlation.set(ctx.correlation_id)
    if ctx.tenant_id is not None:
        _tenant.set(ctx.tenant_id)
    if ctx.user_id is not None:
        _user.set(ctx.user_id)
    _run.set(ctx)


async def run_context_middleware(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
    """Default attempt middleware: the run's ids become the ambient context.

    `bind(ctx.correlation_id, ctx.tenant_id, ctx.user_id, ctx)`, spelled out: this runs
    around every attempt, and the context manager machinery cost more than the sets.
    """
    correlation_id, tenant_id, user_id = ctx.correlation_id, ctx.tenant_id, ctx.user_id
    correlation = _correlation.set(correlation_id) if correlation_id is not None else None
    tenant = _tenant.set(tenant_id) if tenant_id is not None else None
    user = _user.set(user_id) if user_id is not None else None
    run = _run.set(ctx)
    try:
        return await call_next()
    finally:
        _run.reset(run)
        if user is not None:
            _user.reset(user)
        if tenant is not None:
            _tenant.reset(tenant)
        if correlation is not None:
            _correlation.reset(correlation)
