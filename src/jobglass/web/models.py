"""Pydantic shapes of the admin API: request bodies and the (seed-exact) responses.

Responses are built by the core models' `to_json()` methods; these classes only document
and check them. Progress, outcome and log rows are exactly seed 001's keys (extra keys are
dropped); other shapes allow extra keys, so a field added in the core still comes through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..enqueue import id_problem, run_at_problem
from ..models import LEVELS, RunStatus

JSONObject = dict[str, Any]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Exact(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(BaseModel):
    status: int = Field(description="the HTTP status")
    message: str = Field(description="what went wrong, naming the field when there is one")


class ErrorResponse(BaseModel):
    error: ErrorBody


class RetryModel(_Open):
    attempts: int
    backoff: str
    delay: float
    maxDelay: float
    jitter: float


class ProgressMeta(_Open):
    stage: str | None
    current: int
    total: int | None


class Metadata(_Open):
    params: JSONObject
    progress: ProgressMeta
    outcome: dict[str, int | float]


class RunModel(_Open):
    id: str
    jobName: str
    queue: str
    status: RunStatus
    priority: int
    attempt: int
    maxAttempts: int
    jobId: str | None
    trigger: str
    scope: str
    algorithmVersion: str | None
    correlationId: str | None
    tenantId: str | None
    userId: str | None
    metadata: Metadata
    currentStage: str | None
    progressCurrent: int
    progressTotal: int | None
    progressPercent: int | None
    progressMessage: str | None
    entityType: str | None
    outcomeSummary: dict[str, int | float]
    summary: str | None
    hasWarnings: bool
    cancelRequested: bool
    result: Any = None
    error: JSONObject | None
    errors: list[JSONObject]
    timeout: float | None
    retry: RetryModel
    runAt: str | None
    createdAt: str | None
    startedAt: str | None
    finishedAt: str | None
    durationMs: int | None
    workerId: str | None
    logSeq: int
    scheduleName: str | None
    fireTime: str | None
    nextFireTime: str | None


class RunResponse(BaseModel):
    run: RunModel


class RunList(BaseModel):
    runs: list[RunModel]
    nextCursor: str | None = Field(description="pass as `cursor` for the next (older) page")


class LogModel(_Exact):
    """Seed 001 'Get Logs' row; `id` is the run's log sequence number."""

    id: str
    level: str
    stage: str | None
    message: str
    context: JSONObject | None
    createdAt: str | None


class LogList(BaseModel):
    logs: list[LogModel]


class ProgressModel(_Exact):
    id: str
    jobName: str
    status: RunStatus
    currentStage: str | None
    progressCurrent: int
    progressTotal: int | None
    progressPercent: int | None
    progressMessage: str | None
    entitiesProcessed: int
    entitiesTotal: int | None
    startedAt: str | None


class ProgressResponse(BaseModel):
    progress: ProgressModel


class OutcomeModel(_Exact):
    id: str
    jobName: str
    status: RunStatus
    outcomeSummary: dict[str, int | float]
    entitiesProcessed: int
    entitiesTotal: int | None
    durationMs: int | None
    finishedAt: str | None


class OutcomeResponse(BaseModel):
    outcome: OutcomeModel


class QueueStatsModel(_Open):
    waiting: int
    delayed: int
    active: int
    retrying: int
    completed: int
    failed: int
    cancelled: int
    oldestWaitingAgeSeconds: float | None


class QueuesResponse(BaseModel):
    queues: dict[str, QueueStatsModel]


class ThroughputBucketModel(_Exact):
    queue: str
    minute: str = Field(description="the minute's start, ISO-8601 UTC")
    completed: int = Field(description="runs that ended SUCCESS in this minute")
    failed: int = Field(description="runs that ended FAILED in this minute")


class ThroughputResponse(BaseModel):
    since: str = Field(description="start of the first minute counted (ISO-8601 UTC)")
    minutes: int
    buckets: list[ThroughputBucketModel] = Field(
        description="non-empty minutes only, by queue then minute"
    )


class WorkerModel(_Open):
    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    startedAt: str | None
    heartbeatAt: str | None
    running: int


class WorkersResponse(BaseModel):
    workers: list[WorkerModel]


class ParamModel(_Open):
    name: str
    required: bool
    type: str | None = None
    default: Any = None


class JobModel(_Open):
    name: str
    description: str | None
    queue: str
    priority: int
    retry: RetryModel
    timeout: float | None
    allowConcurrent: bool
    schedule: str | None
    params: list[ParamModel]
    acceptsAnyParams: bool
    sync: bool


class RegistryResponse(BaseModel):
    jobs: list[JobModel]


class SchedulesResponse(BaseModel):
    schedules: list[Any]


class ScheduleAction(_Open):
    schedule: Any = None
    run: RunModel | None = None


class IdentityModel(BaseModel):
    subject: str
    role: str
    method: str


class MeResponse(BaseModel):
    identity: IdentityModel


class EnqueueBody(BaseModel):
    """`POST /api/admin/jobs`: params are stored wrapped, as `metadata.params`."""

    model_config = ConfigDict(extra="forbid")

    jobName: str = Field(min_length=1, max_length=128)
    params: JSONObject | None = Field(None, description="the job's parameters (a JSON object)")
    queue: str | None = Field(None, min_length=1, max_length=64)
    priority: int | None = Field(None, ge=-1000, le=1000, description="higher runs first")
    delay: float | None = Field(
        None, ge=0, le=10 * 365 * 86400, allow_inf_nan=False, description="seconds"
    )
    runAt: datetime | None = Field(
        None,
        description="ISO-8601 with a time zone, from 2000-01-01T00:00:00Z to ten years ahead",
    )
    jobId: str | None = Field(
        None, min_length=1, max_length=255, description="dedupe key: a live run with it is returned"
    )
    correlationId: str | None = Field(None, min_length=1, max_length=128)
    tenantId: str | int | None = Field(
        None, description="a string, or an integer within signed 64 bits"
    )
    userId: str | int | None = Field(
        None, description="a string, or an integer within signed 64 bits"
    )
    timeout: float | None = Field(None, gt=0, le=10 * 365 * 86400, allow_inf_nan=False)

    @field_validator("tenantId", "userId")
    @classmethod
    def _short_id(cls, value: str | int | None) -> str | int | None:
        problem = id_problem(value)  # the shared enqueue check, named by the body's field
        if problem:
            raise ValueError(problem)
        if value is not None and len(str(value)) > 128:
            raise ValueError("at most 128 characters")
        return value

    @field_validator("runAt")
    @classmethod
    def _run_at_bounds(cls, value: datetime | None) -> datetime | None:
        # a zone-less time is refused by the shared enqueue check ("must carry a time zone")
        if value is not None and value.tzinfo is not None:
            problem = run_at_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _clean_text(self) -> EnqueueBody:
        for name, value in self.__dict__.items():
            check_text(value, name)
        return self


def check_text(value: Any, where: str, depth: int = 0) -> None:
    """Refuse NUL characters and unpaired surrogates anywhere in a JSON value (neither can be
    stored: PostgreSQL refuses NUL in text and JSON, and no database stores broken UTF-16)."""
    if depth > 64:
        raise ValueError(f"{where}: nested more than 64 levels deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: NUL characters are not allowed")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: unpaired surrogate characters are not allowed") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where, depth + 1)
            check_text(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_text(item, f"{where}[{index}]", depth + 1)


LOG_LEVELS = LEVELS
