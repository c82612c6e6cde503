"""Jobs for the web API / stream tests, and a worker process to run them.

    python tests/integration/web_jobs.py DATABASE_URL [CONCURRENCY]

runs a worker on queues `default` and `web` until SIGTERM; it prints `ready` once started.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from jobglass import FatalError, JobContext, JobGlass

HTML = "<script>alert('x')</script><img src=x onerror=alert(1)>"
SQL = "'; DROP TABLE runs; -- \" OR 1=1"


def register(app: JobGlass) -> None:
    @app.job(name="web-demo", queue="web")
    async def demo(
        ctx: JobContext, lines: int = 20, delay: float = 0.02, payload: int = 0, flush: int = 0
    ) -> dict[str, Any]:
        """Logs `lines` numbered lines with progress, warnings and outcomes."""
        log = ctx.log
        log.set_stage("Loading", "reading the list")
        log.set_total(lines, "items")
        log.milestone(f"Found {lines} items")
        log.set_stage("Processing")
        pad = "x" * payload
        for i in range(lines):
            log.info(f"item {i}", {"i": i, "t0": time.time(), "pad": pad})
            if i % 10 == 9:
                log.warning(f"item {i} looks odd", {"i": i})
            log.add_outcome("processed", 1)
            log.increment_progress()
            if flush and i % flush == 0:
                await log.flush()  # many small events (the slow-client test wants them)
            if delay:
                await asyncio.sleep(delay)
        return {"lines": lines}

    @app.job(name="web-sleep", queue="web")
    async def sleeper(ctx: JobContext, seconds: float = 30.0) -> str:
        ctx.log.set_stage("Sleeping")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ctx.raise_if_cancelled()
            await asyncio.sleep(0.02)
        return "rested"

    @app.job(name="web-html", queue="web")
    async def html(ctx: JobContext, text: str = HTML) -> str:
        ctx.log.set_stage(text)
        ctx.log.info(text, {"html": text, "sql": SQL})
        ctx.log.error(SQL, {"html": text})
        return text

    @app.job(name="web-fail", queue="web")
    async def fail(ctx: JobContext) -> None:
        ctx.log.info("about to fail")
        raise FatalError("boom")

    @app.job(name="web-cron", queue="web", schedule="0 0 2 * * ?")
    async def nightly(ctx: JobContext) -> str:
        """Runs at 02:00 every day."""
        ctx.log.info("nightly run")
        return "done"

    @app.job(name="web-typed", queue="web")
    async def typed(ctx: JobContext, batch_size: int, label: str = "x") -> str:
        return f"{label}{batch_size}"


def make_app(url: str, **settings: Any) -> JobGlass:
    app = JobGlass(url, **settings)
    register(app)
    return app


async def _work(url: str, concurrency: int) -> int:
    app = make_app(url, grace_seconds=1.0, poll_interval=0.02, lease_seconds=10.0)
    async with app:
        worker = app.worker(queues=["default", "web"], concurrency=concurrency)
        worker.install_signal_handlers()
        print("ready", flush=True)
        code: int = await worker.run()
        return code


if __name__ == "__main__":
    sys.exit(asyncio.run(_work(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)))
