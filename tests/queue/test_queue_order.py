"""What runs when: job_id dedupe, priority order, delays, and concurrency limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from qhelpers import QueueEnv

from jobglass import EnqueueRequest, RunStatus

pytestmark = pytest.mark.slow


async def test_job_id_dedupes_live_runs_only(qenv: QueueEnv) -> None:
    app = qenv.app
    first = await app.enqueue("noop", {"n": 1}, job_id="nightly")
    again = await app.enqueue("noop", {"n": 2}, job_id="nightly")
    assert again.id == first.id and again.params == {"n": 1}
    batch = await app.enqueue_many(
        [
            EnqueueRequest("noop", {"n": 3}, job_id="nightly"),
            EnqueueRequest("noop", {"n": 4}, job_id="other"),
            EnqueueRequest("noop", {"n": 5}, job_id="other"),
        ]
    )
    assert [(c.run.id == first.id, c.created) for c in batch[:1]] == [(True, False)]
    assert batch[1].created and not batch[2].created and batch[2].run.id == batch[1].run.id
    assert await qenv.count_rows("runs") == 2

    qenv.start_worker(concurrency=2)
    await qenv.wait_finished([first.id, batch[1].run.id])
    # a finished run no longer holds its job_id
    fresh = await app.enqueue("noop", {"n": 6}, job_id="nightly")
    assert fresh.id != first.id and fresh.status == RunStatus.QUEUED
    await qenv.wait_finished([fresh.id])
    assert sorted(r["n"] for r in qenv.records("done")) == [1, 4, 6]


async def test_priority_then_age_order_on_one_worker(qenv: QueueEnv) -> None:
    app = qenv.app
    plan = [("a", 0), ("b", 5), ("c", -3), ("d", 10), ("e", 5), ("f", 0), ("g", 10), ("h", -3)]
    for label, priority in plan:
        await app.enqueue("ordered", {"label": label}, priority=priority)
    # a batch keeps its input order as age
    await app.enqueue_many(
        [EnqueueRequest("ordered", {"label": x}, priority=1) for x in ("i", "j", "k")]
    )
    qenv.start_worker(concurrency=1)
    await qenv.wait_until(lambda: len(qenv.records("done")) == 11, 20, "11 runs")
    order = [r["label"] for r in qenv.records("done")]
    assert order == ["d", "g", "b", "e", "i", "j", "k", "a", "f", "c", "h"]


async def test_delays_are_honoured(qenv: QueueEnv) -> None:
    app = qenv.app
    worker = qenv.start_worker(concurrency=5)
    await qenv.wait_ready(worker)
    t0 = time.time()
    soon = await app.enqueue("ordered", {"label": "now"})
    delayed = await app.enqueue("ordered", {"label": "delay"}, delay=1.0)
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    scheduled = await app.enqueue("ordered", {"label": "run_at"}, run_at=at.isoformat())
    assert delayed.run_at is not None and delayed.run_at.timestamp() >= t0 + 1.0
    assert scheduled.run_at is not None
    assert abs(scheduled.run_at.timestamp() - at.timestamp()) < 0.01
    stats = (await app.queue_stats())["default"]
    assert stats["delayed"] >= 2
    await qenv.wait_finished([soon.id, delayed.id, scheduled.id], within=15)
    started = {r["label"]: r["t"] for r in qenv.records("done")}
    assert started["now"] < t0 + 1.0
    assert started["delay"] >= t0 + 1.0
    assert started["run_at"] >= at.timestamp()
    # and not much later either (poll interval 0.05 s)
    assert started["delay"] < t0 + 2.5 and started["run_at"] < at.timestamp() + 1.0


async def test_allow_concurrent_false_holds_across_3_workers(qenv: QueueEnv) -> None:
    workers = [qenv.start_worker(concurrency=8) for _ in range(3)]
    await qenv.wait_ready(*workers)
    created = await qenv.app.enqueue_many(
        [EnqueueRequest("exclusive", {"seconds": 0.03}) for _ in range(24)]
    )
    await qenv.wait_finished([c.run.id for c in created], within=60)
    starts = {r["run"]: r["t"] for r in qenv.records("start")}
    ends = {r["run"]: r["t"] for r in qenv.records("end")}
    intervals = sorted((starts[rid], ends[rid], rid) for rid in starts)
    assert len(intervals) == 24
    for (_, end, a), (start, _, b) in pairwise(intervals):
        assert start >= end, f"runs {a} and {b} overlapped"


async def test_concurrency_key_limits_per_tenant_not_across(qenv: QueueEnv) -> None:
    tenants = ("t1", "t2", "t3")
    created = await qenv.app.enqueue_many(
        [
            EnqueueRequest("per-tenant", {"tenant": t, "seconds": 0.3})
            for _ in range(3)
            for t in tenants
        ]
    )
    assert {c.run.concurrency_key for c in created} == {f"per-tenant:{t}" for t in tenants}
    for _ in range(2):
        qenv.start_worker(concurrency=6)
    await qenv.wait_finished([c.run.id for c in created], within=30)
    spans = {}
    for r in qenv.records("start"):
        spans[r["run"]] = [r["t"], None, r["tenant"]]
    for r in qenv.records("end"):
        spans[r["run"]][1] = r["t"]
    for tenant in tenants:
        mine = sorted((s, e) for s, e, t in spans.values() if t == tenant)
        assert len(mine) == 3
        for (_, end), (start, _) in pairwise(mine):
            assert start >= end, f"tenant {tenant}: two runs overlapped"
    # different tenants did run at the same time
    overlapping = sum(
        1
        for a in spans.values()
        for b in spans.values()
        if a[2] < b[2] and a[0] < b[1] and b[0] < a[1]
    )
    assert overlapping >= 3
