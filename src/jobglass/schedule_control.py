"""The app's schedule API (list, pause, resume, trigger: `JobGlass` delegates here) and the
runs a schedule starts, for the scheduler's fires and for a trigger by hand alike."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import NotFound
from .ids import new_correlation_id
from .models import Run, Scope, Trigger
from .stores.base import NewRun

if TYPE_CHECKING:
    from .app import JobGlass
    from .jobs import JobDefinition
    from .scheduler import Schedule

log = logging.getLogger("jobglass.scheduler")


def correlation_id(prefix: str | None) -> str:
    return f"{prefix}-{new_correlation_id()}" if prefix else new_correlation_id()


def schedule_run(
    app: JobGlass,
    s: Schedule,
    trigger: str,
    fire_time: datetime,
    next_fire: datetime | None,
    template: Run | None = None,
) -> NewRun:
    """A run of the schedule's job with its params and context (checked like an enqueue).

    The job's own settings (queue, priority, retry, timeout, concurrency key, retention) come
    from its definition; a job not registered in this process (`jobglass schedules trigger`
    without `--app`) takes them from `template`, an earlier run of the job, or else from the
    defaults of `@app.job` (see `trigger_schedule`).
    """
    from .enqueue import EnqueueRequest, build_new_run

    scope = Scope.USER if s.user_id else Scope.TENANT if s.tenant_id else Scope.SYSTEM
    request = EnqueueRequest(
        s.job_name,
        s.params,
        tenant_id=s.tenant_id,
        user_id=s.user_id,
        trigger=trigger,
        scope=scope,
        correlation_id=correlation_id(s.correlation_prefix),
    )
    if s.job_name in app.jobs:
        new = app._new_run(request)
    else:
        new = build_new_run(_stand_in(s, template), request)
        if template is not None:
            new.retry = template.retry
    new.schedule_name = s.name
    new.fire_time = fire_time.astimezone(UTC)
    new.next_fire_time = None if next_fire is None else next_fire.astimezone(UTC)
    return new


def _stand_in(s: Schedule, template: Run | None) -> JobDefinition:
    """A definition for a job this process does not know: its settings copied from an earlier
    run of the job (the params were checked when the schedule was stored)."""
    from .jobs import JobDefinition

    def unregistered(ctx: Any, **params: Any) -> None:  # never called: no worker runs it here
        raise RuntimeError(f"job {s.job_name!r} is not registered in this process")

    if template is None:
        # nothing to copy: the defaults of @app.job, and the job's name as concurrency key
        # (exact for a job that does not allow concurrent runs, harmless for one that does)
        return JobDefinition(s.job_name, unregistered, accepts_any=True, allow_concurrent=False)
    key = template.concurrency_key
    prefix = s.job_name + ":"
    suffix: str | None = None
    if key is not None and key != s.job_name and key.startswith(prefix):
        # a per-value key ("job:value"); a template of other params can't tell this schedule's
        # value: then the job's name stands in
        suffix = key[len(prefix) :] if template.params == s.params else None
    return JobDefinition(
        s.job_name,
        unregistered,
        accepts_any=True,
        queue=template.queue,
        priority=template.priority,
        timeout=template.timeout,
        keep_completed=template.keep_completed,
        keep_failed=template.keep_failed,
        allow_concurrent=key is None,
        concurrency_key=None if suffix is None else (lambda _params: suffix),
    )


def publish_runs(app: JobGlass, runs: list[Run]) -> None:
    """What `enqueue_many` does after a write: wake local workers, publish run events."""
    for queue in {r.queue for r in runs}:
        app._wake_local(queue)
    app.events.publish_many(
        [
            {
                "type": "run",
                "runId": str(r.id),
                "status": str(r.status),
                "jobName": r.job_name,
                "queue": r.queue,
                "tenantId": r.tenant_id,
            }
            for r in runs
        ]
    )


# -- the app's schedule API --------------------------------------------------------------------


async def list_schedules(app: JobGlass) -> list[Schedule]:
    """Stored schedules, plus this app's definitions no scheduler has stored yet."""
    from .schedule_config import defined_schedules

    store = await app._ready()
    stored = {s.name: s for s in await store.list_schedules()}
    now = datetime.now(UTC)
    for s in defined_schedules(app):
        if s.name not in stored:
            s.next_fire_at = s.next_after(now) if s.enabled else None
            stored[s.name] = s
    return [stored[name] for name in sorted(stored)]


async def _stored(app: JobGlass, name: str) -> Schedule:
    """The stored schedule; a definition of this app not stored yet is stored first."""
    from .schedule_config import defined_schedules
    from .scheduler import ScheduleSync

    store = await app._ready()
    found = await store.get_schedule(name)
    if found is not None:
        return found
    for s in defined_schedules(app):
        if s.name == name:
            now = datetime.now(UTC)
            s.next_fire_at = s.next_after(now)
            await store.sync_schedules(ScheduleSync([s], disable_others=False, now=now))
            again = await store.get_schedule(name)
            assert again is not None
            return again
    known = ", ".join(s.name for s in await list_schedules(app)) or "none"
    raise NotFound(f"unknown schedule {name!r} (known schedules: {known})")


async def pause_schedule(app: JobGlass, name: str) -> Schedule:
    await _stored(app, name)
    updated = await app.store.set_schedule_paused(name, True, None, datetime.now(UTC))
    assert updated is not None
    _wake_schedulers(app)
    return updated


async def resume_schedule(app: JobGlass, name: str) -> Schedule:
    """Resume from now: fire times that passed while paused are not caught up."""
    s = await _stored(app, name)
    now = datetime.now(UTC)
    updated = await app.store.set_schedule_paused(name, False, s.next_after(now), now)
    assert updated is not None
    _wake_schedulers(app)
    return updated


async def trigger_schedule(app: JobGlass, name: str) -> Run:
    """Run the schedule's job now, once (trigger MANUAL; paused or not; not a fire time).

    Works from the stored schedule alone: a job not registered in this process (e.g. the
    CLI's bare app) takes its queue, priority, retry, timeout and concurrency key from the
    schedule's last run, else the job's newest run, else the defaults (queue 'default').
    """
    s = await _stored(app, name)
    upcoming = s.next_fire_at if s.enabled and not s.paused else None
    template = None if s.job_name in app.jobs else await _job_template(app, s)
    new = schedule_run(app, s, Trigger.MANUAL, datetime.now(UTC), upcoming, template)
    run = await app.store.trigger_schedule_run(s.name, new)
    publish_runs(app, [run])
    log.info("schedule %r triggered by hand: run %s", name, run.id)
    return run


async def _job_template(app: JobGlass, s: Schedule) -> Run | None:
    """An earlier run of the schedule's job to copy the job's settings from."""
    store = await app._ready()
    if s.last_run_id is not None:
        last = await store.get_run(s.last_run_id)
        if last is not None and last.job_name == s.job_name:
            return last
    newest = await app.list_runs(job_name=s.job_name, limit=1)
    if newest:
        return newest[0]
    log.warning(
        "schedule %r: job %r is not registered in this process and has no earlier run to copy"
        " its settings from: the run goes to queue 'default' with the job defaults (load the"
        " app, e.g. --app MODULE:APP, to use the job's own settings)",
        s.name,
        s.job_name,
    )
    return None


def _wake_schedulers(app: JobGlass) -> None:
    for wake in list(app.schedule_registry.wakers):
        wake()
