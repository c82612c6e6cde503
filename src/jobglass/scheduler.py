"""Schedules: every due fire time fires exactly once, whatever the number of scheduler processes.

A schedule is a row of `schedules` (synced from code and config at scheduler start); each fire
time a scheduler decides about is a row of `schedule_fires`, whose primary key
(schedule, fire time) is the claim: inserting it and the run it starts happen in one
transaction, so a second scheduler that reaches the same fire time inserts nothing and starts
nothing. One transaction per tick covers every due schedule (see `Store.claim_schedule_fires`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .cron import CronSchedule, IntervalSchedule, parse_schedule
from .models import LIVE, Run, Trigger, iso
from .schedule_control import publish_runs, schedule_run
from .stores.base import NewRun

if TYPE_CHECKING:
    from .app import JobGlass

log = logging.getLogger("jobglass.scheduler")

MISFIRE_POLICIES = ("fire_once", "skip", "catch_up")
OVERLAP_POLICIES = ("skip", "queue")
#: Missed fire times counted one by one at most; beyond this the count is "at least".
MAX_MISSED_ENUMERATION = 10_000
_TINY = timedelta(microseconds=1)
Timing = CronSchedule | IntervalSchedule


@lru_cache(maxsize=8192)
def timing_of(cron: str | None, every_seconds: float | None, timezone: str) -> Timing:
    """The parsed timing of a schedule (cached: the scheduler asks for it every tick)."""
    if cron is not None:
        return CronSchedule.parse(cron, timezone)
    assert every_seconds is not None
    return parse_schedule(every=format_every(every_seconds), timezone=timezone)


def format_every(seconds: float) -> str:
    """14400 -> "4h", 90 -> "1m30s" (the `parse_interval` syntax)."""
    rest, out = int(seconds), ""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


@dataclass
class Schedule:
    """A schedule's definition (from code or config) and the state the store keeps for it."""

    name: str
    job_name: str
    cron: str | None = None
    every_seconds: float | None = None
    timezone: str = "UTC"
    description: str | None = None
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    tenant_id: str | None = None
    user_id: str | None = None
    correlation_prefix: str | None = None
    misfire: str = "fire_once"
    overlap: str = "skip"
    catch_up_limit: int = 10
    source: str = "code"
    # -- state, kept by the store (None/False for a definition that was never stored)
    paused: bool = False
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_run_id: int | None = None
    last_run_status: str | None = None
    updated_at: datetime | None = None

    @property
    def timing(self) -> Timing:
        return timing_of(self.cron, self.every_seconds, self.timezone)

    @property
    def expression(self) -> str:
        """The cron expression, or `every 4h` for an interval schedule."""
        if self.cron is not None:
            return self.cron
        return f"every {format_every(self.every_seconds or 0)}"

    @property
    def stored(self) -> bool:
        return self.updated_at is not None

    def next_after(self, when: datetime) -> datetime | None:
        return self.timing.next_after(when)

    def describe(self) -> str:
        return self.timing.describe()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "jobName": self.job_name,
            "cron": self.cron,
            "everySeconds": self.every_seconds,
            "timezone": self.timezone,
            "description": self.description,
            "humanReadable": self.describe(),
            "enabled": self.enabled,
            "paused": self.paused,
            "params": self.params,
            "tenantId": self.tenant_id,
            "userId": self.user_id,
            "correlationPrefix": self.correlation_prefix,
            "misfire": self.misfire,
            "overlap": self.overlap,
            "catchUpLimit": self.catch_up_limit,
            "source": self.source,
            "nextFireAt": iso(self.next_fire_at),
            "lastFireAt": iso(self.last_fire_at),
            "lastRunId": None if self.last_run_id is None else str(self.last_run_id),
            "lastRunStatus": self.last_run_status,
            "updatedAt": iso(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], t: Callable[[Any], datetime | None]) -> Schedule:
        from .stores.rows import from_json_text

        keys = row.keys()
        return cls(
            name=row["name"],
            job_name=row["job_name"],
            cron=row["cron"],
            every_seconds=row["every_seconds"],
            timezone=row["timezone"],
            description=row["description"],
            enabled=bool(row["enabled"]),
            params=from_json_text(row["params"]) or {},
            tenant_id=row["tenant_id"],
            user_id=row["user_id"],
            correlation_prefix=row["correlation_prefix"],
            misfire=row["misfire"],
            overlap=row["overlap"],
            catch_up_limit=int(row["catch_up_limit"]),
            source=row["source"],
            paused=bool(row["paused"]),
            next_fire_at=t(row["next_fire_at"]),
            last_fire_at=t(row["last_fire_at"]),
            last_run_id=row["last_run_id"],
            last_run_status=row["last_run_status"] if "last_run_status" in keys else None,
            updated_at=t(row["updated_at"]),
        )


