"""Unit-test a job without a database or worker.

    from jobglass.testing import run_test_job

    async def test_user_sync():
        result = await run_test_job(user_sync, params={"batch_size": 10})
        assert result.status == "SUCCESS"
        assert result.stages == ["Initializing", "Loading users", "Syncing users", "Finalizing"]
        assert result.outcome["synced"] == 10
        assert result.progress["message"] == "Finalizing"

The handler runs with a real `JobContext` and `JobLogger`; everything it records is kept in
memory on the returned `TestRun`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .context import JobContext
from .errors import FatalError, JobCancelled
from .feedback import JobLogger
from .jobs import BaseJob, JobDefinition
from .models import LEVEL_RANK, LogLine
from .observe.context import bind

__all__ = ["TestRun", "run_test_job", "run_test_job_sync"]


@dataclass
class TestRun:
    """What a job did: status, result or error, its log lines, stages, progress and outcome."""

    __test__ = False  # not a pytest test class

    status: str
    result: Any
    error: BaseException | None
    logs: list[LogLine]
    outcome: dict[str, int | float]
    progress: dict[str, Any]
    summary: str | None
    context: JobContext

    @property
    def stages(self) -> list[str]:
        prefix = "Starting: "
        return [
            line.message[len(prefix) :]
            for line in self.logs
            if line.level == "milestone" and line.message.startswith(prefix)
        ]

    def messages(self, level: str | None = None, *, exact: bool = False) -> list[str]:
        """Messages at `level` and above (or exactly at it with `exact=True`)."""
        if level is None:
            return [line.message for line in self.logs]
        rank = LEVEL_RANK[level]
        return [
            line.message
            for line in self.logs
            if (line.level == level if exact else LEVEL_RANK[line.level] >= rank)
        ]


async def run_test_job(
    job: JobDefinition | Callable[..., Any] | type[BaseJob],
    params: Mapping[str, Any] | None = None,
    *,
    run_id: int = 1,
    attempt: int = 1,
    tenant_id: str | None = None,
    user_id: str | None = None,
    correlation_id: str = "test-correlation-id",
    cancel_after: float | None = None,
) -> TestRun:
    """Run one attempt in memory. Parameters are checked like `enqueue` checks them."""
    if isinstance(job, JobDefinition):
        definition = job
    else:
        name = str(getattr(job, "name", None) or getattr(job, "__name__", "test-job"))
        definition = JobDefinition.build(name, job)
    checked = definition.validate_params(params)
    logger = JobLogger(run_id, definition.name, attempt=attempt)
    ctx = JobContext(
        run_id=run_id,
        job_name=definition.name,
        log=logger,
        attempt=attempt,
        params=checked,
        tenant_id=tenant_id,
        user_id=user_id,
        correlation_id=correlation_id,
        trigger="MANUAL",
    )
    func: Any = definition.func
    target: Callable[..., Any] = (
        func().execute if inspect.isclass(func) and issubclass(func, BaseJob) else func
    )

    async def call() -> Any:
        with bind(correlation_id, tenant_id, user_id, ctx):
            if inspect.iscoroutinefunction(target):
                return await target(ctx, **checked)
            return await asyncio.to_thread(target, ctx, **checked)

    if cancel_after is not None:
        asyncio.get_running_loop().call_later(cancel_after, ctx.request_cancel, "cancel requested")
    result: Any = None
    error: BaseException | None = None
    try:
        result = await call()
        status = "SUCCESS"
    except JobCancelled as err:
        error, status = err, "CANCELLED"
    except FatalError as err:
        error, status = err, "FAILED"
    except Exception as err:
        error, status = err, "FAILED"
    verb = {"SUCCESS": "Completed in", "CANCELLED": "Cancelled after"}.get(status, "Failed after")
    summary = logger.log_summary(verb)
    batch = logger.drain()
    logs = batch.logs if batch else []
    return TestRun(
        status=status,
        result=result,
        error=error,
        logs=logs,
        outcome=logger.outcome(),
        progress=logger.progress_snapshot(),
        summary=summary,
        context=ctx,
    )


def run_test_job_sync(
    job: JobDefinition | Callable[..., Any] | type[BaseJob],
    params: Mapping[str, Any] | None = None,
    **options: Any,
) -> TestRun:
    """`run_test_job` for plain (non-async) tests."""
    return asyncio.run(run_test_job(job, params, **options))
