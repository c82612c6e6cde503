"""Runs one attempt of one run: context, handler, timeout, cancellation, finalization."""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .context import JobContext
from .errors import FatalError, JobCancelled, JobTimeout, LeaseLost, TransientError
from .feedback import JobLogger
from .jobs import BaseJob, JobDefinition, retry_delay
from .models import Run, RunStatus, iso
from .observe.context import bind_run, run_context_middleware
from .stores.base import Finish
from .watchdog import watchdog

if TYPE_CHECKING:
    from .app import JobGlass

#: Wraps the handler call; cross-cutting features (metrics, tracing, logging context).
AttemptMiddleware = Callable[[JobContext, Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass
class AttemptResult:
    finish: Finish
    run: Run
    error: BaseException | None


def error_info(err: BaseException, attempt: int) -> dict[str, Any]:
    return {
        "type": type(err).__name__,
        "message": str(err) or type(err).__name__,
        "traceback": "".join(traceback.format_exception(err)),
        "attempt": attempt,
        "at": iso(datetime.now(UTC)),
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


async def _awaiting(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class AttemptRunner:
    """Executes attempts for run_job and the worker alike."""

    def __init__(self, app: JobGlass, executor: Executor | None) -> None:
        self.app = app
        self.executor = executor

    def make_context(self, run: Run, logger: JobLogger) -> JobContext:
        return JobContext(
            run_id=run.id,
            job_name=run.job_name,
            log=logger,
            attempt=run.attempt,
            max_attempts=run.max_attempts,
            params=dict(run.params),
            queue=run.queue,
            trigger=run.trigger,
            scope=run.scope,
            algorithm_version=run.algorithm_version,
            correlation_id=run.correlation_id,
            tenant_id=run.tenant_id,
            user_id=run.user_id,
            job_id=run.job_id,
            fire_time=run.fire_time,
            next_fire_time=run.next_fire_time,
            app=self.app,
            trace_context=dict(run.trace_context),
        )

    async def run_attempt(
        self, definition: JobDefinition, run: Run, ctx: JobContext
    ) -> AttemptResult:
        """Call the handler and decide the attempt's end. Never raises for a job's error."""
        logger = ctx.log
        started = time.monotonic()
        error: BaseException | None = None
        result: Any = None
        try:
            result = await self._call(definition, run, ctx)
        except BaseException as err:
            error = err
            if isinstance(err, asyncio.CancelledError) and not ctx.cancelled:
                raise  # the process itself is being torn down
        duration_ms = int((time.monotonic() - started) * 1000)
        status, retry_at, info = self._decide(definition, run, ctx, error)
        if info is not None:
            logger.error(
                f"Attempt {run.attempt} failed: {info['type']}: {info['message']}",
                {"errorType": info["type"], "attempt": run.attempt},
            )
        verb = {
            RunStatus.SUCCESS: "Completed in",
            RunStatus.CANCELLED: "Cancelled after",
        }.get(status, "Failed after")
        if status == RunStatus.RETRYING:
            verb = "Attempt failed after"
        logger.log_summary(verb)
        finish = Finish(
            run_id=run.id,
            attempt=run.attempt,
            status=status,
            result=_jsonable(result) if status == RunStatus.SUCCESS else None,
            error=info,
            retry_at=retry_at,
            duration_ms=duration_ms,
        )
        return AttemptResult(finish, run, error)

    async def _call(self, definition: JobDefinition, run: Run, ctx: JobContext) -> Any:
        handler = definition.func
        params = dict(run.params)
        if isinstance(handler, type) and issubclass(handler, BaseJob):
            instance = handler()
            call: Callable[..., Any] = instance.execute
        else:
            call = handler

        async def in_thread() -> Any:
            loop = asyncio.get_running_loop()
            cvars = contextvars.copy_context()
            return await loop.run_in_executor(self.executor, lambda: cvars.run(call, ctx, **params))

        # each layer's `call_next` makes the next layer's coroutine itself (a `partial`), not
        # a wrapper coroutine around it: two frames fewer per middleware, one per attempt
        nxt: Callable[[], Awaitable[Any]] = (
            partial(call, ctx, **params) if definition.is_async else in_thread
        )
        # the attempt's task runs in a context of its own; with `run_context_middleware`
        # outermost, the run's ids are bound in it at once instead of by a layer around the
        # rest (a coroutine frame and four resets fewer a run; the context ends with the task)
        middleware = self.app.middleware
        context = contextvars.copy_context()
        outermost = 0
        if middleware and middleware[0] is run_context_middleware:
            context.run(bind_run, ctx)
            outermost = 1
        for i in range(len(middleware) - 1, outermost - 1, -1):
            nxt = partial(middleware[i], ctx, nxt)
        first = context.run(nxt)  # a middleware that is no coroutine function starts in it too
        if type(first) is not CoroutineType:  # another awaitable: a task wants a coroutine
            first = _awaiting(first)
        task = asyncio.get_running_loop().create_task(first, context=context)
        dog = watchdog()
        dog.watch(ctx, task, run.timeout)
        try:
            return await task
        finally:
            dog.forget(task)

    def _decide(
        self, definition: JobDefinition, run: Run, ctx: JobContext, error: BaseException | None
    ) -> tuple[RunStatus, datetime | None, dict[str, Any] | None]:
        if error is None:
            return RunStatus.SUCCESS, None, None
        if isinstance(error, asyncio.CancelledError | JobCancelled):
            if ctx.cancel_reason == "timeout":
                error = JobTimeout(f"timed out after {run.timeout:g}s")
            elif ctx.cancel_reason == "lease lost":
                error = LeaseLost("this worker lost the run's lease")
            elif ctx.cancel_reason == "shutdown":
                info = error_info(JobCancelled("worker shutting down"), run.attempt)
                return RunStatus.RETRYING, datetime.now(UTC), info
            else:
                info = error_info(JobCancelled(ctx.cancel_reason or "cancelled"), run.attempt)
                return RunStatus.CANCELLED, None, info
        info = error_info(error, run.attempt)
        if isinstance(error, FatalError):
            return RunStatus.FAILED, None, info
        limit = run.max_attempts
        if isinstance(error, TransientError):
            limit = max(limit, definition.retry.transient_attempts)
        if run.attempt < limit:
            delay = retry_delay(run.retry, run.attempt, definition.retry)
            return RunStatus.RETRYING, datetime.now(UTC) + timedelta(seconds=delay), info
        return RunStatus.FAILED, None, info
