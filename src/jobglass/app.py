"""JobGlass: the one object that wires jobs, settings, store, flusher, events and hooks."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .applog import AppLogMixin, job_log_middleware
from .config import Settings
from .enqueue import (
    EnqueueRequest,
    build_new_run,
    build_new_runs,
    check_job_defaults,
    request_from_mapping,
)
from .errors import Conflict, InvalidInput, NotFound
from .events import EventBus
from .feedback import JobLogger
from .flusher import FeedbackFlusher
from .jobs import NO_RETRY, BaseJob, JobDefinition
from .models import FINISHED, LEVEL_RANK, LogLine, Run, RunStatus, Scope, Trigger
from .observe.context import cleared, run_context_middleware
from .observe.logging import logging_middleware
from .observe.metrics import AttemptListener, JobMetrics, metrics_listener
from .observe.tracing import tracing_from_env
from .runner import AttemptMiddleware, AttemptResult, AttemptRunner
from .schedule_app import ScheduleAppMixin
from .stores import open_store
from .stores.base import Created, Feedback, Finish, NewRun, Retention, RunFilter, Store

if TYPE_CHECKING:
    from .stores.base import ThroughputBucket

__all__ = ["EnqueueRequest", "JobGlass"]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("jobglass")

HOOK_EVENTS = ("completed", "failed", "retrying", "cancelled")
Hook = Callable[[Run], Awaitable[None] | None]


class JobGlass(AppLogMixin, ScheduleAppMixin):
    """Registry of jobs and the door to runs. Database from JOBGLASS_DATABASE_URL by default."""

    def __init__(self, database_url: str | None = None, **settings: Any) -> None:
        if database_url is not None:
            settings["database_url"] = database_url
        self.settings = Settings.load(settings)
        self.jobs: dict[str, JobDefinition] = {}
        self.events = EventBus()
        # explicit defaults (docs/observability.md); tracing joins via setup_tracing / OTEL_* env
        self.middleware: list[AttemptMiddleware] = [run_context_middleware, logging_middleware]
        self.middleware.append(job_log_middleware)  # seed job-processor lines via app.log
        self.attempt_listeners: list[AttemptListener] = [metrics_listener(self)]
        self._metrics: JobMetrics | None = None
        tracing_from_env(self)
        self.hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_EVENTS}
        self.process_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._store: Store | None = None
        self._flusher: FeedbackFlusher | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._open_lock: asyncio.Lock | None = None
        self._wakeups: list[Callable[[str], None]] = []

    # -- registry -----------------------------------------------------------------------------

    @overload
    def job(self, func: F, /) -> JobDefinition: ...
    @overload
    def job(self, func: None = None, /, **options: Any) -> Callable[[F], JobDefinition]: ...

    def job(self, func: Any = None, /, **options: Any) -> Any:
        """`@app.job(name=..., retry=Retry(...), timeout=..., allow_concurrent=False, ...)`."""

        def register(target: Any) -> JobDefinition:
            return self.register(target, **options)

        return register(func) if func is not None else register

    def register(self, target: Any, *, name: str | None = None, **options: Any) -> JobDefinition:
        if inspect.isclass(target) and issubclass(target, BaseJob):
            name = name or target.name or target.__name__
            options.setdefault("retry", target.retry or NO_RETRY)
            options.setdefault("timeout", target.timeout)
            options.setdefault("queue", target.queue)
            options.setdefault("allow_concurrent", target.allow_concurrent)
            options.setdefault("description", target.description)
        name = name or getattr(target, "__name__", None)
        if not name:
            raise InvalidInput("a job needs a name")
        if name in self.jobs:
            raise InvalidInput(f"job {name!r} is registered twice")
        check_job_defaults(name, options)
        options["retry"] = options.get("retry") or NO_RETRY
        definition = JobDefinition.build(name, target, app=self, **options)
        if definition.schedule:  # refused now, naming the job, not at the first sync
            from .schedule_config import check_decorated_schedule

            check_decorated_schedule(definition)
        self.jobs[name] = definition
        return definition

    def get_job(self, name: str) -> JobDefinition:
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none registered"
            raise NotFound(f"unknown job {name!r} (known jobs: {known})") from None

    def on(self, event: str) -> Callable[[Hook], Hook]:
        """`@app.on("completed" | "failed" | "retrying" | "cancelled")`: called with the run."""
        if event not in self.hooks:
            raise InvalidInput(f"unknown hook event {event!r}; use one of {HOOK_EVENTS}")

        def add(fn: Hook) -> Hook:
            self.hooks[event].append(fn)
            return fn

        return add

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the app is not open: use `async with app:` or `await app.open()`")
        return self._store

    async def open(self) -> JobGlass:
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._store is None:
                store = open_store(self.settings)
                await store.open()
                await store.migrate()
                self._store = store
                self._flusher = FeedbackFlusher(
                    store.write_feedback, self._publish_feedback, self.settings.flush_interval
                )
        return self

    async def close(self) -> None:
        # app.log records, while the store is still open; in a task of its own (its own copy
        # of the caller's context): awaited inline from a test fixture's teardown, this write
        # hung now and then (a 120 s CI timeout, about 1 in 3 runs of test_runs.py on PG)
        await asyncio.create_task(self._close_app_logs(), name="jobglass-close-app-log")
        if self._flusher is not None:
            await self._flusher.close()
            self._flusher = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> JobGlass:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _ready(self) -> Store:
        if self._store is None:
            await self.open()
        return self.store

    @property
    def flusher(self) -> FeedbackFlusher:
        assert self._flusher is not None, "app not open"
        return self._flusher

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max(4, self.settings.concurrency), thread_name_prefix="jobglass-job"
            )
        return self._executor

    # -- enqueue --------------------------------------------------------------------------------

    async def enqueue(
        self,
        job_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        conn: Any = None,
        **options: Any,
    ) -> Run:
        """Queue a run; with `job_id`, a live run with that id is returned instead."""
        created = await self.enqueue_many([EnqueueRequest(job_name, params, **options)], conn=conn)
        return created[0].run

    async def enqueue_many(
        self, requests: Iterable[EnqueueRequest | Mapping[str, Any]], *, conn: Any = None
    ) -> list[Created]:
        """Validate all, then write the whole batch in one round trip."""
        items = [r if isinstance(r, EnqueueRequest) else request_from_mapping(r) for r in requests]
        news = build_new_runs(items, self.get_job)
        store = await self._ready()
        created = await store.create_runs(news, conn=conn)
        if conn is not None:
            # the caller's transaction may still roll back: its NOTIFY, sent on commit, wakes
            # the workers and reaches every stream (this process's listeners too)
            return created
        fresh = [(c.run_id, new) for c, new in zip(created, news, strict=True) if c.created]
        for queue in dict.fromkeys(new.queue for _, new in fresh):
            self._wake_local(queue)
        if self.events.subscriber_count:
            self.events.publish_many(
                [
                    {
                        "type": "run",
                        "runId": str(run_id),
                        "status": str(RunStatus.QUEUED),
                        "jobName": new.job_name,
                        "queue": new.queue,
                        "tenantId": new.tenant_id,
                    }
                    for run_id, new in fresh
                ]
            )
        return created

    def enqueue_sync(
        self, job_name: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Run:
        """For sync code outside any event loop (scripts, WSGI views)."""
        run: Run = _run_sync(self._oneshot(lambda: self.enqueue(job_name, params, **options)))
        return run

    async def _oneshot(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """For the sync twins: open for this call only (each asyncio.run is a new loop)."""
        if self._store is not None:
            raise RuntimeError("the app is open in an event loop: await the async method")
        async with self:
            return await call()

    async def enqueue_system(
        self, job_name: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Run:
        """Seed ScheduleSystemJobAsync: no tenant or user, even inside a tenant's request."""
        options.setdefault("scope", Scope.SYSTEM)
        with cleared(tenant=True, user=True):
            return await self.enqueue(job_name, params, **options)

    async def enqueue_tenant(
        self,
        tenant_id: str | int,
        job_name: str,
        params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Run:
        """Seed ScheduleTenantJobAsync: the tenant's job, not the calling user's (unless given)."""
        options.setdefault("scope", Scope.TENANT)
        with cleared(user=True):
            return await self.enqueue(job_name, params, tenant_id=tenant_id, **options)

    def _new_run(self, req: EnqueueRequest) -> NewRun:
        return build_new_run(self.get_job(req.job_name), req)

    def add_wakeup(self, callback: Callable[[str], None]) -> None:
        """In-process wake-up for workers sharing this app (SQLite has no NOTIFY)."""
        self._wakeups.append(callback)

    def _wake_local(self, queue: str) -> None:
        for callback in list(self._wakeups):
            callback(queue)

    # -- in-process runs --------------------------------------------------------------------------

    async def run_job(
        self,
        job_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: str = Trigger.MANUAL,
        scope: str = Scope.SYSTEM,
        algorithm_version: str | None = "v1",
        correlation_id: str | None = None,
        tenant_id: str | int | None = None,
        user_id: str | int | None = None,
        timeout: float | None = None,
        echo: Callable[[LogLine], None] | None = None,
    ) -> Run:
        """Create a tracked run and execute it now in this process (one attempt, no queue)."""
        req = EnqueueRequest(
            job_name,
            params,
            trigger=trigger,
            scope=scope,
            algorithm_version=algorithm_version,
            correlation_id=correlation_id,
            tenant_id=tenant_id,
            user_id=user_id,
            timeout=timeout,
            retry=NO_RETRY,
        )
        new = self._new_run(req)
        new.start_running = True
        new.worker_id = self.process_id
        new.lease_seconds = self.settings.lease_seconds
        store = await self._ready()
        run = (await store.create_runs([new]))[0].run
        self.events.publish(
            {
                "type": "run",
                "runId": str(run.id),
                "status": str(run.status),
                "jobName": run.job_name,
                "queue": run.queue,
            }
        )
        result = await self.execute(run, echo=echo, lease_keeper=True)
        final = await store.get_run(run.id)
        assert final is not None
        await self._call_hooks(result.finish.status, final)
        return final

    def run_job_sync(
        self, job_name: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Run:
        run: Run = _run_sync(self._oneshot(lambda: self.run_job(job_name, params, **options)))
        return run

    async def execute(
        self,
        run: Run,
        *,
        echo: Callable[[LogLine], None] | None = None,
        lease_keeper: bool = False,
        ctx_hook: Callable[[Any], None] | None = None,
        finish: Callable[[Finish, JobLogger], Awaitable[bool]] | None = None,
    ) -> AttemptResult:
        """Run one claimed attempt end to end: logger, handler, flush, finish."""
        definition = self.get_job(run.job_name)
        logger = JobLogger(
            run.id,
            run.job_name,
            attempt=run.attempt,
            start_seq=run.log_seq,
            max_log_lines=self.settings.max_log_lines,
            sensitive_keys=self.settings.sensitive_keys,
            echo=echo,
        )
        self.flusher.attach(logger)
        runner = AttemptRunner(self, self.executor)
        ctx = runner.make_context(run, logger)
        if ctx_hook is not None:
            ctx_hook(ctx)
        keeper = asyncio.ensure_future(self._keep_lease(run, ctx)) if lease_keeper else None
        try:
            result = await runner.run_attempt(definition, run, ctx)
        except BaseException:
            await self.flusher.detach(logger)
            raise
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        # the writer flushes the logger's last lines, then stores the end of the attempt
        writer = finish or self._finish_one
        if await writer(result.finish, logger):
            self.attempt_ended(run, result.finish, logger)
        return result

    def attempt_ended(self, run: Run, finish: Finish, logger: JobLogger | None) -> None:
        """Tell the attempt listeners (metrics) of a stored end; `logger` is None for an
        attempt whose worker died (its lease expired)."""
        for listener in self.attempt_listeners:
            try:
                listener(run, finish, logger)
            except Exception:
                log.exception("attempt listener %r failed for run %s", listener, run.id)

    @property
    def metrics(self) -> JobMetrics:
        """This app's Prometheus metrics and registry (created on first use)."""
        if self._metrics is None:
            self._metrics = JobMetrics(self)
        return self._metrics

    async def _finish_one(self, fin: Finish, logger: JobLogger) -> bool:
        await self.flusher.detach(logger)
        if logger.lost:
            return False
        ok = (await self.store.finish_runs([fin]))[0]
        if ok:
            self.publish_status(fin.run_id, fin.status)
        return ok

    def publish_status(self, run_id: int, status: str, cancel_requested: bool = False) -> None:
        self.events.publish(
            {
                "type": "status",
                "runId": str(run_id),
                "status": str(status),
                "cancelRequested": cancel_requested,
            }
        )

    async def _keep_lease(self, run: Run, ctx: Any) -> None:
        interval = max(0.2, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(min(interval, 1.0))
            beat = await self.store.heartbeat(
                self.process_id, [(run.id, run.attempt)], self.settings.lease_seconds
            )
            if run.id in beat.cancel_requested:
                ctx.request_cancel("cancel requested")
            if run.id in beat.lost:
                ctx.log.lost = True

    async def _call_hooks(self, status: str, run: Run) -> None:
        name = {
            "SUCCESS": "completed",
            "FAILED": "failed",
            "RETRYING": "retrying",
            "CANCELLED": "cancelled",
        }.get(str(status))
        for hook in self.hooks.get(name or "", []):
            try:
                out = hook(run)
                if inspect.isawaitable(out):
                    await out
            except Exception:
                log.exception("hook %s failed for run %s", name, run.id)

    def _publish_feedback(self, batches: Sequence[Feedback]) -> None:
        if not self.events.subscriber_count:
            return  # nobody in this process is watching: skip building the events
        events = []
        for fb in batches:
            events.append(
                {
                    "type": "feedback",
                    "runId": str(fb.run_id),
                    "stage": fb.stage,
                    "progressCurrent": fb.progress_current,
                    "progressTotal": fb.progress_total,
                    "progressMessage": fb.progress_message,
                    "outcome": fb.outcome,
                    "hasWarnings": fb.has_warnings,
                    "summary": fb.summary,
                    "logs": [line.to_json() for line in fb.logs],
                }
            )
        self.events.publish_many(events)

    # -- reading -----------------------------------------------------------------------------------

    async def get_run(self, run_id: int | str) -> Run:
        run = await (await self._ready()).get_run(_run_id(run_id))
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        return run

    async def get_logs(
        self,
        run_id: int | str,
        level: str | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[LogLine]:
        """Log lines of a run; `level` is a threshold (warning = warning and error)."""
        if level is not None and level not in LEVEL_RANK:
            raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(LEVEL_RANK)}")
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be an integer from 1 to 10000")
        if after is not None and (not isinstance(after, int) or after < 0):
            raise InvalidInput("after must be a sequence number >= 0")
        run = await self.get_run(run_id)
        return await self.store.get_logs(run.id, min_level=level, limit=limit, after=after)

    async def get_progress(self, run_id: int | str) -> dict[str, Any]:
        return {"progress": (await self.get_run(run_id)).progress_json()}

    async def get_outcome(self, run_id: int | str) -> dict[str, Any]:
        return {"outcome": (await self.get_run(run_id)).outcome_json()}

    async def list_runs(self, **filters: Any) -> list[Run]:
        flt = RunFilter(**filters)
        for status in flt.status:
            if status not in {s.value for s in RunStatus}:
                raise InvalidInput(f"unknown status {status!r}")
        return await (await self._ready()).list_runs(flt)

    async def queue_stats(self) -> dict[str, dict[str, Any]]:
        return await (await self._ready()).queue_stats()

    async def workers(self) -> list[Any]:
        return await (await self._ready()).list_workers(stale_after=self.settings.lease_seconds * 2)

    async def finished_per_minute(
        self, minutes: int = 60
    ) -> tuple[datetime, list[ThroughputBucket]]:
        """Runs finished (SUCCESS / FAILED) per queue and minute of their end, over the last
        `minutes` minutes with the current one: `(since, buckets)`, `since` the first minute's
        start (UTC). A retried run counts once, at its latest end."""
        if not 1 <= minutes <= 1440:
            raise InvalidInput(f"minutes must be 1 to 1440, got {minutes}")
        now = datetime.now(UTC)
        since = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
        return since, await (await self._ready()).finished_per_minute(since)

    # -- control ----------------------------------------------------------------------------

    async def cancel(self, run_id: int | str) -> Run:
        """Queued: cancelled at once. Running: `ctx.cancelled` turns true (cancelRequested)."""
        rid = _run_id(run_id)
        run = await (await self._ready()).request_cancel(rid)
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        if run.status in FINISHED and not (run.status == RunStatus.CANCELLED):
            raise Conflict(f"run {run_id} already finished with status {run.status}")
        self.publish_status(run.id, run.status, run.cancel_requested)
        if run.status == RunStatus.CANCELLED:
            await self._call_hooks("CANCELLED", run)
        return run

    async def retry(self, run_id: int | str) -> Run:
        """Queue a failed or cancelled run again, as a new attempt."""
        rid = _run_id(run_id)
        run = await (await self._ready()).requeue(rid)
        if run is None:
            existing = await self.get_run(rid)
            raise Conflict(f"run {rid} is {existing.status}; only FAILED or CANCELLED runs retry")
        self._wake_local(run.queue)
        self.publish_status(run.id, run.status)
        return run

    async def delete_run(self, run_id: int | str) -> None:
        rid = _run_id(run_id)
        if not await (await self._ready()).delete_run(rid):
            run = await self.get_run(rid)
            raise Conflict(f"run {rid} is {run.status}; only finished runs can be deleted")

    async def prune(self) -> int:
        """Apply retention now (workers also do it in the background)."""
        s = self.settings
        default = Retention(s.keep_completed, s.keep_failed, s.keep_days)
        per_job = {
            name: Retention(
                d.keep_completed if d.keep_completed is not None else s.keep_completed,
                d.keep_failed if d.keep_failed is not None else s.keep_failed,
                s.keep_days,
            )
            for name, d in self.jobs.items()
        }
        return await (await self._ready()).prune(per_job, default)

    def asgi(self, **options: Any) -> Any:
        """The admin API, live stream and OpenAPI as an ASGI app (needs the `web` extra)."""
        from .web.api import create_api

        return create_api(self, **options)

    def worker(self, **options: Any) -> Any:
        from .worker import Worker

        return Worker(self, **options)


def _run_id(value: int | str) -> int:
    try:
        rid = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"run {value!r} does not exist (run ids are integers)") from None
    if rid <= 0 or rid > 2**63 - 1:
        raise NotFound(f"run {value!r} does not exist")
    return rid


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError("inside an event loop: await the async method instead")
