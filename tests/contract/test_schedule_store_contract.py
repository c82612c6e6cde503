"""The schedule part of the store contract, run unchanged against every backend through `Store`.

(The scheduler's whole path is tested in tests/integration/test_scheduler.py; this covers the
store queries it relies on one by one.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobglass.models import Run, RunStatus
from jobglass.stores import Store
from jobglass.stores.base import ClaimParams, Finish, NewRun


async def create(store: Store, job: str, key: str | None, **kw: Any) -> Run:
    kw.setdefault("run_at", datetime.now(UTC) - timedelta(seconds=60))
    [created] = await store.create_runs([NewRun(job_name=job, concurrency_key=key, **kw)])
    return created.run


async def claim(store: Store, queue: str) -> Run:
    [run] = await store.claim_runs(ClaimParams("w1", [queue], 1, 30.0))
    return run


# -- live runs by concurrency key (the scheduler's overlap check) ------------------------------


async def test_live_runs_by_concurrency_key(store: Store) -> None:
    assert await store.live_runs_by_concurrency_key([]) == {}
    assert await store.live_runs_by_concurrency_key(["nothing"]) == {}

    # key "a": two queued runs and, later, a running one: the running one is reported
    a1 = await create(store, "a", "a", trigger="API")
    a2 = await create(store, "a", "a", trigger="SCHEDULE", schedule_name="a.daily")
    live = await store.live_runs_by_concurrency_key(["a"])
    assert [(k, v.run_id, v.status, v.trigger, v.schedule_name) for k, v in live.items()] == [
        ("a", a1.id, "QUEUED", "API", None)  # the oldest when none runs
    ]
    a3 = await create(store, "a", "a", queue="fast", trigger="SCHEDULE", schedule_name="a.b")
    running = await claim(store, "fast")
    assert running.id == a3.id
    live = await store.live_runs_by_concurrency_key(["a", "a", "b"])  # repeats are harmless
    assert list(live) == ["a"]
    assert (live["a"].run_id, live["a"].status, live["a"].schedule_name) == (a3.id, "RUNNING",
                                                                             "a.b")  # fmt: skip

    # key "b:eu": finished and cancelled runs are not live; a run without a key never counts
    b1 = await create(store, "b", "b:eu", queue="b")
    claimed = await claim(store, "b")
    assert claimed.id == b1.id
    [ok] = await store.finish_runs([Finish(b1.id, claimed.attempt, RunStatus.SUCCESS)])
    assert ok
    b2 = await create(store, "b", "b:eu")
    assert await store.request_cancel(b2.id) is not None
    await create(store, "b", None)
    assert await store.live_runs_by_concurrency_key(["b:eu", "b"]) == {}
    b3 = await create(store, "b", "b:eu")
    live = await store.live_runs_by_concurrency_key(["a", "b:eu", "b:us"])
    assert {k: (v.run_id, v.status) for k, v in live.items()} == {
        "a": (a3.id, "RUNNING"),
        "b:eu": (b3.id, "QUEUED"),
    }
    assert a2.id not in {v.run_id for v in live.values()}
