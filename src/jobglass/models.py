"""Plain data that crosses the store boundary, and the seed's JSON shapes of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

JSON = Any


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in FINISHED


LIVE = frozenset({RunStatus.QUEUED, RunStatus.RETRYING, RunStatus.RUNNING})
FINISHED = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED})


class Trigger(enum.StrEnum):
    MANUAL = "MANUAL"
    API = "API"
    SCHEDULE = "SCHEDULE"


class Scope(enum.StrEnum):
    SYSTEM = "system"
    TENANT = "tenant"
    USER = "user"


LEVELS = ("debug", "info", "milestone", "warning", "error")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, millisecond precision, as the seed's examples."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The stored form of `Retry`: plain numbers, so every process agrees on it."""

    attempts: int = 1
    backoff: str = "exponential"
    delay: float = 1.0
    max_delay: float = 3600.0
    jitter: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "backoff": self.backoff,
            "delay": self.delay,
            "maxDelay": self.max_delay,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RetryPolicy:
        if not data:
            return cls()
        return cls(
            attempts=int(data.get("attempts", 1)),
            backoff=str(data.get("backoff", "exponential")),
            delay=float(data.get("delay", 1.0)),
            max_delay=float(data.get("maxDelay", 3600.0)),
            jitter=float(data.get("jitter", 0.0)),
        )


@dataclass(slots=True)
class Run:
    """One execution record; retries are attempts of the same run."""

    id: int
    job_name: str
    queue: str
    status: RunStatus
    priority: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    max_attempts: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    job_id: str | None = None
    trigger: str = Trigger.API
    scope: str = Scope.SYSTEM
    algorithm_version: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    concurrency_key: str | None = None
    run_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    stage: str | None = None
    progress_current: int = 0
    progress_total: int | None = None
    entity_type: str | None = None
    progress_message: str | None = None
    outcome: dict[str, int | float] = field(default_factory=dict)
    summary: str | None = None
    has_warnings: bool = False
    log_seq: int = 0
    result: JSON = None
    error: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    trace_context: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schedule_name: str | None = None
    fire_time: datetime | None = None
    next_fire_time: datetime | None = None
    keep_completed: int | None = None
    keep_failed: int | None = None

    @property
    def progress_percent(self) -> int | None:
        return _pct(self)

    @property
    def metadata(self) -> dict[str, Any]:
        """`{"params", "progress", "outcome"}`: params wrapped so they never collide."""
        return {
            "params": self.params,
            "progress": {
                "stage": self.stage,
                "current": self.progress_current,
                "total": self.progress_total,
            },
            "outcome": dict(self.outcome),
        }

    def progress_json(self) -> dict[str, Any]:
        """Seed 001 'Get Progress' body (inside `{"progress": ...}`)."""
        return {
            "id": str(self.id),
            "jobName": self.job_name,
            "status": str(self.status),
            "currentStage": self.stage,
            "progressCurrent": self.progress_current,
            "progressTotal": self.progress_total,
            "progressPercent": self.progress_percent,
            "progressMessage": self.progress_message,
            "entitiesProcessed": self.progress_current,
            "entitiesTotal": self.progress_total,
            "startedAt": iso(self.started_at),
        }

    def outcome_json(self) -> dict[str, Any]:
        """Seed 001 'Get Outcome' body (inside `{"outcome": ...}`)."""
        return {
            "id": str(self.id),
            "jobName": self.job_name,
            "status": str(self.status),
            "outcomeSummary": dict(self.outcome),
            "entitiesProcessed": self.progress_current,
            "entitiesTotal": self.progress_total,
            "durationMs": self.duration_ms,
            "finishedAt": iso(self.finished_at),
        }

    def to_json(self) -> dict[str, Any]:
        """The whole run, camelCase, for lists and detail views."""
        return {
            "id": str(self.id),
            "jobName": self.job_name,
            "queue": self.queue,
            "status": str(self.status),
            "priority": self.priority,
            "attempt": self.attempt,
            "maxAttempts": self.max_attempts,
            "jobId": self.job_id,
            "trigger": self.trigger,
            "scope": self.scope,
            "algorithmVersion": self.algorithm_version,
            "correlationId": self.correlation_id,
            "tenantId": self.tenant_id,
            "userId": self.user_id,
            "metadata": self.metadata,
            "currentStage": self.stage,
            "progressCurrent": self.progress_current,
            "progressTotal": self.progress_total,
            "progressPercent": self.progress_percent,
            "progressMessage": self.progress_message,
            "entityType": self.entity_type,
            "outcomeSummary": dict(self.outcome),
            "summary": self.summary,
            "hasWarnings": self.has_warnings,
            "cancelRequested": self.cancel_requested,
            "result": self.result,
            "error": self.error,
            "errors": self.errors,
            "timeout": self.timeout,
            "retry": self.retry.to_json(),
            "runAt": iso(self.run_at),
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "durationMs": self.duration_ms,
            "workerId": self.worker_id,
            "logSeq": self.log_seq,
            "scheduleName": self.schedule_name,
            "fireTime": iso(self.fire_time),
            "nextFireTime": iso(self.next_fire_time),
        }


def _pct(run: Run) -> int | None:
    total = run.progress_total
    if not total or total <= 0:
        return None
    return max(0, min(100, (min(run.progress_current, total) * 100) // total))


class LogLine(NamedTuple):
    """One row of a run's log; `seq` is per run and shared with the live stream.

    The time is kept as epoch seconds (`at`): a log call is cheaper without a datetime, and
    both stores write numbers; `created_at` gives the aware datetime.
    """

    run_id: int
    seq: int
    level: str
    stage: str | None
    message: str
    context: dict[str, Any] | None
    at: float
    attempt: int = 1

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def to_json(self) -> dict[str, Any]:
        """Seed 001 'Get Logs' row."""
        return {
            "id": str(self.seq),
            "seq": self.seq,
            "runId": str(self.run_id),
            "level": self.level,
            "stage": self.stage,
            "message": self.message,
            "context": self.context,
            "attempt": self.attempt,
            "createdAt": iso(self.created_at),
        }
