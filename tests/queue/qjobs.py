"""Jobs for the queue tests, run by real worker processes (`jobglass worker tests.queue.qjobs:app`).

Every job records what it does durably: one JSON line per event, appended with O_APPEND to the
file named by `QJOBS_RECORD` (a single `write` of one short line is atomic, so several worker
processes can share the file). A test reads the file back with `read_records`.

Each line: {"e": event, "run": run id, "attempt": n, "job": name, "pid": worker pid,
"t": wall-clock seconds, ...extra}.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from jobglass import FatalError, JobContext, JobGlass, Retry, Run, TransientError

RECORD_ENV = "QJOBS_RECORD"

#: Backoff the `flaky` job uses; the retry test checks the gaps against it.
FLAKY_RETRY = Retry(attempts=4, backoff="exponential", delay=0.4, max_delay=10, jitter=0)


def record(event: str, ctx: JobContext | None = None, **extra: Any) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    data: dict[str, Any] = {"e": event, "pid": os.getpid(), "t": time.time()}
    if ctx is not None:
        data.update(run=ctx.run_id, attempt=ctx.attempt, job=ctx.job_name)
    data.update(extra)
    line = (json.dumps(data, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_records(path: str | Path, event: str | None = None) -> list[dict[str, Any]]:
    """All complete lines of the record file (optionally one event only), in write order."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for raw in p.read_text().splitlines():
        if not raw.strip():
            continue
        item = json.loads(raw)
        if event is None or item["e"] == event:
            out.append(item)
    return out


def make_app(database_url: str | None = None, **settings: Any) -> JobGlass:
    """A fresh app with every test job registered (database from JOBGLASS_DATABASE_URL)."""
    app = JobGlass(database_url, **settings)

    @app.job(name="noop")
    async def noop(ctx: JobContext, n: int = 0) -> dict[str, int]:
        record("done", ctx, n=n)
        return {"n": n}

    @app.job(name="gc-settings")
    async def gc_settings(ctx: JobContext) -> None:
        """What the worker process did to its garbage collector (`--gc-threshold`) and its
        thread switching (`--switch-interval`)."""
        record(
            "gc",
            ctx,
            threshold=gc.get_threshold()[0],
            frozen=gc.get_freeze_count(),
            switch=sys.getswitchinterval(),
        )

    @app.job(name="sleepy", retry=Retry(attempts=3, delay=0.1, jitter=0))
    async def sleepy(ctx: JobContext, seconds: float = 1.0, first_only: bool = False) -> str:
        """Sleeps `seconds` (on attempt 1 only with `first_only`)."""
        record("start", ctx)
        if not first_only or ctx.attempt == 1:
            await asyncio.sleep(seconds)
        record("done", ctx)
        return "slept"

    @app.job(name="cooperative")
    async def cooperative(ctx: JobContext, linger: float = 0.6, limit: float = 30.0) -> str:
        """Waits for `ctx.cancelled`, records when it saw it, lingers, then stops as cancelled."""
        record("start", ctx)
        for _ in range(int(limit / 0.01)):
            if ctx.cancelled:
                break
            await asyncio.sleep(0.01)
        if ctx.cancelled:
            record("saw_cancel", ctx)
            await asyncio.sleep(linger)  # the test looks at cancelRequested meanwhile
            ctx.raise_if_cancelled()
        record("done", ctx)
        return "not cancelled"

    @app.job(name="flaky", retry=FLAKY_RETRY)
    async def flaky(ctx: JobContext, fail_times: int = 1, kind: str = "value") -> int:
        """Fails its first `fail_times` attempts with `kind`: value, transient or fatal."""
        record("start", ctx)
        if ctx.attempt <= fail_times:
            record("fail", ctx, kind=kind)
            if kind == "transient":
                raise TransientError(f"transient failure on attempt {ctx.attempt}")
            if kind == "fatal":
                raise FatalError(f"fatal failure on attempt {ctx.attempt}")
            raise ValueError(f"plain failure on attempt {ctx.attempt}")
        record("done", ctx)
        return ctx.attempt

    @app.job(
        name="transient-only",
        retry=Retry(attempts=1, delay=0.1, jitter=0, transient_attempts=3),
    )
    async def transient_only(ctx: JobContext, fail_times: int = 1) -> int:
        """Declares one attempt, yet a TransientError is retried (up to 3 attempts)."""
        record("start", ctx)
        if ctx.attempt <= fail_times:
            raise TransientError(f"try again (attempt {ctx.attempt})")
        record("done", ctx)
        return ctx.attempt

    @app.job(name="slow", timeout=0.3)
    async def slow(ctx: JobContext, seconds: float = 10.0) -> None:
        record("start", ctx)
        await asyncio.sleep(seconds)
        record("done", ctx)

    @app.job(name="ordered")
    async def ordered(ctx: JobContext, label: str = "") -> None:
        record("done", ctx, label=label)

    @app.job(name="exclusive", allow_concurrent=False)
    async def exclusive(ctx: JobContext, seconds: float = 0.03) -> None:
        record("start", ctx)
        await asyncio.sleep(seconds)
        record("end", ctx)

    @app.job(name="per-tenant", allow_concurrent=False, concurrency_key="tenant")
    async def per_tenant(ctx: JobContext, tenant: str = "", seconds: float = 0.3) -> None:
        record("start", ctx, tenant=tenant)
        await asyncio.sleep(seconds)
        record("end", ctx, tenant=tenant)

    @app.job(name="kept", keep_completed=2, keep_failed=1)
    async def kept(ctx: JobContext, fail: bool = False) -> None:
        ctx.log.info("kept ran", {"fail": fail})
        if fail:
            raise FatalError("asked to fail")

    @app.job(name="plain")
    def plain(ctx: JobContext, fail: bool = False) -> None:
        """A sync job with the default retention."""
        ctx.log.info("plain ran")
        if fail:
            raise FatalError("asked to fail")

    for event in ("completed", "failed", "retrying", "cancelled"):

        def hook(run: Run, event: str = event) -> None:
            record("hook", hook=event, run=run.id, status=str(run.status), job=run.job_name)

        app.on(event)(hook)

    return app


app = make_app()
