"""A run's slot is free once its handler returns: the next run need not wait for the commit
of the previous one's end (which is written in batches, and may wait on a lock or a disk
flush). The end itself is still written, and the lease kept, until it commits."""

from __future__ import annotations

import asyncio
import time

import psycopg

from jobglass import JobContext, JobGlass, RunStatus


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_next_run_starts_while_the_previous_end_waits(postgres_url: str) -> None:
    app = JobGlass(postgres_url)
    started: list[int] = []
    gate = asyncio.Event()

    @app.job(name="step")
    async def step(ctx: JobContext, n: int) -> int:
        started.append(n)
        if n == 1:
            await gate.wait()
        return n

    async with app:
        first = await app.enqueue("step", params={"n": 1})
        worker = app.worker(concurrency=1)
        task = asyncio.create_task(worker.run())

        async def first_started() -> bool:
            return started == [1]

        await wait_for(first_started)
        # another session holds run 1's row: its end (and its last feedback) must wait
        async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
            await blocker.execute("SELECT id FROM runs WHERE id = %s FOR UPDATE", (first.id,))
            second = await app.enqueue("step", params={"n": 2})
            gate.set()

            async def second_started() -> bool:
                return started == [1, 2]

            await wait_for(second_started)  # with concurrency 1: the slot was freed
            held = await app.get_run(first.id)
            assert held is not None and held.status == RunStatus.RUNNING, "end not yet written"
            await blocker.rollback()

        async def both_done() -> bool:
            runs = [await app.get_run(r.id) for r in (first, second)]
            return all(r is not None and r.status == RunStatus.SUCCESS for r in runs)

        await wait_for(both_done)
        done = await app.get_run(first.id)
        assert done is not None and done.attempt == 1 and done.result == 1
        worker.stop()
        assert await task == 0
