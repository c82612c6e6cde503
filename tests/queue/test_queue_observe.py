"""Worker-level views: hooks fire, queue_stats counts, workers() lists the live ones."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter

import pytest
from qhelpers import QueueEnv
from qjobs import make_app

from jobglass import RunStatus

pytestmark = pytest.mark.slow


async def test_hooks_stats_and_workers(qenv: QueueEnv) -> None:
    app = qenv.app
    a = qenv.start_worker(concurrency=4)
    b = qenv.start_worker(concurrency=3, queues="default,other")
    await qenv.wait_ready(a, b)

    async def both_listed() -> list[object]:
        found = await app.workers()
        return found if len(found) == 2 else []

    listed = await qenv.wait_until(both_listed, 10, "both workers listed")
    by_pid = {w.pid: w for w in listed}
    assert set(by_pid) == {a.pid, b.pid}
    assert by_pid[a.pid].queues == ["default"] and by_pid[a.pid].concurrency == 4
    assert by_pid[b.pid].queues == ["default", "other"] and by_pid[b.pid].concurrency == 3
    for w in listed:
        assert w.heartbeat_at is not None and time.time() - w.heartbeat_at.timestamp() < 3

    # a mix of outcomes; "side" is served by nobody, so its runs wait
    ok = [(await app.enqueue("noop", {"n": i})).id for i in range(3)]
    fatal = (await app.enqueue("flaky", {"fail_times": 1, "kind": "fatal"})).id
    retried = (await app.enqueue("flaky", {"fail_times": 1})).id
    running = (await app.enqueue("cooperative", {"linger": 0})).id
    waiting = [(await app.enqueue("noop", queue="side")).id for _ in range(3)]
    delayed = [(await app.enqueue("noop", queue="side", delay=600)).id for _ in range(2)]
    queued_cancel = (await app.enqueue("noop", queue="side", delay=600)).id

    await qenv.wait_finished([*ok, fatal, retried], within=20)
    await qenv.wait_until(lambda: qenv.records("start", run=running), 10, "cooperative start")

    async def one_running() -> bool:
        return sum(w.running for w in await app.workers()) == 1

    await qenv.wait_until(one_running, 5, "workers() to count the running run")
    stats = await app.queue_stats()
    assert stats["default"] | {"oldestWaitingAgeSeconds": None} == {
        "waiting": 0,
        "delayed": 0,
        "active": 1,
        "retrying": 0,
        "completed": 4,
        "failed": 1,
        "cancelled": 0,
        "oldestWaitingAgeSeconds": None,
    }
    side = stats["side"]
    assert (side["waiting"], side["delayed"], side["active"]) == (3, 3, 0)
    assert side["oldestWaitingAgeSeconds"] is not None and side["oldestWaitingAgeSeconds"] >= 0
    cli = await qenv.cli("stats", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["side"]["waiting"] == 3

    # cancel: a running run (hook in the worker) and a queued one (hook in this process)
    await app.cancel(running)
    await app.cancel(queued_cancel)
    await qenv.wait_finished([running, queued_cancel], within=10)

    def hooks_in() -> list[dict[str, object]]:
        hooks = qenv.records("hook")
        return hooks if len(hooks) >= 8 else []

    hooks = await qenv.wait_until(hooks_in, 10, "all hooks")
    seen = Counter((h["run"], h["hook"], h["status"]) for h in hooks)
    assert seen == Counter(
        {
            **{(rid, "completed", "SUCCESS"): 1 for rid in ok},
            (fatal, "failed", "FAILED"): 1,
            (retried, "retrying", "RETRYING"): 1,
            (retried, "completed", "SUCCESS"): 1,
            (running, "cancelled", "CANCELLED"): 1,
            (queued_cancel, "cancelled", "CANCELLED"): 1,
        }
    )
    stats = await app.queue_stats()
    assert (stats["default"]["completed"], stats["default"]["cancelled"]) == (4, 1)
    assert stats["side"]["cancelled"] == 1 and stats["side"]["delayed"] == 2
    assert {(await app.get_run(r)).status for r in waiting + delayed} == {RunStatus.QUEUED}

    # a stopped worker is dropped at once; a killed one once its heartbeat is stale
    a.signal(signal.SIGTERM)
    assert await a.wait_exit(10) == 0
    assert [w.pid for w in await app.workers()] == [b.pid]
    out = await qenv.cli("workers")
    assert out.returncode == 0 and str(b.pid) in out.stdout and str(a.pid) not in out.stdout
    b.signal(signal.SIGKILL)
    await b.wait_exit(10)
    assert [w.pid for w in await app.workers()] == [b.pid]  # stale only after 2 leases
    quick = make_app(qenv.url, lease_seconds=0.5)  # stale after 1 s
    async with quick:
        await asyncio.sleep(1.2)
        assert await quick.workers() == []
    out = await qenv.cli("workers", env={"JOBGLASS_LEASE_SECONDS": "0.5"})
    assert "no live workers" in out.stdout
