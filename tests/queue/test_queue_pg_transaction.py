"""PostgreSQL: enqueue inside the caller's transaction; the wake-up goes out only on commit."""

from __future__ import annotations

import time

import psycopg
import pytest
from qhelpers import QueueEnv

from jobglass import RunStatus

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _notes(listener: psycopg.AsyncConnection, wait: float) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) async for n in listener.notifies(timeout=wait)]


class Rollback(Exception):
    pass


async def test_transactional_enqueue_commits_or_leaves_nothing(pg_qenv: QueueEnv) -> None:
    env = pg_qenv
    app = env.app
    # polling every 30 s: only the NOTIFY can wake this worker in time
    worker = env.start_worker(concurrency=2, env={"JOBGLASS_POLL_INTERVAL": "30"})
    await env.wait_ready(worker)
    listener = await psycopg.AsyncConnection.connect(env.url, autocommit=True)
    caller = await psycopg.AsyncConnection.connect(env.url)
    in_process = app.events.subscribe()  # what this process's own streams would show
    try:
        await listener.execute("LISTEN jobglass_wakeup")

        # rolled back: no run, no wake-up
        with pytest.raises(Rollback):
            async with caller.transaction():
                await caller.execute("CREATE TEMP TABLE IF NOT EXISTS orders (id int)")
                await caller.execute("INSERT INTO orders VALUES (1)")
                run = await app.enqueue("noop", {"n": 1}, conn=caller)
                assert run.status == RunStatus.QUEUED
                raise Rollback
        assert await _notes(listener, 0.5) == []
        assert await env.count_rows("runs") == 0
        assert in_process.queue.empty(), "a rolled-back run was announced in this process"
        await caller.rollback()  # end the implicit transaction the `with` left open

        # big batches, all or nothing too: without job_ids by COPY, with one as several
        # pipelined INSERTs
        for job_id in (None, "big-one"):
            with pytest.raises(Rollback):
                async with caller.transaction():
                    batch = [{"job_name": "noop", "params": {"n": i}} for i in range(2500)]
                    batch[1800]["job_id"] = job_id
                    big = await app.enqueue_many(batch, conn=caller)
                    assert len(big) == 2500 and all(c.created for c in big)
                    raise Rollback
            assert await _notes(listener, 0.5) == []
            assert await env.count_rows("runs") == 0
            await caller.rollback()

        # committed: the run exists and the wake-up arrives, only after the commit
        async with caller.transaction():
            run = await app.enqueue("noop", {"n": 2}, conn=caller)
            many = await app.enqueue_many([{"job_name": "noop", "params": {"n": 3}}], conn=caller)
            assert await env.count_rows("runs") == 0  # not visible to others yet
            assert await _notes(listener, 0.3) == []
        committed_at = time.time()  # leaving the block committed
        notes = await _notes(listener, 1.0)
        assert notes and set(notes) == {("jobglass_wakeup", "default")}
        assert await env.count_rows("runs") == 2
        runs = await env.wait_finished([run.id, many[0].run.id], within=10)
        assert all(r.status == RunStatus.SUCCESS for r in runs)
        done = env.records("done")
        assert sorted(r["n"] for r in done) == [2, 3]
        # woken, not polled: picked up well within the worker's 30 s poll interval
        assert max(r["t"] for r in done) - committed_at < 2.0
    finally:
        in_process.close()
        await caller.close()
        await listener.close()


async def test_enqueue_on_a_connection_that_is_not_psycopg_is_refused(pg_qenv: QueueEnv) -> None:
    with pytest.raises(TypeError, match="AsyncConnection"):
        await pg_qenv.app.enqueue("noop", conn=object())
    assert await pg_qenv.count_rows("runs") == 0
