"""Several worker processes: throughput without duplicates, crashes, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from qhelpers import QueueEnv

from jobglass import EnqueueRequest, RunStatus

pytestmark = pytest.mark.slow


async def test_2000_runs_across_3_workers_each_succeed_once(qenv: QueueEnv) -> None:
    # all three up first: two fast workers can finish 2,000 no-op runs before a third starts
    workers = [qenv.start_worker(concurrency=50) for _ in range(3)]
    await qenv.wait_ready(*workers)
    created = await qenv.app.enqueue_many([EnqueueRequest("noop", {"n": i}) for i in range(2000)])
    ids = [c.run.id for c in created]
    assert len(set(ids)) == 2000

    async def all_done() -> bool:
        stats = await qenv.app.queue_stats()
        return stats["default"]["completed"] == 2000

    await qenv.wait_until(all_done, within=90, what="2000 runs to succeed")
    done = qenv.records("done", job="noop")
    per_run = Counter(r["run"] for r in done)
    twice = {rid: n for rid, n in per_run.items() if n > 1}
    assert not twice, f"runs executed to success more than once: {twice}"
    assert set(per_run) == set(ids)
    runs = await qenv.app.list_runs(job_name="noop", limit=1000)
    assert {r.status for r in runs} == {RunStatus.SUCCESS}
    assert {r.attempt for r in runs} == {1}
    # the work was shared: every worker process ran some of it
    pids = Counter(r["pid"] for r in done)
    assert set(pids) == {w.pid for w in workers}, pids
    stats = (await qenv.app.queue_stats())["default"]
    assert stats["waiting"] == stats["active"] == stats["failed"] == 0


async def test_sigkilled_worker_run_is_finished_by_another_as_attempt_2(qenv: QueueEnv) -> None:
    lease = {"JOBGLASS_LEASE_SECONDS": "2"}
    doomed = qenv.start_worker(concurrency=2, env=lease)
    run = await qenv.app.enqueue("sleepy", {"seconds": 60, "first_only": True})
    await qenv.wait_until(lambda: qenv.records("start", run=run.id), 20, "attempt 1 to start")
    doomed.signal(signal.SIGKILL)
    assert await doomed.wait_exit(10) == -signal.SIGKILL
    running = await qenv.app.get_run(run.id)
    assert running.status == RunStatus.RUNNING and running.attempt == 1

    rescuer = qenv.start_worker(concurrency=2, env=lease)
    [final] = await qenv.wait_finished([run.id], within=30)
    assert final.status == RunStatus.SUCCESS, final.errors
    assert final.attempt == 2
    assert [e["type"] for e in final.errors] == ["LeaseExpired"]
    starts = qenv.records("start", run=run.id)
    assert [(s["attempt"], s["pid"]) for s in starts] == [(1, doomed.pid), (2, rescuer.pid)]
    assert [d["attempt"] for d in qenv.records("done", run=run.id)] == [2]


async def test_sigterm_lets_the_running_job_finish_and_exits_0(qenv: QueueEnv) -> None:
    worker = qenv.start_worker(concurrency=2, grace=20)
    run = await qenv.app.enqueue("sleepy", {"seconds": 1.5})
    await qenv.wait_until(lambda: qenv.records("start", run=run.id), 20, "the run to start")
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)  # the worker has taken the signal by now
    # stopped claiming: a run queued now stays queued
    later = await qenv.app.enqueue("noop")
    assert await worker.wait_exit(20) == 0, worker.log()
    final = await qenv.app.get_run(run.id)
    assert final.status == RunStatus.SUCCESS and final.attempt == 1
    assert (await qenv.app.get_run(later.id)).status == RunStatus.QUEUED
    assert await qenv.app.workers() == []


async def test_sigterm_past_grace_releases_the_run_for_another_worker(qenv: QueueEnv) -> None:
    worker = qenv.start_worker(concurrency=2, grace=0.5)
    run = await qenv.app.enqueue("sleepy", {"seconds": 60, "first_only": True})
    await qenv.wait_until(lambda: qenv.records("start", run=run.id), 20, "the run to start")
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(15) == 0, worker.log()
    released = await qenv.app.get_run(run.id)
    assert released.status == RunStatus.RETRYING, released
    assert released.errors[-1]["type"] == "JobCancelled"
    assert "shutting down" in released.errors[-1]["message"]
    assert not qenv.records("done", run=run.id)

    other = qenv.start_worker(concurrency=2)
    [final] = await qenv.wait_finished([run.id], within=20)
    assert final.status == RunStatus.SUCCESS and final.attempt == 2
    assert [d["pid"] for d in qenv.records("done", run=run.id)] == [other.pid]


async def test_second_signal_hurries_the_shutdown(qenv: QueueEnv) -> None:
    worker = qenv.start_worker(concurrency=2, grace=60)
    run = await qenv.app.enqueue("sleepy", {"seconds": 60, "first_only": True})
    await qenv.wait_until(lambda: qenv.records("start", run=run.id), 20, "the run to start")
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    assert worker.proc.poll() is None  # still draining within its long grace
    worker.signal(signal.SIGINT)
    assert await worker.wait_exit(10) == 0, worker.log()
    assert (await qenv.app.get_run(run.id)).status == RunStatus.RETRYING
