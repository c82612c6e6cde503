"""The scheduler against real stores: exactly-once fires across processes, misfires, overlap,
sync, pause/resume/trigger, the context runs get, and the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from jobglass import ConfigError, JobContext, JobGlass, NotFound, Retry, next_fire_times
from jobglass.cli import build_parser, main
from jobglass.scheduler import FireRecord, Scheduler

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
EVERY_MINUTE = "0 * * * * ?"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def make_app(url: str) -> JobGlass:
    app = JobGlass(url)

    @app.job(name="report")
    async def report(ctx: JobContext, report_type: str = "Weekly") -> None: ...

    @app.job(name="exclusive", allow_concurrent=False)
    async def exclusive(ctx: JobContext) -> None: ...

    @app.job(name="solo", allow_concurrent=False)
    async def solo(ctx: JobContext) -> None: ...

    @app.job(name="regional", allow_concurrent=False, concurrency_key="region")
    async def regional(ctx: JobContext, region: str = "eu") -> None: ...

    return app


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """`main()` puts a jobglass handler on the root logger, bound to the stderr of the moment
    (capsys's, closed after the test): take it off again, so later records never reach a
    closed stream (`--- Logging error --- ValueError: I/O operation on closed file`)."""
    root = logging.getLogger()
    before, level = [h for h in root.handlers if getattr(h, "_jobglass", False)], root.level
    yield
    for handler in list(root.handlers):
        if getattr(handler, "_jobglass", False) and handler not in before:
            root.removeHandler(handler)
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


async def fires_of(app: JobGlass, name: str) -> list[FireRecord]:
    return sorted(await app.store.list_schedule_fires(name, 10_000), key=lambda f: f.fire_time)


async def fire_times(app: JobGlass, name: str) -> list[datetime]:
    runs = await app.list_runs(limit=10_000)
    return sorted(r.fire_time for r in runs if r.schedule_name == name and r.fire_time)


# -- what a run knows -----------------------------------------------------------------------------


async def test_runs_carry_trigger_fire_times_and_correlation(store_url: str) -> None:
    """A worker with a scheduler beside it (`jobglass worker --with-scheduler`)."""
    app = JobGlass(store_url)
    seen: list[JobContext] = []

    @app.job(name="beat")
    async def beat(ctx: JobContext, note: str = "") -> None:
        ctx.log.info(f"beat {note}")
        seen.append(ctx)

    app.schedule("beat", cron="* * * * * ?", params={"note": "hi"}, correlation_prefix="beat",
                 tenant_id=7)  # fmt: skip
    async with app:
        worker = app.worker(with_scheduler=True)
        task = asyncio.create_task(worker.run())
        for _ in range(100):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
        worker.stop()
        assert await task == 0
    assert len(seen) >= 2
    for ctx in seen:
        assert ctx.trigger == "SCHEDULE"
        assert ctx.params == {"note": "hi"}
        assert ctx.tenant_id == "7" and ctx.scope == "tenant"
        assert ctx.fire_time is not None and ctx.fire_time.microsecond == 0
        assert ctx.next_fire_time == ctx.fire_time + timedelta(seconds=1)
        assert re.fullmatch(r"beat-[0-9a-f]{32}", ctx.correlation_id or "")
    assert len({ctx.fire_time for ctx in seen}) == len(seen)
    assert len({ctx.correlation_id for ctx in seen}) == len(seen)


# -- misfires -------------------------------------------------------------------------------------


async def test_misfire_policies_after_an_outage(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(store_url)
    app.schedule("report", name="once", cron=EVERY_MINUTE)  # fire_once is the default
    app.schedule("report", name="skip", cron=EVERY_MINUTE, misfire="skip")
    app.schedule("report", name="catch", cron=EVERY_MINUTE, misfire="catch_up", catch_up_limit=3)
    clock = Clock(T0)
    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        # down from 12:00 to 12:10:30: fires 12:01..12:09 are over a minute late (missed),
        # 12:10 is on time
        clock.now = T0 + 10 * MINUTE + timedelta(seconds=30)
        with caplog.at_level(logging.WARNING, logger="jobglass.scheduler"):
            result = await scheduler.tick()
        assert (result.due, result.misfires, result.enqueued, result.skipped) == (3, 3, 7, 2)
        at = [T0 + k * MINUTE for k in range(12)]
        assert await fire_times(app, "once") == [at[1], at[10]]
        assert await fire_times(app, "skip") == [at[10]]
        assert await fire_times(app, "catch") == [at[1], at[2], at[3], at[10]]
        skipped = {
            name: [(f.fire_time, f.decided) for f in await fires_of(app, name) if not f.run_id]
            for name in ("once", "skip", "catch")
        }
        assert skipped == {
            "once": [],
            "skip": [(at[1], "misfire-skipped")],
            "catch": [(at[4], "misfire-skipped")],
        }
        once = [r for r in await app.list_runs(limit=100) if r.schedule_name == "once"]
        catch_up_run = min(once, key=lambda r: r.id)
        assert catch_up_run.next_fire_time == at[10]  # the next fire after the missed window
        assert all(s.next_fire_at == at[11] for s in await app.schedules())
        # the next tick at the same moment finds nothing due
        assert (await scheduler.tick()).due == 0
    messages = [r.getMessage() for r in caplog.records]
    for name, policy in (("once", "fire_once"), ("skip", "skip"), ("catch", "catch_up")):
        line = next(m for m in messages if m.startswith(f"schedule '{name}':"))
        assert "9 missed fire time(s) since 2026-01-05T12:01:00.000Z" in line
        assert f"misfire={policy}" in line
    assert "one catch-up run now" in "\n".join(messages)
    assert "3 catch-up runs, oldest first (limit 3, the rest skipped)" in "\n".join(messages)
    for name in ("once", "skip", "catch"):
        sample = app.metrics.registry.get_sample_value(
            "scheduler_misfires_total", {"schedule": name}
        )
        assert sample == 9


async def test_a_long_outage_is_counted_without_enumerating_forever(store_url: str) -> None:
    app = make_app(store_url)
    app.schedule("report", name="every-second", cron="* * * * * ?", misfire="skip")
    clock = Clock(T0)
    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        clock.now = T0 + timedelta(days=2)
        result = await scheduler.tick()
        # 60 s of on-time fires (the misfire threshold), the rest decided as one skip
        assert (result.enqueued, result.skipped, result.misfires) == (61, 1, 1)


# -- overlap --------------------------------------------------------------------------------------


async def test_overlap_skips_while_the_previous_run_is_live(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(store_url)
    app.schedule("exclusive", name="ex-skip", cron=EVERY_MINUTE)
    app.schedule("solo", name="ex-queue", cron=EVERY_MINUTE, overlap="queue")
    clock = Clock(T0)
    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        clock.now = T0 + MINUTE
        assert (await scheduler.tick()).enqueued == 2
        first = {s.name: s.last_run_id for s in await app.schedules()}
        clock.now = T0 + 2 * MINUTE
        with caplog.at_level(logging.INFO, logger="jobglass.scheduler"):
            result = await scheduler.tick()
        assert (result.enqueued, result.skipped, result.queued_behind) == (1, 1, 1)
        queued = [r for r in caplog.records if "queued behind" in r.getMessage()]
        assert [(r.levelname, r.getMessage()) for r in queued] == [
            (
                "INFO",
                "schedule 'ex-queue': fire at 2026-01-05T12:02:00.000Z queued behind a live run:"
                f" previous run {first['ex-queue']} is still QUEUED (job 'solo' does not allow"
                " concurrent runs; overlap=queue: it runs when that one ends)",
            )
        ]
        fires = await fires_of(app, "ex-skip")
        assert [(f.fire_time, f.decided, f.run_id) for f in fires] == [
            (T0 + MINUTE, "enqueued", first["ex-skip"]),
            (T0 + 2 * MINUTE, "skipped", None),
        ]
        assert len(await fire_times(app, "ex-queue")) == 2
        (line,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert line == (
            "schedule 'ex-skip': fire at 2026-01-05T12:02:00.000Z skipped: previous run"
            f" {first['ex-skip']} is still QUEUED (job 'exclusive' does not allow concurrent"
            " runs; overlap=skip)"
        )
        assert first["ex-skip"] is not None
        await app.cancel(first["ex-skip"])  # the previous run ends: the next fire runs
        clock.now = T0 + 3 * MINUTE
        await scheduler.tick()
        assert await fire_times(app, "ex-skip") == [T0 + MINUTE, T0 + 3 * MINUTE]


async def test_overlap_counts_live_runs_of_the_job_from_any_source(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A job that does not allow concurrent runs overlaps with any live run holding its
    concurrency key: a manual enqueue, another schedule's run, one fired in the same tick."""
    app = make_app(store_url)
    app.schedule("exclusive", name="ex-a", cron=EVERY_MINUTE)  # overlap=skip
    app.schedule("exclusive", name="ex-q", cron=EVERY_MINUTE, overlap="queue")
    app.schedule("report", name="free", cron=EVERY_MINUTE)  # allows concurrent runs
    app.schedule("regional", name="reg-eu", cron=EVERY_MINUTE, params={"region": "eu"})
    app.schedule("regional", name="reg-us", cron=EVERY_MINUTE, params={"region": "us"})
    clock = Clock(T0)

    async def tick(at: datetime) -> tuple[Any, list[str]]:
        clock.now = at
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="jobglass.scheduler"):
            result = await scheduler.tick()
        return result, [r.getMessage() for r in caplog.records if "fire at" in r.getMessage()]

    def tail(policy: str) -> str:
        return f" (job 'exclusive' does not allow concurrent runs; overlap={policy}"

    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        manual = await app.enqueue("exclusive")  # trigger API, no schedule
        eu = await app.enqueue("regional", params={"region": "eu"})
        await app.enqueue("report")

        # 12:01: the manual run blocks ex-a (skipped) and ex-q (queued behind it); the live
        # report run does not matter (concurrent runs allowed), nor an "eu" run for "us"
        result, lines = await tick(T0 + MINUTE)
        assert (result.enqueued, result.skipped, result.queued_behind) == (3, 2, 1)
        at1 = "2026-01-05T12:01:00.000Z"
        assert lines == [
            f"schedule 'ex-a': fire at {at1} skipped: run {manual.id} (trigger API) is still"
            f" QUEUED{tail('skip')})",
            f"schedule 'ex-q': fire at {at1} queued behind a live run: run {manual.id} (trigger"
            f" API) is still QUEUED{tail('queue')}: it runs when that one ends)",
            f"schedule 'reg-eu': fire at {at1} skipped: run {eu.id} (trigger API) is still"
            " QUEUED (job 'regional' does not allow concurrent runs; overlap=skip)",
        ]
        fired = {s.name: s.last_run_id for s in await app.schedules()}
        assert fired["ex-a"] is None and fired["reg-eu"] is None
        assert fired["ex-q"] is not None and fired["free"] is not None
        assert fired["reg-us"] is not None

        # 12:02: the manual run is gone; ex-q's run (another schedule's) still blocks ex-a
        await app.cancel(manual.id)
        result, lines = await tick(T0 + 2 * MINUTE)
        at2 = "2026-01-05T12:02:00.000Z"
        assert lines[:2] == [
            f"schedule 'ex-a': fire at {at2} skipped: run {fired['ex-q']} of schedule 'ex-q' is"
            f" still QUEUED{tail('skip')})",
            f"schedule 'ex-q': fire at {at2} queued behind a live run: previous run"
            f" {fired['ex-q']} is still QUEUED{tail('queue')}: it runs when that one ends)",
        ]

        # 12:03: nothing of the key is live; ex-a fires, and ex-q queues behind that run
        for run in await app.list_runs(job_name="exclusive", status=["QUEUED"]):
            await app.cancel(run.id)
        result, lines = await tick(T0 + 3 * MINUTE)
        at3 = "2026-01-05T12:03:00.000Z"
        assert lines[0] == (
            f"schedule 'ex-q': fire at {at3} queued behind a live run: the run for {at3} of"
            f" schedule 'ex-a' fired in the same tick is still QUEUED{tail('queue')}: it runs"
            " when that one ends)"
        )
        assert await fire_times(app, "ex-a") == [T0 + 3 * MINUTE]
        assert await fire_times(app, "ex-q") == [T0 + k * MINUTE for k in (1, 2, 3)]
        assert [f.decided for f in await fires_of(app, "ex-a")] == ["skipped"] * 2 + ["enqueued"]