# -- what crosses the store boundary ------------------------------------------------------------


@dataclass(slots=True)
class Fire:
    """One fire time decided: `enqueued` (with its run), `skipped` or `misfire-skipped`."""

    schedule_name: str
    fire_time: datetime
    decided: str
    run: NewRun | None = None
    reason: str = ""  # for the log only: "", "misfire", "catch-up", "overlap"
    #: for the log only: the live run an overlapping fire met (it was skipped, or queued
    #: behind that run when enqueued)
    detail: str = ""


@dataclass(slots=True)
class Advance:
    """Move a due schedule on: applied only if its `next_fire_at` is still `expected`."""

    schedule_name: str
    expected: datetime
    next_fire_at: datetime | None


@dataclass(slots=True)
class FireBatch:
    """A whole tick: claimed in one transaction."""

    fires: list[Fire]
    advances: list[Advance]


@dataclass(frozen=True, slots=True)
class ClaimedFire:
    """A fire this claim inserted (another scheduler's fires are not returned), and its run."""

    fire: Fire
    run: Run | None


@dataclass(frozen=True, slots=True)
class LiveRun:
    """A live (QUEUED, RETRYING or RUNNING) run holding a concurrency key: an overlap for a
    schedule of a job that does not allow concurrent runs, whoever started the run."""

    concurrency_key: str
    run_id: int
    status: str
    trigger: str
    schedule_name: str | None

    def describe(self, schedule: str) -> str:
        if self.schedule_name == schedule:
            return f"previous run {self.run_id} is still {self.status}"
        if self.schedule_name:
            return f"run {self.run_id} of schedule {self.schedule_name!r} is still {self.status}"
        return f"run {self.run_id} (trigger {self.trigger}) is still {self.status}"


@dataclass(slots=True)
class FireRecord:
    schedule_name: str
    fire_time: datetime
    run_id: int | None
    decided: str
    created_at: datetime | None


@dataclass(slots=True)
class ScheduleSync:
    """Upsert definitions (keeping state); with `disable_others`, disable every other row."""

    schedules: list[Schedule]
    disable_others: bool
    now: datetime


@dataclass(slots=True)
class TickResult:
    due: int = 0
    enqueued: int = 0
    skipped: int = 0
    misfires: int = 0
    queued_behind: int = 0  # enqueued (overlap=queue, catch-up) while the job's key was live
    lost: int = 0  # fires another scheduler had already claimed
    more: bool = False  # the due batch was full: tick again at once


# -- the scheduler process ------------------------------------------------------------------------


