"""Jobs for the browser tests, served by `jobglass serve e2e_jobs:app` and run by
`jobglass worker e2e_jobs:app` in separate processes (the database comes from
JOBGLASS_DATABASE_URL)."""

from __future__ import annotations

import asyncio

from jobglass import FatalError, JobContext, JobGlass

app = JobGlass()

XSS = "<img src=x onerror=alert(1)>"


@app.job(name="stepper")
async def stepper(ctx: JobContext, steps: int = 40, pause_ms: int = 100) -> dict[str, int]:
    """Known total, one info line per step: progress and logs the tests can watch."""
    log = ctx.log
    log.set_stage("Preparing", "warming up")
    await asyncio.sleep(0.2)
    log.set_total(steps, "items")
    log.set_stage("Crunching numbers")
    for step in range(1, steps + 1):
        ctx.raise_if_cancelled()
        await asyncio.sleep(pause_ms / 1000)
        log.increment_progress()
        log.add_outcome("crunched", 1)
        log.info(f"Step {step} done", {"step": step})
    log.set_stage("Finalizing")
    log.milestone("All steps done")
    return {"steps": steps}


@app.job(name="xss")
async def xss(ctx: JobContext, note: str = XSS) -> str:
    """Everything user-supplied carries markup; the page must show it as text."""
    log = ctx.log
    log.set_stage(f"Stage {XSS}")
    log.info(XSS, {"html": XSS, "note": note})
    log.warning(f"warning {XSS}")
    log.add_outcome("tags", 1)
    raise FatalError(f"boom {XSS}")


@app.job(name="fails-once")
async def fails_once(ctx: JobContext) -> str:
    """Fails its first attempt (no automatic retry), succeeds when retried from the page."""
    log = ctx.log
    log.set_stage("Trying")
    await asyncio.sleep(0.2)
    if ctx.attempt == 1:
        raise FatalError("first attempt always fails")
    log.milestone(f"Worked on attempt {ctx.attempt}")
    return "ok"


@app.job(name="bulk-log")
def bulk_log(ctx: JobContext, lines: int = 100_000) -> int:
    """A run with a very long log (run in-process by the volume test to seed the database)."""
    log = ctx.log
    log.set_stage("Writing lines")
    log.set_total(lines, "lines")
    for i in range(1, lines + 1):
        log.info(f"line {i}", None)
        log.increment_progress()
    return lines


@app.job(name="chatty")
async def chatty(ctx: JobContext, burst: int = 40, tail: int = 0, pause_ms: int = 1500) -> int:
    """A burst of lines (a DEBUG one before every fifth), then `tail` more, one per pause: a
    log to switch levels on and to scroll back in while it grows."""
    log = ctx.log
    log.set_stage("Chatting")
    for i in range(1, burst + 1):
        if i % 5 == 0:
            log.debug(f"Debug detail {i}", {"i": i})
        log.info(f"Burst line {i}")
    for i in range(1, tail + 1):
        await asyncio.sleep(pause_ms / 1000)
        ctx.raise_if_cancelled()
        log.info(f"Tail line {i}")
    return burst + tail


@app.job(name="tick")
async def tick(ctx: JobContext) -> str:
    """What the `e2e-tick` schedule runs (fired only where a test starts a scheduler)."""
    ctx.log.info("tick")
    return "tock"


app.schedule("tick", every=3, name="e2e-tick", description="the schedules page's test subject")