async def test_schedules_report_the_last_fire_and_the_last_runs_status(store_url: str) -> None:
    app = JobGlass(store_url)
    done = asyncio.Event()

    @app.job(name="beat")
    async def beat(ctx: JobContext) -> None:
        done.set()

    app.schedule("beat", name="hourly", cron="0 0 * * * ?")
    clock = Clock(T0 - timedelta(minutes=30))
    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        (before,) = await app.schedules()
        assert (before.last_fire_at, before.last_run_id, before.last_run_status) == (None,) * 3
        clock.now = T0 + timedelta(seconds=5)
        assert (await scheduler.tick()).enqueued == 1
        (fired,) = await app.schedules()
        assert fired.last_fire_at == T0
        assert fired.next_fire_at == T0 + timedelta(hours=1)
        assert fired.last_run_status == "QUEUED"
        (run,) = await app.list_runs(job_name="beat")
        assert (fired.last_run_id, run.fire_time) == (run.id, T0)
        shown = fired.to_json()
        assert (shown["lastFireAt"], shown["lastRunId"], shown["lastRunStatus"]) == (
            "2026-01-05T12:00:00.000Z",
            str(run.id),
            "QUEUED",
        )

        worker = app.worker()
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(done.wait(), 30)
        for _ in range(300):
            (after,) = await app.schedules()
            if after.last_run_status == "SUCCESS":
                break
            await asyncio.sleep(0.02)
        worker.stop()
        assert await task == 0
        assert (after.last_fire_at, after.last_run_id, after.last_run_status) == (
            T0,
            run.id,
            "SUCCESS",
        )


