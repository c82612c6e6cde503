"""The only door to the database: a narrow async interface named after domain actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..models import LogLine, RetryPolicy, Run, RunStatus
from .applog_types import AppLogFilter, AppLogRecord

if TYPE_CHECKING:  # scheduler.py imports this module: its types are for annotations only
    from ..scheduler import ClaimedFire, FireBatch, FireRecord, LiveRun, Schedule, ScheduleSync


@dataclass(slots=True)
class NewRun:
    """A run to create (enqueue or in-process run_job)."""

    job_name: str
    queue: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    run_at: datetime | None = None  # None: now
    job_id: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    trigger: str = "API"
    scope: str = "system"
    algorithm_version: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    concurrency_key: str | None = None
    trace_context: dict[str, str] = field(default_factory=dict)
    keep_completed: int | None = None
    keep_failed: int | None = None
    schedule_name: str | None = None
    fire_time: datetime | None = None
    next_fire_time: datetime | None = None
    # in-process runs start RUNNING, owned by `worker_id`, attempt 1
    start_running: bool = False
    worker_id: str | None = None
    lease_seconds: float = 30.0


#: The `runs` columns a new run's insert fills, both backends (the others keep their
#: defaults): SQLite's `insert_run` and batch inserts, PostgreSQL's `COPY` (`COPY_COLUMNS`).
NEW_RUN_COLUMNS = (
    "job_name",
    "queue",
    "status",
    "priority",
    "run_at",
    "job_id",
    "params",
    "attempt",
    "max_attempts",
    "retry",
    "timeout",
    "trigger",
    "scope",
    "algorithm_version",
    "correlation_id",
    "tenant_id",
    "user_id",
    "concurrency_key",
    "trace_context",
    "created_at",
    "started_at",
    "lease_expires_at",
    "worker_id",
    "schedule_name",
    "fire_time",
    "next_fire_time",
    "keep_completed",
    "keep_failed",
)


class Created:
    """One item of `create_runs`: its run, and `created` False when an existing live run
    with the same job_id was returned instead.

    A big batch's runs are made on first read of `run` (`Created.later`): callers of
    `enqueue_many` often read none or a few, and a `Run` costs about 9 us, as much as the rest
    of the client's work for a row of a COPY batch. `run_id` is known either way.
    """

    __slots__ = ("_make", "_run", "created", "run_id")

    def __init__(self, run: Run, created: bool) -> None:
        self._run: Run | None = run
        self._make: Callable[[], Run] | None = None
        self.run_id: int = run.id
        self.created: bool = created

    @classmethod
    def later(cls, run_id: int, make: Callable[[], Run]) -> Created:
        """A created run whose `Run` is made by `make` when first read."""
        self = cls.__new__(cls)
        self._run, self._make, self.run_id, self.created = None, make, run_id, True
        return self

    @property
    def run(self) -> Run:
        run = self._run
        if run is None:
            assert self._make is not None
            run = self._run = self._make()
            self._make = None
        return run

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Created):
            return NotImplemented
        return (self.run, self.created) == (other.run, other.created)

    __hash__ = None  # type: ignore[assignment]  # equal by value, mutable like Run

    def __repr__(self) -> str:
        return f"Created(run={self.run!r}, created={self.created!r})"


@dataclass(slots=True)
class ClaimParams:
    worker_id: str
    queues: Sequence[str]
    limit: int
    lease_seconds: float


@dataclass(slots=True)
class Feedback:
    """One flush of a JobLogger: new log rows plus the latest progress and outcome."""

    run_id: int
    attempt: int
    logs: list[LogLine]
    stage: str | None
    progress_current: int
    progress_total: int | None
    entity_type: str | None
    progress_message: str | None
    outcome: dict[str, int | float]
    has_warnings: bool
    summary: str | None = None


@dataclass(slots=True)
class Finish:
    """End of an attempt: final status, or RETRYING with the next run time."""

    run_id: int
    attempt: int
    status: RunStatus
    result: Any = None
    error: dict[str, Any] | None = None
    retry_at: datetime | None = None
    duration_ms: int | None = None


@dataclass(slots=True)
class RunFilter:
    status: Sequence[str] = ()
    job_name: str | None = None
    queue: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    text: str | None = None
    before_id: int | None = None  # cursor: runs with a smaller id (newest first)
    limit: int = 50


@dataclass(slots=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    running: int = 0

    def to_json(self) -> dict[str, Any]:
        from ..models import iso

        return {
            "id": self.id,
            "hostname": self.hostname,
            "pid": self.pid,
            "queues": self.queues,
            "concurrency": self.concurrency,
            "startedAt": iso(self.started_at),
            "heartbeatAt": iso(self.heartbeat_at),
            "running": self.running,
        }


@dataclass(frozen=True, slots=True)
class ThroughputBucket:
    """Runs of one queue that finished in one minute (`minute`: its start, UTC), by outcome."""

    queue: str
    minute: datetime
    completed: int
    failed: int

    def to_json(self) -> dict[str, Any]:
        from ..models import iso

        return {
            "queue": self.queue,
            "minute": iso(self.minute),
            "completed": self.completed,
            "failed": self.failed,
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a heartbeat learns: runs to cancel, and runs this worker no longer owns."""

    cancel_requested: frozenset[int]
    lost: frozenset[int]


