"""jobglass: background jobs you can see into."""

from __future__ import annotations

from typing import Any

from .app import JobGlass
from .config import Settings
from .context import JobContext
from .cron import CronError, next_fire_times
from .enqueue import EnqueueRequest
from .errors import (
    ConfigError,
    Conflict,
    FatalError,
    InvalidInput,
    JobCancelled,
    JobGlassError,
    JobTimeout,
    NotFound,
    TransientError,
)
from .feedback import JobLogger
from .jobs import BaseJob, JobDefinition, Retry
from .models import LogLine, Run, RunStatus, Scope, Trigger
from .observe.context import (
    current_correlation_id,
    current_run,
    current_tenant_id,
    current_user_id,
)
from .scheduler import Schedule, Scheduler

__version__ = "0.1.0"


def create_job_logger(run_id: int, job_name: str, **options: Any) -> JobLogger:
    """A JobLogger for code outside a handler (seed: `createJobLogger(jobRunId, jobName)`).

    Inside a job, prefer `ctx.log`: it is the same object, already attached to the flusher.
    A logger made here records in memory; attach it with `app.flusher.attach(logger)` to
    persist it as part of a run you own.
    """
    from .observe.context import current_run as _current

    ctx = _current()
    if ctx is not None and ctx.run_id == run_id:
        return ctx.log
    return JobLogger(run_id, job_name, **options)


__all__ = [
    "BaseJob",
    "ConfigError",
    "Conflict",
    "CronError",
    "EnqueueRequest",
    "FatalError",
    "InvalidInput",
    "JobCancelled",
    "JobContext",
    "JobDefinition",
    "JobGlass",
    "JobGlassError",
    "JobLogger",
    "JobTimeout",
    "LogLine",
    "NotFound",
    "Retry",
    "Run",
    "RunStatus",
    "Schedule",
    "Scheduler",
    "Scope",
    "Settings",
    "TransientError",
    "Trigger",
    "__version__",
    "create_job_logger",
    "current_correlation_id",
    "current_run",
    "current_tenant_id",
    "current_user_id",
    "next_fire_times",
]