# -- definitions and control ----------------------------------------------------------------------


async def test_sync_keeps_state_applies_config_and_disables_the_missing(
    store_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "jobglass.toml"
    config.write_text('[schedules.a]\nenabled = false\n\n[schedules.c]\njob = "report"\n'
                      'every = "30m"\n', encoding="utf-8")  # fmt: skip
    first = make_app(store_url)
    first.schedule("report", name="a", cron=EVERY_MINUTE)
    first.schedule("report", name="b", cron=EVERY_MINUTE)
    first.load_schedule_config(config)
    async with first:
        await Scheduler(first, now=Clock(T0)).sync()
        stored = {s.name: s for s in await first.schedules()}
    assert {n: (s.enabled, s.source) for n, s in stored.items()} == {
        "a": (False, "config"),
        "b": (True, "code"),
        "c": (True, "config"),
    }
    assert stored["b"].next_fire_at == T0 + MINUTE
    assert stored["c"].next_fire_at == T0 + timedelta(minutes=30)

    later = make_app(store_url)  # a new deploy: b kept, cron of c changed, a gone
    later.schedule("report", name="b", cron=EVERY_MINUTE, description="kept")
    later.schedule("report", name="c", cron="0 0 * * * ?")
    async with later:
        await Scheduler(later, now=Clock(T0 + 5 * MINUTE)).sync()
        stored = {s.name: s for s in await later.schedules()}
    assert sorted(stored) == ["a", "b", "c"]  # disabled, not deleted
    assert not stored["a"].enabled
    assert stored["b"].next_fire_at == T0 + MINUTE  # same timing: the missed fire is kept
    assert stored["b"].description == "kept"
    assert stored["c"].next_fire_at == T0 + timedelta(hours=1)  # new timing: from now


async def test_pause_resume_and_trigger(store_url: str) -> None:
    app = make_app(store_url)
    app.schedule("report", name="weekly", cron=EVERY_MINUTE, params={"report_type": "Weekly"},
                 correlation_prefix="weekly")  # fmt: skip
    app.schedule("report", name="monthly", cron="0 0 6 1 * ?")
    offset = timedelta(0)
    scheduler = Scheduler(app, now=lambda: datetime.now(UTC) + offset)
    async with app:
        # trigger works before any scheduler stored the schedule
        run = await app.trigger_schedule("monthly")
        assert (run.trigger, run.schedule_name, run.job_name) == ("MANUAL", "monthly", "report")
        assert (await app.store.get_schedule("monthly")) is not None
        assert await fires_of(app, "monthly") == []  # a trigger is not a fire time

        await scheduler.sync()
        paused = await app.pause_schedule("weekly")
        assert paused.paused and paused.enabled
        offset = timedelta(minutes=3)
        assert (await scheduler.tick()).due == 0
        resumed = await app.resume_schedule("weekly")
        assert not resumed.paused
        assert resumed.next_fire_at is not None
        assert resumed.next_fire_at > datetime.now(UTC)  # from now: no catch-up of the pause
        offset = resumed.next_fire_at - datetime.now(UTC) + timedelta(seconds=1)
        result = await scheduler.tick()
        assert (result.enqueued, result.misfires) == (1, 0)

        now = await app.trigger_schedule("weekly")
        assert now.trigger == "MANUAL" and now.params == {"report_type": "Weekly"}
        assert re.fullmatch(r"weekly-[0-9a-f]{32}", now.correlation_id or "")
        assert (await app.store.get_schedule("weekly")).last_run_id == now.id  # type: ignore[union-attr]
        with pytest.raises(
            NotFound, match=r"unknown schedule 'nope' \(known schedules: monthly, weekly\)"
        ):
            await app.pause_schedule("nope")


# -- several scheduler processes ------------------------------------------------------------------

APP_SOURCE = """
from jobglass import JobContext, JobGlass

app = JobGlass({url!r})


@app.job(name="beat", schedule="* * * * * ?")
async def beat(ctx: JobContext) -> None: ...


app.schedule("beat", name="beat-2s", every="2s", correlation_prefix="two")
"""


@pytest.fixture
def app_module(tmp_path: Path, store_url: str) -> Iterator[str]:
    name = f"sched_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(APP_SOURCE.format(url=store_url), encoding="utf-8")
    yield f"{name}:app"
    sys.modules.pop(name, None)


@pytest.mark.slow
async def test_two_scheduler_processes_fire_each_time_exactly_once(
    store_url: str, tmp_path: Path, app_module: str
) -> None:
    command = [sys.executable, "-m", "jobglass.cli", "-v", "scheduler", app_module]
    procs = [
        await asyncio.create_subprocess_exec(
            *command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    # fire for ~9 s once both have started (a stretch long enough for the two processes to
    # meet at many fire times; a 30 s bound for slow machines)
    watcher = JobGlass(store_url)
    async with watcher:
        for _ in range(300):
            await asyncio.sleep(0.1)
            if any(p.returncode is not None for p in procs):
                break
            try:
                if len(await fires_of(watcher, "beat")) >= 9:
                    break
            except Exception:  # not migrated yet
                continue
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    outputs = [
        (out.decode(), err.decode())
        for out, err in [await asyncio.wait_for(p.communicate(), 30) for p in procs]
    ]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    won = [len(re.findall(r"schedule 'beat' fired run", err)) for _, err in outputs]

    app = JobGlass(store_url)
    async with app:
        runs = await app.list_runs(limit=10_000)
        for name, step in (("beat", 1), ("beat-2s", 2)):
            fires = await fires_of(app, name)
            mine = [r for r in runs if r.schedule_name == name]
            assert len(fires) >= (8 if step == 1 else 4), (name, fires)
            assert all(f.decided == "enqueued" and f.run_id for f in fires)
            # one run per fire time, and the fire record names exactly that run
            assert len(mine) == len(fires) == len({r.fire_time for r in mine})
            assert {f.run_id: f.fire_time for f in fires} == {r.id: r.fire_time for r in mine}
            times = [f.fire_time for f in fires]
            assert all(b - a == timedelta(seconds=step) for a, b in pairwise(times))
            assert all(r.trigger == "SCHEDULE" and r.correlation_id for r in mine)
        assert all((r.correlation_id or "").startswith("two-") for r in runs
                   if r.schedule_name == "beat-2s")  # fmt: skip
    assert sum(won) == len(await _beats(store_url))
    print(f"fires of 'beat' won per scheduler process: {won}")


async def _beats(url: str) -> list[FireRecord]:
    app = JobGlass(url)
    async with app:
        return await fires_of(app, "beat")


# -- CLI ------------------------------------------------------------------------------------------


def test_cron_command_prints_fire_times_and_description(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cron", "0 0 8 ? * MON", "--tz", "Europe/Berlin", "--after",
                 "2026-03-20T00:00:00", "-n", "3"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert out == (
        "2026-03-23T08:00:00+01:00\n2026-03-30T08:00:00+02:00\n2026-04-06T08:00:00+02:00\n"
    )
    assert err == "At 08:00:00, on Monday (Europe/Berlin)\n"
    assert main(["cron", "*/15 * * * *", "--after", "2026-01-01T00:07:00Z", "-n", "2"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["2026-01-01T00:15:00+00:00", "2026-01-01T00:30:00+00:00"]
    assert main(["cron", "0 0 25 * * ?"]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "jobglass: error: invalid cron expression '0 0 25 * * ?': hour field '25' is out of"
        " range 0-23\n"
    )


def test_schedules_command(
    app_module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["schedules", "--app", app_module, "--next", "2"]) == 0
    out = capsys.readouterr().out
    assert "beat-2s" in out and "every 2s" in out and "* * * * * ?" in out
    assert "not stored yet" in out
    assert main(["schedules", "pause", "beat", "--app", app_module]) == 0
    assert capsys.readouterr().out == "schedule 'beat' paused\n"
    assert main(["schedules", "trigger", "beat-2s", "--app", app_module]) == 0
    assert re.match(r"schedule 'beat-2s': run \d+ queued \(job beat, correlation id two-",
                    capsys.readouterr().out)  # fmt: skip
    assert main(["schedules", "--app", app_module, "--json", "--next", "2"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)["schedules"]}
    assert listed["beat"]["paused"] is True
    assert listed["beat-2s"]["lastRunStatus"] == "QUEUED"
    assert len(listed["beat-2s"]["nextFireTimes"]) == 2
    assert main(["schedules", "resume", "beat", "--app", app_module]) == 0
    assert capsys.readouterr().out.startswith("schedule 'beat' resumed; next fire ")
    assert main(["schedules", "pause", "nope", "--app", app_module]) == 2
    assert "unknown schedule 'nope'" in capsys.readouterr().err


def test_trigger_without_app_works_from_the_stored_schedule(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`jobglass schedules trigger NAME` without --app: the CLI's bare app knows no job; the
    schedule, as another app's scheduler stored it, and the job's earlier runs are enough."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBGLASS_DATABASE_URL", store_url)
    app = JobGlass(store_url)

    @app.job(name="data-cleanup", queue="maintenance", priority=5, timeout=30,
             retry=Retry(attempts=4), allow_concurrent=False)  # fmt: skip
    async def data_cleanup(ctx: JobContext, retention_days: int = 90) -> None: ...

    @app.job(name="report")
    async def report(ctx: JobContext, report_type: str = "Weekly") -> None: ...

    app.schedule("data-cleanup", name="cleanup.daily", cron="0 0 2 * * ?", tenant_id=7,
                 params={"retention_days": 30}, correlation_prefix="cleanup")  # fmt: skip
    app.schedule("data-cleanup", name="cleanup.unfired", cron="0 0 3 1 1 ?")
    app.schedule("report", name="report.weekly", cron="0 0 8 ? * MON", user_id="u-1",
                 params={"report_type": "Monthly"})  # fmt: skip

    async def fire_once() -> int:
        clock = Clock(T0)
        async with app:
            scheduler = Scheduler(app, now=clock)
            await scheduler.sync()
            clock.now = datetime(2026, 1, 6, 2, 0, 1, tzinfo=UTC)
            assert (await scheduler.tick()).enqueued == 1
            (run,) = await app.list_runs(job_name="data-cleanup")
            return run.id

    fired_id = asyncio.run(fire_once())

    def trigger(name: str) -> tuple[int, str]:
        assert main(["schedules", "trigger", name]) == 0
        out, err = capsys.readouterr()
        found = re.fullmatch(
            r"schedule '(.+)': run (\d+) queued \(job .+, correlation id .+\)\n", out
        )
        assert found is not None and found.group(1) == name, (out, err)
        return int(found.group(2)), err

    daily_id, err = trigger("cleanup.daily")
    assert err == ""
    unfired_id, err = trigger("cleanup.unfired")  # no run of its own: the job's newest run
    assert err == ""
    report_id, err = trigger("report.weekly")  # the job never ran: defaults, and a warning
    assert "job 'report' is not registered in this process and has no earlier run" in err
    assert "queue 'default'" in err

    async def check() -> None:
        async with JobGlass(store_url) as reader:
            fired = await reader.get_run(fired_id)
            daily = await reader.get_run(daily_id)
            unfired = await reader.get_run(unfired_id)
            weekly = await reader.get_run(report_id)
            stored = {s.name: s for s in await reader.schedules()}
        assert (daily.trigger, daily.schedule_name, daily.job_name) == (
            "MANUAL", "cleanup.daily", "data-cleanup"
        )  # fmt: skip
        assert daily.params == {"retention_days": 30}
        assert (daily.tenant_id, daily.scope) == ("7", "tenant")
        assert re.fullmatch(r"cleanup-[0-9a-f]{32}", daily.correlation_id or "")
        for run in (daily, unfired):  # the job's own settings, as its scheduled run had them
            assert (run.queue, run.priority, run.timeout, run.retry, run.concurrency_key) == (
                "maintenance", 5, 30, fired.retry, "data-cleanup"
            )  # fmt: skip
        assert fired.retry.attempts == 4
        assert unfired.params == {} and unfired.schedule_name == "cleanup.unfired"
        assert (weekly.queue, weekly.params, weekly.user_id, weekly.scope) == (
            "default", {"report_type": "Monthly"}, "u-1", "user"
        )  # fmt: skip
        assert stored["cleanup.daily"].last_run_id == daily_id
        assert stored["report.weekly"].last_run_id == report_id
        assert await reader_fires(store_url, "cleanup.daily") == 1  # a trigger is no fire

    asyncio.run(check())


async def reader_fires(url: str, name: str) -> int:
    async with JobGlass(url) as reader:
        return len(await reader.store.list_schedule_fires(name))


def test_cron_command_and_next_fire_times_read_a_naive_after_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both read a time without offset as wall time in the zone (07:30 Berlin = 06:30Z)."""
    after = "2026-01-05T07:30:00"
    assert main(["cron", "0 0 8 * * ?", "--tz", "Europe/Berlin", "--after", after, "-n", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = next_fire_times("0 0 8 * * ?", datetime.fromisoformat(after), 2, "Europe/Berlin")
    assert out == [t.isoformat() for t in expected]
    assert out == ["2026-01-05T08:00:00+01:00", "2026-01-06T08:00:00+01:00"]
    assert main(["cron", "0 0 8 * * ?", "--tz", "Europe/Berlin", "--after",
                 "2026-01-05T07:30:00Z", "-n", "1"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "2026-01-06T08:00:00+01:00\n"
    with pytest.raises(SystemExit):
        main(["cron", "--help"])
    assert "wall-clock time in --tz" in " ".join(capsys.readouterr().out.split())


async def test_worker_with_scheduler_refuses_a_bad_config(sqlite_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedules.x]\njob = "report"\ncron = "0 0 25 * * ?"\n', encoding="utf-8")
    app = JobGlass(sqlite_url, schedule_config=str(bad))

    @app.job(name="report")
    async def report(ctx: JobContext) -> None: ...

    async with app:
        with pytest.raises(ConfigError, match=r"bad\.toml: schedule 'x': key 'cron': invalid cron"):
            await app.worker(with_scheduler=True).run()


def test_worker_command_has_with_scheduler() -> None:
    args = build_parser().parse_args(["worker", "m:app", "--with-scheduler"])
    assert args.with_scheduler is True
    assert build_parser().parse_args(["worker", "m:app"]).with_scheduler is False


async def test_a_catch_up_blocked_by_overlap_is_still_a_misfire(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(store_url)
    app.schedule("exclusive", name="ex", cron=EVERY_MINUTE)
    clock = Clock(T0)
    async with app:
        scheduler = Scheduler(app, now=clock)
        await scheduler.sync()
        clock.now = T0 + MINUTE
        assert (await scheduler.tick()).enqueued == 1  # still QUEUED: nobody runs it
        clock.now = T0 + 10 * MINUTE + timedelta(seconds=30)
        with caplog.at_level(logging.WARNING, logger="jobglass.scheduler"):
            result = await scheduler.tick()
        assert (result.enqueued, result.skipped, result.misfires) == (0, 2, 1)
        decided = [f.decided for f in await fires_of(app, "ex")]
        assert decided == ["enqueued", "skipped", "skipped"]  # 12:01, catch-up for 12:02, 12:10
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert (
        "8 missed fire time(s) since 2026-01-05T12:02:00.000Z; misfire=fire_once: catch-up"
        " run skipped" in text
    )
    assert text.count("is still QUEUED") == 2