@dataclass(frozen=True, slots=True)
class Event:
    """A change other processes must see: run status, progress, outcome, new log rows."""

    id: int
    run_id: int
    kind: str
    log_from: int
    log_to: int
    created_at: datetime


@dataclass(slots=True)
class Retention:
    keep_completed: int | None = None
    keep_failed: int | None = None
    max_age_days: float | None = None


Notify = Callable[[str, str], Awaitable[None] | None]


class Store(Protocol):
    """Everything jobglass stores. Implementations: SQLite and PostgreSQL."""

    url: str
    #: True when other processes' changes arrive by notification (PG); False: poll `events_after`.
    pushes_events: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self) -> int: ...
    async def schema_version(self) -> int: ...

    async def create_runs(self, runs: Sequence[NewRun], *, conn: Any = None) -> list[Created]: ...
    async def claim_runs(self, params: ClaimParams) -> list[Run]: ...
    async def write_feedback(self, batches: Sequence[Feedback]) -> list[bool]: ...
    async def finish_runs(
        self, finishes: Sequence[Finish], feedback: Sequence[Feedback] = ()
    ) -> list[bool]:
        """Fenced ends of attempts; `feedback` (those attempts' last lines and state) is
        written first in the same transaction, fenced the same way."""
        ...

    async def reclaim_expired(self) -> list[Run]: ...

    async def get_run(self, run_id: int) -> Run | None: ...
    async def get_logs(
        self, run_id: int, *, min_level: str | None, limit: int, after: int | None
    ) -> list[LogLine]: ...
    async def list_runs(self, flt: RunFilter) -> list[Run]: ...

    async def request_cancel(self, run_id: int) -> Run | None: ...
    async def requeue(self, run_id: int) -> Run | None: ...
    async def delete_run(self, run_id: int) -> bool: ...

    async def upsert_worker(self, worker: WorkerInfo) -> None: ...
    async def heartbeat(
        self, worker_id: str, runs: Sequence[tuple[int, int]], lease_seconds: float
    ) -> Heartbeat: ...
    async def remove_worker(self, worker_id: str) -> None: ...
    async def list_workers(self, stale_after: float) -> list[WorkerInfo]: ...
    async def queue_stats(self) -> dict[str, dict[str, Any]]: ...
    async def finished_per_minute(self, since: datetime) -> list[ThroughputBucket]:
        """SUCCESS and FAILED runs whose `finished_at` is at or after `since`, counted by queue
        and minute of `finished_at` (non-empty buckets only, by queue then minute)."""
        ...

    async def prune(self, retention: dict[str, Retention], default: Retention) -> int: ...
    async def events_after(self, cursor: int, limit: int = 500) -> list[Event]: ...
    async def last_event_id(self) -> int: ...
    async def listen(self, channel_handler: Notify) -> None: ...

    # -- application and audit logs (jobglass.applog; stores/*_applog.py mixins) -----------------
    async def write_app_logs(self, records: Sequence[AppLogRecord]) -> int: ...
    async def query_app_logs(self, flt: AppLogFilter) -> list[AppLogRecord]: ...
    async def prune_app_logs(
        self, app_before: datetime | None, audit_before: datetime | None, batch: int = 5_000
    ) -> int: ...

    # -- end application and audit logs --------------------------------------------------------

    # -- schedules (jobglass.scheduler; stores/*_schedules.py mixins) ---------------------------
    async def sync_schedules(self, sync: ScheduleSync) -> None: ...
    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]: ...
    async def next_schedule_fire(self) -> datetime | None: ...
    async def claim_schedule_fires(self, batch: FireBatch) -> list[ClaimedFire]: ...
    async def list_schedules(self) -> list[Schedule]: ...
    async def get_schedule(self, name: str) -> Schedule | None: ...
    async def set_schedule_paused(
        self, name: str, paused: bool, next_fire_at: datetime | None, now: datetime
    ) -> Schedule | None: ...
    async def trigger_schedule_run(self, name: str, new: NewRun) -> Run: ...
    async def list_schedule_fires(self, name: str, limit: int = 100) -> list[FireRecord]: ...
    async def live_runs_by_concurrency_key(self, keys: Sequence[str]) -> dict[str, LiveRun]:
        """One live (QUEUED, RETRYING, RUNNING) run per given concurrency key that has any: a
        RUNNING one first, else the oldest (the scheduler's overlap check)."""
        ...

    # -- end schedules ----------------------------------------------------------------------------
