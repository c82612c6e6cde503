"""Retention: per job and per enqueue, only finished runs, logs go with their run."""

from __future__ import annotations

import pytest
from qhelpers import QueueEnv
from qjobs import make_app

from jobglass import Conflict, EnqueueRequest, NotFound, RunStatus

pytestmark = pytest.mark.slow


def _ids(created: list[int]) -> str:
    return ", ".join(str(i) for i in created)


async def test_retention_prunes_only_what_it_should(qenv: QueueEnv) -> None:
    app = qenv.app
    # one slot stays busy with a live run for the whole test; the rest run one by one, in order
    live_running = await app.enqueue("cooperative", {"linger": 0, "limit": 60})
    seq: list[EnqueueRequest] = [
        EnqueueRequest("kept", keep_completed=10),  # its own keep beats the job's 2
        *[EnqueueRequest("kept") for _ in range(5)],
        *[EnqueueRequest("kept", {"fail": True}) for _ in range(3)],
        *[EnqueueRequest("plain") for _ in range(2)],  # default retention (10,000)
        *[EnqueueRequest("plain", keep_completed=1) for _ in range(4)],
        EnqueueRequest("plain", {"fail": True}, keep_failed=0),
    ]
    runs = []
    for req in seq:  # one by one: each its own age
        runs.append((await app.enqueue_many([req]))[0].run.id)
    k1, k2, k3, k4, k5, k6, f1, f2, f3, p1, p2, p3, p4, p5, p6, pf = runs
    live_queued = [(await app.enqueue("kept", delay=3600)).id for _ in range(2)]

    qenv.start_worker(concurrency=2, env={"JOBGLASS_PRUNE_INTERVAL": "1"})
    await qenv.wait_finished(runs, within=30)
    all_logged = await qenv.count_rows("run_logs", f"run_id IN ({_ids(runs)})")
    assert all_logged >= 2 * len(runs)

    # the worker prunes on its own (first pass a few seconds after it starts)
    gone = [k2, k3, k4, f1, f2, p3, p4, p5, pf]
    kept = [k1, k5, k6, f3, p1, p2, p6]

    async def pruned() -> bool:
        return await qenv.count_rows("runs", f"id IN ({_ids(gone)})") == 0

    await qenv.wait_until(pruned, within=15, what="the worker's prune")
    assert await qenv.count_rows("runs", f"id IN ({_ids(kept)})") == len(kept)
    assert await qenv.count_rows("run_logs", f"run_id IN ({_ids(gone)})") == 0
    assert await qenv.count_rows("run_logs", f"run_id IN ({_ids(kept)})") >= 2 * len(kept)
    running = await app.get_run(live_running.id)
    assert running.status == RunStatus.RUNNING
    for rid in live_queued:
        assert (await app.get_run(rid)).status == RunStatus.QUEUED

    # a stricter default (keep nothing) prunes the rest, but never a live run, nor a run
    # whose own keep protects it, nor what a job's own rule keeps
    strict = make_app(qenv.url, keep_completed=0, keep_failed=0)
    async with strict:
        assert await strict.prune() == 2  # p1 and p2
        assert await strict.prune() == 0
    assert await qenv.count_rows("runs", f"id IN ({_ids([p1, p2])})") == 0
    survivors = [k1, k5, k6, f3, p6, live_running.id, *live_queued]
    assert await qenv.count_rows("runs") == len(survivors)
    assert await qenv.count_rows("runs", f"id IN ({_ids(survivors)})") == len(survivors)
    assert await qenv.count_rows("run_logs", f"run_id IN ({_ids([p1, p2])})") == 0
    assert (await app.get_run(live_running.id)).status == RunStatus.RUNNING

    # deleting by hand: finished runs only
    await app.delete_run(k1)
    assert await qenv.count_rows("run_logs", f"run_id = {k1}") == 0
    with pytest.raises(Conflict, match="only finished runs"):
        await app.delete_run(live_running.id)
    with pytest.raises(NotFound, match="does not exist"):
        await app.get_run(k1)

    await app.cancel(live_running.id)
    [done] = await qenv.wait_finished([live_running.id], within=10)
    assert done.status == RunStatus.CANCELLED
