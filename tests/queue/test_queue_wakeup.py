"""An idle worker starts a run enqueued by another connection (another process, in real
life) within milliseconds, not at its next poll: LISTEN/NOTIFY on PostgreSQL, a watch on the
file's commits on SQLite."""

from __future__ import annotations

import asyncio
import time

from jobglass import JobContext, JobGlass


async def test_idle_worker_wakes_on_a_run_enqueued_elsewhere(store_url: str) -> None:
    app = JobGlass(store_url)
    started: asyncio.Queue[float] = asyncio.Queue()

    @app.job(name="stamp")
    async def stamp(ctx: JobContext) -> None:
        started.put_nowait(time.monotonic())

    other = JobGlass(store_url)  # its own connections, as another process would have
    other.job(name="stamp")(stamp.func)
    async with app, other:
        worker = app.worker(poll_interval=30.0)  # polling alone would take 30 s
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)  # idle, waiting
        delays = []
        for _ in range(5):
            sent = time.monotonic()
            await other.enqueue("stamp")
            delays.append(await asyncio.wait_for(started.get(), 10) - sent)
            await asyncio.sleep(0.1)
        worker.stop()
        assert await task == 0
    assert max(delays) < 1.0, f"start delays {delays}: the worker was not woken"