class Scheduler:
    """`jobglass scheduler MODULE:APP`, `jobglass worker --with-scheduler`, or
    `await Scheduler(app).run()`. Any number may run against one database.

    `now` replaces the clock (tests); `misfire_threshold` is how late a fire may be reached and
    still count as on time (Quartz's default, 60 s); `max_sleep` bounds how long a change made
    by another process (pause, resume, a new schedule) can go unnoticed.
    """

    def __init__(
        self,
        app: JobGlass,
        *,
        now: Callable[[], datetime] | None = None,
        misfire_threshold: float = 60.0,
        max_sleep: float = 1.0,
        batch_limit: int = 2000,
        sync: bool = True,
    ) -> None:
        self.app = app
        self._clock = now or (lambda: datetime.now(UTC))
        self.misfire_threshold = timedelta(seconds=misfire_threshold)
        self.max_sleep = max_sleep
        self.batch_limit = batch_limit
        self.sync_at_start = sync
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._broken: set[str] = set()
        self.ticks = 0

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def sync(self) -> list[Schedule]:
        """Write the code and config schedules to the store; disable the ones gone."""
        from .schedule_config import defined_schedules

        defs = defined_schedules(self.app)
        now = self.now()
        for s in defs:
            s.next_fire_at = s.next_after(now)
        store = await self.app._ready()
        await store.sync_schedules(ScheduleSync(defs, disable_others=True, now=now))
        enabled = sum(1 for s in defs if s.enabled)
        log.info("scheduler synced %d schedules (%d enabled)", len(defs), enabled)
        return defs

    async def run(self) -> int:
        """Sync, then fire due schedules until stopped. Returns 0."""
        store = await self.app._ready()
        if self.sync_at_start:
            await self.sync()
        registry = self.app.schedule_registry
        registry.wakers.append(self.wake)
        log.info("scheduler started (process %s)", self.app.process_id)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                delay = self.max_sleep
                try:
                    result = await self.tick()
                    if result.more:
                        continue
                    upcoming = await store.next_schedule_fire()
                    if upcoming is not None:
                        ahead = (upcoming - self.now()).total_seconds() + 0.002
                        delay = min(self.max_sleep, max(0.0, ahead))
                except Exception:
                    log.exception("scheduler tick failed; retrying")
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            with contextlib.suppress(ValueError):
                registry.wakers.remove(self.wake)
        log.info("scheduler stopped after %d ticks", self.ticks)
        return 0

    async def tick(self) -> TickResult:
        """Decide and claim every due fire, in one transaction."""
        self.ticks += 1
        store = await self.app._ready()
        now = self.now()
        due = await store.due_schedules(now, self.batch_limit)
        result = TickResult(due=len(due), more=len(due) >= self.batch_limit)
        if not due:
            return result
        fires: list[Fire] = []
        advances: list[Advance] = []
        misses: dict[str, tuple[int, bool, list[datetime]]] = {}
        keys = {s.name: key for s in due if (key := self._exclusive_key(s)) is not None}
        live = await store.live_runs_by_concurrency_key(sorted(set(keys.values())))
        fired: dict[str, str] = {}  # concurrency key -> the run this tick fired for it
        for s in due:
            try:
                planned, advance, missed = self._plan(s, now, keys.get(s.name), live, fired)
            except Exception as err:
                if s.name not in self._broken:
                    self._broken.add(s.name)
                    log.error("schedule %r cannot fire: %s", s.name, err)
                continue
            self._broken.discard(s.name)
            fires.extend(planned)
            advances.append(advance)
            if missed[0]:
                misses[s.name] = missed
        claimed = await store.claim_schedule_fires(FireBatch(fires, advances))
        result.lost = len(fires) - len(claimed)
        result.more = result.more and bool(advances)  # never spin on unfireable schedules
        self._report(claimed, misses, {s.name: s for s in due}, result)
        return result

    def _exclusive_key(self, s: Schedule) -> str | None:
        """The concurrency key of the schedule's runs when its job does not allow concurrent
        runs (None: it does, or the job is unknown here)."""
        definition = self.app.jobs.get(s.job_name)
        if definition is None or definition.allow_concurrent:
            return None
        try:
            return definition.concurrency_key_for(s.params)
        except Exception:  # the plan reports the schedule as unable to fire
            return None

    def _plan(
        self,
        s: Schedule,
        now: datetime,
        key: str | None,
        live: Mapping[str, LiveRun],
        fired: dict[str, str],
    ) -> tuple[list[Fire], Advance, tuple[int, bool, list[datetime]]]:
        """The fires of one due schedule: missed ones by its misfire policy, then on-time ones.

        With a concurrency `key` (the job does not allow concurrent runs), a live run holding
        it overlaps: the schedule's own last run, a run another schedule fired in this tick
        (`fired`), or any live run of the key (`live`: a manual or API enqueue, a trigger,
        another schedule). On return, `fired[key]` names this schedule's run if it fired one.
        """
        timing = s.timing
        first = s.next_fire_at
        assert first is not None
        cutoff = now - self.misfire_threshold
        missed: list[datetime] = []
        when: datetime | None = first
        while when is not None and when < cutoff and len(missed) < MAX_MISSED_ENUMERATION:
            missed.append(when)
            when = timing.next_after(when)
        more = when is not None and when < cutoff
        if more:
            when = timing.next_after(cutoff - _TINY)
        on_time: list[datetime] = []
        while when is not None and when <= now:
            on_time.append(when)
            when = timing.next_after(when)
        upcoming = when
        busy = ""
        if key is not None:
            other = live.get(key)
            if s.last_run_status in LIVE:
                busy = f"previous run {s.last_run_id} is still {s.last_run_status}"
            elif key in fired:
                busy = fired[key]
            elif other is not None:
                busy = other.describe(s.name)
        fires: list[Fire] = []
        mine = ""

        def fire(at: datetime, after: datetime | None, reason: str, force: bool = False) -> None:
            nonlocal busy, mine
            if busy and s.overlap == "skip" and not force:
                fires.append(Fire(s.name, at, "skipped", reason=reason or "overlap", detail=busy))
                return
            fires.append(
                Fire(s.name, at, "enqueued", self._new_run(s, at, after), reason, detail=busy)
            )
            if key is not None:
                busy = f"the run for {iso(at)} fired in the same tick is still QUEUED"
                mine = f"the run for {iso(at)} of schedule {s.name!r} fired in the same tick"
                mine += " is still QUEUED"

        if missed:
            after_window = on_time[0] if on_time else upcoming
            if s.misfire == "skip":
                fires.append(Fire(s.name, missed[0], "misfire-skipped", reason="misfire"))
            elif s.misfire == "catch_up":
                for i, at in enumerate(missed[: s.catch_up_limit]):
                    nxt = missed[i + 1] if i + 1 < len(missed) else after_window
                    fire(at, nxt, "catch-up", force=True)
                if len(missed) > s.catch_up_limit:
                    rest = missed[s.catch_up_limit]
                    fires.append(Fire(s.name, rest, "misfire-skipped", reason="misfire"))
            else:  # fire_once: one run now, standing for the whole missed window
                fire(missed[0], after_window, "misfire")
        for i, at in enumerate(on_time):
            fire(at, on_time[i + 1] if i + 1 < len(on_time) else upcoming, "")
        if key is not None and mine:
            fired[key] = mine
        return fires, Advance(s.name, first, upcoming), (len(missed), more, missed[:1])

    def _new_run(self, s: Schedule, fire_time: datetime, next_fire: datetime | None) -> NewRun:
        return schedule_run(self.app, s, Trigger.SCHEDULE, fire_time, next_fire)

    def _report(
        self,
        claimed: list[ClaimedFire],
        misses: dict[str, tuple[int, bool, list[datetime]]],
        due: dict[str, Schedule],
        result: TickResult,
    ) -> None:
        """Log and count what this scheduler decided; publish the new runs."""
        decided_misfire: dict[str, list[ClaimedFire]] = {}
        runs: list[Run] = []
        for c in claimed:
            f = c.fire
            if c.run is not None:
                runs.append(c.run)
                result.enqueued += 1
                log.debug("schedule %r fired run %s for %s", f.schedule_name, c.run.id,
                          iso(f.fire_time))  # fmt: skip
            else:
                result.skipped += 1
            if f.reason in ("misfire", "catch-up"):
                decided_misfire.setdefault(f.schedule_name, []).append(c)
            if f.detail and c.run is None:  # skipped: a run of the job's key is still live
                log.warning(
                    "schedule %r: fire at %s skipped: %s"
                    " (job %r does not allow concurrent runs; overlap=skip)",
                    f.schedule_name,
                    iso(f.fire_time),
                    f.detail,
                    due[f.schedule_name].job_name,
                )
            elif f.detail:  # enqueued behind a live run: it runs when that one ends
                result.queued_behind += 1
                if f.reason != "catch-up":  # catch-ups are summed up by the misfire line
                    log.info(
                        "schedule %r: fire at %s queued behind a live run: %s (job %r does not"
                        " allow concurrent runs; overlap=queue: it runs when that one ends)",
                        f.schedule_name,
                        iso(f.fire_time),
                        f.detail,
                        due[f.schedule_name].job_name,
                    )
        metrics = getattr(self.app, "metrics", None)
        count_misfire = getattr(metrics, "misfire", None)
        for name, decided in decided_misfire.items():
            count, more, first = misses.get(name, (0, False, []))
            s = due[name]
            enqueued = sum(1 for c in decided if c.run is not None)
            rest = f" (limit {s.catch_up_limit}, the rest skipped)" if count > enqueued else ""
            outcome = {
                "fire_once": "one catch-up run now" if enqueued else "catch-up run skipped",
                "skip": "no run; waiting for the next regular fire time",
                "catch_up": f"{enqueued} catch-up runs, oldest first{rest}",
            }[s.misfire]
            log.warning(
                "schedule %r: %s%d missed fire time(s) since %s; misfire=%s: %s",
                name,
                "at least " if more else "",
                count,
                iso(first[0]) if first else "?",
                s.misfire,
                outcome,
            )
            result.misfires += 1
            if callable(count_misfire):
                try:
                    count_misfire(name, count)
                except Exception:
                    log.debug("metrics.misfire failed", exc_info=True)
        if runs:
            publish_runs(self.app, runs)
