"""The store contract: one suite, run unchanged against every backend through `Store`.

Backend differences are capabilities, not names: `store.pushes_events` (PostgreSQL NOTIFY vs the
SQLite outbox) and joining a caller's transaction (`create_runs(conn=...)`, PostgreSQL only).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from jobglass.config import Settings
from jobglass.errors import SchemaTooNew
from jobglass.models import LogLine, RetryPolicy, Run, RunStatus
from jobglass.stores import Store, open_store, queries
from jobglass.stores.base import (
    ClaimParams,
    Feedback,
    Finish,
    Heartbeat,
    NewRun,
    Retention,
    RunFilter,
    WorkerInfo,
)

# -- helpers --------------------------------------------------------------------------------


def backend_of(url: str) -> str:
    return "postgres" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def now() -> datetime:
    return datetime.now(UTC)


def epoch() -> float:
    """A log line's time (LogLine keeps epoch seconds)."""
    return now().timestamp()


def ago(seconds: float) -> datetime:
    return now() - timedelta(seconds=seconds)


def new(job: str = "job", **kw: Any) -> NewRun:
    kw.setdefault("run_at", ago(60))
    return NewRun(job_name=job, **kw)


async def create(store: Store, job: str = "job", **kw: Any) -> Run:
    [created] = await store.create_runs([new(job, **kw)])
    assert created.created
    return created.run


async def claim(
    store: Store,
    limit: int = 10,
    queues: tuple[str, ...] = ("default",),
    worker: str = "w1",
    lease: float = 30.0,
) -> list[Run]:
    return await store.claim_runs(ClaimParams(worker, list(queues), limit, lease))


async def finish(store: Store, run: Run, status: RunStatus = RunStatus.SUCCESS, **kw: Any) -> bool:
    [ok] = await store.finish_runs([Finish(run.id, run.attempt, status, **kw)])
    return ok


async def finished_run(
    store: Store, job: str = "job", status: RunStatus = RunStatus.SUCCESS, **kw: Any
) -> Run:
    run = await create(store, job, queue=f"q-{job}", **kw)
    [claimed] = await claim(store, queues=(f"q-{job}",))
    assert claimed.id == run.id
    assert await finish(store, claimed, status)
    got = await store.get_run(run.id)
    assert got is not None
    return got


def lines(run_id: int, seqs: range, attempt: int = 1, level: str = "info") -> list[LogLine]:
    return [
        LogLine(run_id, seq, level, "stage", f"line {seq}", {"seq": seq}, epoch(), attempt)
        for seq in seqs
    ]


def feedback(run: Run, logs: list[LogLine], attempt: int | None = None, **kw: Any) -> Feedback:
    values: dict[str, Any] = {
        "stage": "Working",
        "progress_current": 5,
        "progress_total": 10,
        "entity_type": "users",
        "progress_message": "Working (5 / 10)",
        "outcome": {"synced": 5},
        "has_warnings": False,
    }
    values.update(kw)
    return Feedback(run.id, run.attempt if attempt is None else attempt, logs, **values)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def raw_execute(url: str, sql: str) -> None:
    """Write behind the store's back (setting up states the interface cannot reach)."""
    if backend_of(url) == "sqlite":
        from jobglass.stores.sqlite import sqlite_path

        conn = sqlite3.connect(sqlite_path(url))
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(sql)


#: PostgreSQL-only capabilities run on PostgreSQL alone (no sqlite variant that would skip).
ONLY_POSTGRES = pytest.mark.parametrize("store_url", ["postgres"], indirect=True)


@pytest.fixture
async def other_store(store_url: str, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database: another process, as far as the data goes."""
    s = open_store(Settings(database_url=store_url))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


# -- schema ---------------------------------------------------------------------------------


async def test_migrate_is_idempotent_and_versioned(store: Store, store_url: str) -> None:
    known = len(queries.migrations(backend_of(store_url)))
    assert known >= 1
    assert await store.migrate() == known
    assert await store.migrate() == known
    assert await store.schema_version() == known


async def test_first_migrations_racing_are_safe(store_url: str, tmp_path: Path) -> None:
    """Several processes starting together on an empty database: one migrates, all agree."""
    known = len(queries.migrations(backend_of(store_url)))
    if backend_of(store_url) == "sqlite":
        url, drop = f"sqlite:///{tmp_path}/fresh.db", None
    else:
        import psycopg

        parts = urlsplit(store_url)
        fresh = parts.path.strip("/") + "_fresh"
        url = urlunsplit(parts._replace(path="/" + fresh))
        with psycopg.connect(store_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{fresh}"')
        drop = f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)'
    stores = [open_store(Settings(database_url=url)) for _ in range(3)]
    try:
        for s in stores:
            await s.open()
        assert await stores[0].schema_version() == 0
        assert await asyncio.gather(*(s.migrate() for s in stores)) == [known] * 3
        assert [await s.schema_version() for s in stores] == [known] * 3
        assert await stores[1].create_runs([new()])
    finally:
        for s in stores:
            await s.close()
        if drop:
            raw_execute(store_url, drop)


async def test_schema_newer_than_known_is_refused(store: Store, store_url: str) -> None:
    future = len(queries.migrations(backend_of(store_url))) + 1
    applied = "now()" if backend_of(store_url) == "postgres" else "0"
    raw_execute(
        store_url,
        f"INSERT INTO schema_migrations (version, name, applied_at)"
        f" VALUES ({future}, 'from_the_future', {applied})",
    )
    with pytest.raises(SchemaTooNew, match="upgrade jobglass"):
        await store.migrate()
    assert await store.schema_version() == future


# -- create ---------------------------------------------------------------------------------


def _three_kinds(fire: datetime) -> tuple[NewRun, NewRun, NewRun]:
    """A run with every option set (a job_id too), a plain one, one that starts RUNNING."""
    rich = NewRun(
        job_name="user-sync",
        queue="imports",
        params={"batch_size": 100, "nested": {"a": [1, 2.5, None, "x"]}, "emoji": "\u2713"},
        priority=7,
        run_at=fire + timedelta(seconds=30),
        job_id="sync-nightly",
        retry=RetryPolicy(attempts=3, backoff="fixed", delay=5.0, max_delay=60.0, jitter=0.1),
        timeout=600.0,
        trigger="SCHEDULE",
        scope="tenant",
        algorithm_version="v2",
        correlation_id="corr-1",
        tenant_id="7",
        user_id="u-1",
        concurrency_key="tenant-7",
        trace_context={"traceparent": "00-abc-def-01"},
        keep_completed=5,
        keep_failed=6,
        schedule_name="nightly",
        fire_time=fire,
        next_fire_time=fire + timedelta(days=1),
    )
    plain = NewRun(job_name="plain")
    running = NewRun(job_name="inline", start_running=True, worker_id="proc-1", lease_seconds=60)
    return rich, plain, running


async def test_created_run_is_the_stored_run(store: Store) -> None:
    fire = now().replace(microsecond=123456)
    created = await store.create_runs(list(_three_kinds(fire)))
    assert [c.created for c in created] == [True, True, True]
    for c in created:
        assert await store.get_run(c.run.id) == c.run
    r, p, i = (c.run for c in created)
    assert r.status == RunStatus.QUEUED and r.attempt == 0 and r.max_attempts == 3
    assert r.params["nested"] == {"a": [1, 2.5, None, "x"]}
    assert r.retry.backoff == "fixed" and r.timeout == 600.0
    assert r.run_at is not None and r.fire_time is not None
    assert abs(r.run_at - fire - timedelta(seconds=30)) < timedelta(milliseconds=1)
    assert abs(r.fire_time - fire) < timedelta(milliseconds=1)
    assert r.trace_context == {"traceparent": "00-abc-def-01"}
    assert r.created_at is not None and r.created_at.tzinfo is not None
    assert p.params == {} and p.run_at is not None and p.job_id is None
    assert p.run_at <= now() + timedelta(seconds=1)
    assert i.status == RunStatus.RUNNING and i.attempt == 1 and i.worker_id == "proc-1"
    assert i.started_at is not None and i.lease_expires_at is not None
    assert abs(i.lease_expires_at - i.started_at - timedelta(seconds=60)) < timedelta(
        milliseconds=1
    )


async def test_a_run_created_alone_is_the_stored_run(store: Store) -> None:
    """One run a call (PostgreSQL sends its values as scalars, not arrays): the same runs as
    in a batch, each equal to what is stored."""
    fire = now().replace(microsecond=654321)
    alone = []
    for kind in _three_kinds(fire):
        [c] = await store.create_runs([kind])
        assert c.created and await store.get_run(c.run.id) == c.run
        alone.append(c.run)
    r, p, i = alone
    assert (r.job_id, r.queue, r.priority, r.tenant_id) == ("sync-nightly", "imports", 7, "7")
    assert r.params["nested"] == {"a": [1, 2.5, None, "x"]} and r.params["emoji"] == "\u2713"
    assert r.fire_time is not None and abs(r.fire_time - fire) < timedelta(milliseconds=1)
    assert r.keep_completed == 5 and r.keep_failed == 6 and r.schedule_name == "nightly"
    assert p.status == RunStatus.QUEUED and p.params == {} and p.job_id is None
    assert i.status == RunStatus.RUNNING and i.attempt == 1 and i.worker_id == "proc-1"
    assert i.lease_expires_at is not None and i.started_at is not None
    [again] = await store.create_runs([_three_kinds(fire)[0]])  # its job_id is live
    assert not again.created and again.run.id == r.id


async def test_job_id_dedupes_live_runs_only(store: Store) -> None:
    first = await create(store, job_id="nightly")
    [again] = await store.create_runs([new(job_id="nightly", params={"other": 1})])
    assert not again.created
    assert again.run.id == first.id and again.run.params == {}
    [claimed] = await claim(store)
    [while_running] = await store.create_runs([new(job_id="nightly")])
    assert not while_running.created and while_running.run.status == RunStatus.RUNNING
    assert await finish(store, claimed)
    [after] = await store.create_runs([new(job_id="nightly")])
    assert after.created and after.run.id != first.id


async def test_batch_create_keeps_input_order(store: Store) -> None:
    existing = await create(store, "old", job_id="taken")
    batch = [
        new("a", job_id="k"),
        new("b"),
        new("c", job_id="k"),
        new("d", job_id="taken"),
        new("e"),
    ]
    out = await store.create_runs(batch)
    assert [c.created for c in out] == [True, True, False, False, True]
    assert [c.run.job_name for c in out] == ["a", "b", "a", "old", "e"]
    assert out[2].run.id == out[0].run.id
    assert out[3].run.id == existing.id
    created_ids = [out[i].run.id for i in (0, 1, 4)]
    assert created_ids == sorted(created_ids)
    assert await store.create_runs([]) == []


async def test_big_batch_create(store: Store) -> None:
    out = await store.create_runs([new("bulk", params={"i": i}) for i in range(2000)])
    assert len(out) == 2000 and all(c.created for c in out)
    assert [c.run.params["i"] for c in out] == list(range(2000))
    ids = [c.run.id for c in out]
    assert ids == sorted(ids) and len(set(ids)) == 2000


async def test_big_batch_stores_every_field_as_given(store: Store) -> None:
    """PostgreSQL writes a big batch without job_ids by COPY (text format): values that text
    COPY must escape (tab, newline, backslash, a literal `\\N`) survive, every run stored
    is the run returned, ids follow the input order, and each queue is woken."""
    tricky = "tab\there, line\nbreak\r, back\\slash, \\N, 'q\" \u2713"
    fire = now().replace(microsecond=654321)
    batch = [
        NewRun(
            job_name=f"bulk-{i % 3}",
            queue=("imports", "exports")[i % 2],
            params={"i": i, "text": tricky, "nested": {"a": [1, 2.5, None, "\\N"]}},
            priority=i % 11 - 5,
            run_at=fire + timedelta(seconds=i) if i % 4 else None,
            retry=RetryPolicy(attempts=3, backoff="fixed", delay=5.0, max_delay=60.0, jitter=0.1),
            timeout=None if i % 5 else 12.5,
            trigger="SCHEDULE",
            scope="tenant",
            algorithm_version="\\N" if i % 7 == 0 else None,
            correlation_id=f"corr-{i}",
            tenant_id=tricky if i % 2 else None,
            user_id=f"user-{i}",
            concurrency_key=None if i % 3 else f"key\t{i}",
            trace_context={"traceparent": f"00-{i:032x}-{i:016x}-01"} if i % 2 else {},
            keep_completed=i % 9 or None,
            keep_failed=4,
            schedule_name="nightly" if i % 6 == 0 else None,
            fire_time=fire if i % 6 == 0 else None,
            next_fire_time=fire + timedelta(days=1) if i % 6 == 0 else None,
        )
        for i in range(700)
    ]
    received, task = (
        await _start_listening(store, lambda: _pg_probe(store))
        if store.pushes_events
        else (None, None)
    )
    try:
        out = await store.create_runs(batch)
        assert len(out) == 700 and all(c.created for c in out)
        ids = [c.run.id for c in out]
        assert ids == sorted(ids) and len(set(ids)) == 700
        for c in out:
            assert await store.get_run(c.run.id) == c.run
        assert [c.run.params["i"] for c in out] == list(range(700))
        assert out[1].run.tenant_id == tricky and out[0].run.algorithm_version == "\\N"
        assert out[0].run.run_at is not None and out[0].run.run_at == out[0].run.created_at
        stats = await store.queue_stats()
        assert stats["imports"]["waiting"] + stats["imports"]["delayed"] == 350
        if received is not None:
            await eventually(lambda: {"imports", "exports"} <= set(received.wakeups()))
            await eventually(lambda: {e["r"] for e in received.events()} >= set(ids))
            assert {(e["k"], e["f"], e["t"]) for e in received.events()} == {("status", 0, 0)}
    finally:
        if task is not None:
            await _stop(task)


async def test_big_batch_dedupes_job_ids_across_its_statements(store: Store) -> None:
    """PostgreSQL sends a big batch as several pipelined statements (`INSERT_CHUNK` rows
    each): a job_id repeated far apart, or already live, still resolves to one run."""
    existing = await create(store, "old", job_id="taken")
    batch = [new("bulk", params={"i": i}) for i in range(2500)]
    batch[5] = new("first", job_id="dup")
    batch[2200] = new("second", job_id="dup")
    batch[1100] = new("late", job_id="taken")
    out = await store.create_runs(batch)
    refused = {i for i, c in enumerate(out) if not c.created}
    assert refused == {1100, 2200}
    assert out[2200].run.id == out[5].run.id and out[2200].run.job_name == "first"
    assert out[1100].run.id == existing.id
    ids = [c.run.id for i, c in enumerate(out) if i not in refused]
    assert ids == sorted(ids) and len(set(ids)) == 2498
    stats = await store.queue_stats()
    assert stats["default"]["waiting"] == 2499  # the batch's 2,498 and the old run


# -- claim ----------------------------------------------------------------------------------


async def test_claim_order_priority_then_run_at_then_id(store: Store) -> None:
    t = ago(100)
    a = await create(store, "a", priority=0, run_at=t)
    b = await create(store, "b", priority=5, run_at=t + timedelta(seconds=2))
    c = await create(store, "c", priority=5, run_at=t + timedelta(seconds=1))
    d = await create(store, "d", priority=0, run_at=t)  # same run_at as a: id decides
    e = await create(store, "e", priority=-1, run_at=t - timedelta(seconds=50))
    first = await claim(store, limit=2)
    assert [r.id for r in first] == [c.id, b.id]
    rest = await claim(store, limit=10)
    assert [r.id for r in rest] == [a.id, d.id, e.id]
    for r in first + rest:
        assert r.status == RunStatus.RUNNING and r.attempt == 1 and r.worker_id == "w1"
        assert r.lease_expires_at is not None and r.started_at is not None
        assert r.lease_expires_at > r.started_at
    assert await claim(store) == []


async def test_claim_respects_due_time_and_queues(store: Store) -> None:
    later = await create(store, "later", run_at=now() + timedelta(hours=1))
    due = await create(store, "due")
    other = await create(store, "other", queue="emails", priority=9)
    assert [r.id for r in await claim(store, queues=("nope",))] == []
    assert [r.id for r in await claim(store, queues=("default",))] == [due.id]
    assert [r.id for r in await claim(store, queues=("default", "emails"))] == [other.id]
    assert await claim(store, queues=("default", "emails")) == []
    got = await store.get_run(later.id)
    assert got is not None and got.status == RunStatus.QUEUED


async def test_claim_concurrency_key_is_exclusive(store: Store) -> None:
    k1 = [await create(store, f"k1-{i}", concurrency_key="tenant-1") for i in range(3)]
    k2 = await create(store, "k2", concurrency_key="tenant-2")
    free = await create(store, "free")
    first = await claim(store, limit=10)
    assert sorted(r.id for r in first) == sorted([k1[0].id, k2.id, free.id])
    assert await claim(store, limit=10) == []
    running_k1 = next(r for r in first if r.concurrency_key == "tenant-1")
    assert await finish(store, running_k1)
    assert [r.id for r in await claim(store, limit=10)] == [k1[1].id]


async def test_concurrent_claims_never_share_a_run(store: Store, other_store: Store) -> None:
    await store.create_runs([new(f"r{i}") for i in range(120)])
    seen: list[list[int]] = [[], []]

    async def drain(s: Store, who: int) -> None:
        while True:
            got = await claim(s, limit=7, worker=f"w{who}")
            if not got:
                return
            seen[who].extend(r.id for r in got)
            await asyncio.sleep(0)

    await asyncio.gather(drain(store, 0), drain(other_store, 1))
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == len(set(seen[0]) | set(seen[1])) == 120


async def test_concurrent_claims_keep_keys_exclusive(store: Store, other_store: Store) -> None:
    keys = [f"key-{i}" for i in range(4)]
    await store.create_runs([new(f"r{i}", concurrency_key=keys[i % 4]) for i in range(24)])
    done = 0
    for _ in range(30):
        got = await asyncio.gather(claim(store, worker="a"), claim(other_store, worker="b"))
        running = [r for batch in got for r in batch]
        assert len({r.concurrency_key for r in running}) == len(running)
        listed = await store.list_runs(RunFilter(status=["RUNNING"], limit=100))
        assert len({r.concurrency_key for r in listed}) == len(listed)
        if running:
            await store.finish_runs([Finish(r.id, r.attempt, RunStatus.SUCCESS) for r in running])
        done += len(running)
        if done == 24:
            break
    assert done == 24


# -- feedback and logs ----------------------------------------------------------------------


async def test_feedback_is_fenced_by_attempt(store: Store) -> None:
    a = await create(store, "a")
    b = await create(store, "b")
    ra, rb = await claim(store)
    ok = await store.write_feedback(
        [
            feedback(ra, lines(ra.id, range(1, 4)), summary="done soon", has_warnings=True),
            feedback(rb, lines(rb.id, range(1, 3)), attempt=rb.attempt + 1),  # stale/foreign
        ]
    )
    assert ok == [True, False]
    got_a, got_b = await store.get_run(a.id), await store.get_run(b.id)
    assert got_a is not None and got_b is not None
    assert got_a.stage == "Working" and got_a.progress_current == 5 and got_a.progress_total == 10
    assert got_a.entity_type == "users" and got_a.progress_message == "Working (5 / 10)"
    assert got_a.outcome == {"synced": 5} and got_a.has_warnings and got_a.log_seq == 3
    assert got_a.summary == "done soon"
    assert got_b.stage is None and got_b.log_seq == 0
    assert [x.seq for x in await store.get_logs(a.id, min_level=None, limit=99, after=None)] == [
        1,
        2,
        3,
    ]
    assert await store.get_logs(b.id, min_level=None, limit=99, after=None) == []
    # a later flush without a summary keeps it; progress moves on
    assert await store.write_feedback([feedback(ra, lines(ra.id, range(4, 5)), stage="Next")])
    got_a = await store.get_run(a.id)
    assert got_a is not None and got_a.summary == "done soon" and got_a.stage == "Next"
    assert got_a.log_seq == 4
    # after the attempt ended, the same attempt's writes match nothing
    assert await finish(store, ra)
    assert await store.write_feedback([feedback(ra, lines(ra.id, range(5, 6)))]) == [False]
    assert len(await store.get_logs(a.id, min_level=None, limit=99, after=None)) == 4
    assert await store.write_feedback([]) == []


async def test_log_reads_level_threshold_after_and_limit(store: Store) -> None:
    await create(store)
    [run] = await claim(store)
    levels = ["debug", "info", "milestone", "warning", "error", "info", "error"]
    logs = [
        LogLine(run.id, seq, level, None, f"{level} {seq}", None, epoch(), 1)
        for seq, level in enumerate(levels, start=1)
    ]
    assert await store.write_feedback([feedback(run, logs)]) == [True]
    every = await store.get_logs(run.id, min_level=None, limit=100, after=None)
    assert [x.seq for x in every] == list(range(1, 8))
    assert every[0].level == "debug" and every[0].message == "debug 1" and every[0].attempt == 1
    assert every[0].created_at.tzinfo is not None
    warn = await store.get_logs(run.id, min_level="warning", limit=100, after=None)
    assert [(x.seq, x.level) for x in warn] == [(4, "warning"), (5, "error"), (7, "error")]
    assert [x.seq for x in await store.get_logs(run.id, min_level=None, limit=2, after=3)] == [4, 5]
    errors = await store.get_logs(run.id, min_level="error", limit=100, after=5)
    assert [x.seq for x in errors] == [7]
    assert await store.get_logs(run.id + 999, min_level=None, limit=10, after=None) == []


async def test_log_context_and_text_round_trip(store: Store) -> None:
    await create(store)
    [run] = await claim(store)
    context = {"user": {"id": 7, "tags": ["a", "b"]}, "ratio": 0.25, "ok": True, "none": None}
    logs = [
        LogLine(run.id, 1, "info", "Stage \u00e9", "quote ' and \\ and %s %(x)s", context, epoch()),
        LogLine(run.id, 2, "warning", None, "plain", None, epoch()),
    ]
    assert await store.write_feedback([feedback(run, logs)]) == [True]
    got = await store.get_logs(run.id, min_level=None, limit=10, after=None)
    assert got[0].message == "quote ' and \\ and %s %(x)s" and got[0].stage == "Stage \u00e9"
    assert got[0].context == context and got[1].context is None
    for sent, stored in zip(logs, got, strict=True):  # the time survives to the microsecond
        assert abs(stored.at - sent.at) < 1e-5
        assert abs((stored.created_at - sent.created_at).total_seconds()) < 1e-5


# -- finish, retry, cancel, requeue, delete --------------------------------------------------


async def test_finish_is_fenced_and_records_outcome(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    ra, rb = await claim(store)
    error = {"type": "ValueError", "message": "bad"}
    out = await store.finish_runs(
        [
            Finish(ra.id, ra.attempt + 1, RunStatus.SUCCESS),  # wrong attempt
            Finish(ra.id, ra.attempt, RunStatus.SUCCESS, result="a string", duration_ms=12),
            Finish(rb.id, rb.attempt, RunStatus.FAILED, error=error, duration_ms=5),
            Finish(rb.id, rb.attempt, RunStatus.FAILED),  # already finished above
        ]
    )
    assert out == [False, True, True, False]
    a, b = await store.get_run(ra.id), await store.get_run(rb.id)
    assert a is not None and b is not None
    assert a.status == RunStatus.SUCCESS and a.result == "a string" and a.duration_ms == 12
    assert a.finished_at is not None and a.lease_expires_at is None and a.error is None
    assert b.status == RunStatus.FAILED and b.error == error and b.errors == [error]
    assert await finish(store, ra) is False
    assert await store.finish_runs([]) == []


async def test_finish_with_last_feedback_is_one_fenced_write(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    ra, rb = await claim(store)
    last_a = feedback(ra, lines(ra.id, range(1, 3)), summary="Completed in 1s", stage="Done")
    stale_b = feedback(rb, lines(rb.id, range(1, 2)), attempt=rb.attempt + 1)  # not its attempt
    out = await store.finish_runs(
        [
            Finish(ra.id, ra.attempt, RunStatus.SUCCESS, result=1, duration_ms=3),
            Finish(rb.id, rb.attempt + 1, RunStatus.SUCCESS),  # fenced out
        ],
        [last_a, stale_b],
    )
    assert out == [True, False]
    a, b = await store.get_run(ra.id), await store.get_run(rb.id)
    assert a is not None and b is not None
    assert a.status == RunStatus.SUCCESS and a.result == 1 and a.summary == "Completed in 1s"
    assert a.stage == "Done" and a.progress_current == 5 and a.outcome == {"synced": 5}
    assert a.log_seq == 2
    logs = await store.get_logs(ra.id, min_level=None, limit=10, after=None)
    assert [x.seq for x in logs] == [1, 2]
    assert b.status == RunStatus.RUNNING and b.log_seq == 0 and b.stage is None
    assert await store.get_logs(rb.id, min_level=None, limit=10, after=None) == []


async def test_finish_batch_mixing_ends_with_and_without_feedback(store: Store) -> None:
    """Only the end that brings feedback sets the run's feedback columns; a repeated end in
    one call is refused; a run not in the call is left alone."""
    for job in ("a", "b", "c", "d"):
        await create(store, job)
    ra, rb, rc, rd = await claim(store)
    assert await store.write_feedback([feedback(rc, lines(rc.id, range(1, 2)), stage="Early")])
    out = await store.finish_runs(
        [
            Finish(ra.id, ra.attempt, RunStatus.SUCCESS, result="a"),
            Finish(rb.id, rb.attempt, RunStatus.FAILED, error={"type": "E", "message": "b"}),
            Finish(rc.id, rc.attempt, RunStatus.SUCCESS, result="c"),
            Finish(ra.id, ra.attempt, RunStatus.FAILED),  # a repeat: refused
        ],
        [feedback(rb, lines(rb.id, range(1, 3)), stage="Failing", summary="Failed")],
    )
    assert out == [True, True, True, False]
    a, b, c, d = [await store.get_run(r.id) for r in (ra, rb, rc, rd)]
    assert a is not None and b is not None and c is not None and d is not None
    assert (a.status, a.result, a.stage, a.summary) == (RunStatus.SUCCESS, "a", None, None)
    assert (b.status, b.stage, b.summary, b.log_seq) == (RunStatus.FAILED, "Failing", "Failed", 2)
    assert b.error == {"type": "E", "message": "b"} and b.progress_current == 5
    assert (c.status, c.result, c.stage, c.log_seq) == (RunStatus.SUCCESS, "c", "Early", 1)
    assert d.status == RunStatus.RUNNING and d.finished_at is None
    assert await store.finish_runs([Finish(rd.id, rd.attempt, RunStatus.SUCCESS)]) == [True]


async def test_retrying_run_is_claimable_again_at_retry_at(store: Store) -> None:
    await create(store, "later", retry=RetryPolicy(attempts=3))
    await create(store, "soon", retry=RetryPolicy(attempts=3))
    rl, rs = await claim(store)
    err = {"type": "TransientError", "message": "try again"}
    assert await store.finish_runs(
        [
            Finish(rl.id, 1, RunStatus.RETRYING, error=err, retry_at=now() + timedelta(hours=1)),
            Finish(rs.id, 1, RunStatus.RETRYING, error=err, retry_at=ago(1)),
        ]
    ) == [True, True]
    waiting = await store.get_run(rl.id)
    assert waiting is not None and waiting.status == RunStatus.RETRYING
    assert waiting.worker_id is None and waiting.finished_at is None and waiting.errors == [err]
    again = await claim(store)
    assert [r.id for r in again] == [rs.id]
    assert again[0].attempt == 2 and again[0].status == RunStatus.RUNNING
    second = {"type": "TransientError", "message": "again"}
    assert await finish(store, again[0], RunStatus.FAILED, error=second)
    failed = await store.get_run(rs.id)
    assert failed is not None and failed.errors == [err, second] and failed.error == second


async def test_request_cancel_queued_running_and_finished(store: Store) -> None:
    queued = await create(store, "q", queue="idle")
    await create(store, "r")
    [running] = await claim(store)
    done = await finished_run(store, "done")

    cancelled = await store.request_cancel(queued.id)
    assert cancelled is not None and cancelled.status == RunStatus.CANCELLED
    assert cancelled.finished_at is not None
    assert cancelled.error is not None and cancelled.error["type"] == "Cancelled"
    assert await claim(store, queues=("idle",)) == []

    asked = await store.request_cancel(running.id)
    assert asked is not None and asked.status == RunStatus.RUNNING and asked.cancel_requested
    beat = await store.heartbeat("w1", [(running.id, running.attempt)], 30)
    assert beat.cancel_requested == {running.id} and beat.lost == frozenset()

    unchanged = await store.request_cancel(done.id)
    assert unchanged is not None and unchanged.status == RunStatus.SUCCESS
    assert await store.request_cancel(10**9) is None


async def test_requeue_only_failed_or_cancelled(store: Store) -> None:
    ok = await finished_run(store, "ok")
    bad = await finished_run(store, "bad", RunStatus.FAILED)
    queued = await create(store, "waiting", queue="idle")
    assert await store.requeue(ok.id) is None
    assert await store.requeue(queued.id) is None
    assert await store.requeue(10**9) is None
    again = await store.requeue(bad.id)
    assert again is not None and again.status == RunStatus.QUEUED
    assert again.finished_at is None and again.max_attempts >= again.attempt + 1
    [claimed] = await claim(store, queues=("q-bad",))
    assert claimed.id == bad.id and claimed.attempt == 2
    cancelled = await store.request_cancel(queued.id)
    assert cancelled is not None
    requeued = await store.requeue(queued.id)
    assert requeued is not None and requeued.status == RunStatus.QUEUED


async def test_delete_only_finished_runs_with_their_logs(store: Store) -> None:
    live = await create(store, "live", queue="idle")
    await create(store, "logged")
    [run] = await claim(store)
    assert await store.write_feedback([feedback(run, lines(run.id, range(1, 4)))]) == [True]
    assert await store.delete_run(run.id) is False  # running
    assert await finish(store, run)
    assert await store.delete_run(live.id) is False  # queued
    assert await store.delete_run(run.id) is True
    assert await store.get_run(run.id) is None
    assert await store.get_logs(run.id, min_level=None, limit=10, after=None) == []
    assert await store.delete_run(run.id) is False
    assert await store.get_run(live.id) is not None


# -- leases and workers ---------------------------------------------------------------------


async def test_heartbeat_renews_lease_and_reports_lost_runs(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    ra, rb = await claim(store, lease=5)
    assert ra.lease_expires_at is not None
    beat = await store.heartbeat("w1", [(ra.id, ra.attempt), (rb.id, rb.attempt + 1)], 600)
    assert beat.lost == {rb.id} and beat.cancel_requested == frozenset()
    renewed = await store.get_run(ra.id)
    assert renewed is not None and renewed.lease_expires_at is not None
    assert renewed.lease_expires_at >= ra.lease_expires_at + timedelta(seconds=500)
    assert await finish(store, ra)
    beat = await store.heartbeat("w1", [(ra.id, ra.attempt)], 30)
    assert beat.lost == {ra.id}
    assert await store.heartbeat("w1", [], 30) == Heartbeat(frozenset(), frozenset())


async def test_a_workers_concurrent_writes_do_not_deadlock(store: Store) -> None:
    """Heartbeat, flusher and finisher write the same runs at once, in any order."""
    await store.create_runs([new(f"r{i}") for i in range(40)])
    runs = await claim(store, limit=40)
    rng = random.Random(7)

    async def beat(owned: bool = True) -> None:
        for _ in range(15):
            order = rng.sample(runs, len(runs))
            lost = (await store.heartbeat("w1", [(r.id, r.attempt) for r in order], 30)).lost
            assert not lost or not owned

    async def flush(owned: bool = True) -> None:
        for _ in range(15):
            order = rng.sample(runs, len(runs))
            accepted = await store.write_feedback([feedback(r, []) for r in order])
            assert all(accepted) or not owned

    await asyncio.gather(beat(), flush(), beat(), flush())
    order = rng.sample(runs, len(runs))
    finishes = [Finish(r.id, r.attempt, RunStatus.SUCCESS) for r in order]
    ending = await asyncio.gather(store.finish_runs(finishes), beat(False), flush(False))
    assert all(ending[0])


async def test_reclaim_expired_finds_expired_leases(store: Store) -> None:
    await create(store, "short")
    await create(store, "long", queue="other")
    [short] = await claim(store, lease=0.05)
    [long] = await claim(store, queues=("other",), lease=600)
    await asyncio.sleep(0.2)
    expired = await store.reclaim_expired()
    assert [r.id for r in expired] == [short.id]
    assert expired[0].status == RunStatus.RUNNING and expired[0].attempt == 1
    # the worker decides: here, a retry; the stale owner's writes are then refused
    assert await finish(store, short, RunStatus.RETRYING, retry_at=ago(1))
    assert await store.reclaim_expired() == []
    [again] = await claim(store)
    assert again.id == short.id and again.attempt == 2
    assert await store.write_feedback([feedback(short, [])]) == [False]
    assert long.lease_expires_at is not None


async def test_workers_are_listed_with_their_running_count(store: Store) -> None:
    w1 = WorkerInfo("w1", "host-a", 101, ["default", "emails"], 4)
    w2 = WorkerInfo("w2", "host-b", 102, ["default"], 2)
    await store.upsert_worker(w1)
    await store.upsert_worker(w2)
    await create(store)
    await claim(store, worker="w1")
    listed = {w.id: w for w in await store.list_workers(stale_after=60)}
    assert set(listed) == {"w1", "w2"}
    assert listed["w1"].queues == ["default", "emails"] and listed["w1"].running == 1
    assert listed["w1"].hostname == "host-a" and listed["w1"].pid == 101
    assert listed["w1"].concurrency == 4 and listed["w2"].running == 0
    started = listed["w1"].started_at
    assert started is not None and listed["w1"].heartbeat_at is not None
    await store.upsert_worker(w1)
    again = {w.id: w for w in await store.list_workers(stale_after=60)}
    assert again["w1"].started_at == started
    await store.remove_worker("w2")
    assert [w.id for w in await store.list_workers(stale_after=60)] == ["w1"]
    assert listed["w1"].to_json()["queues"] == ["default", "emails"]


# -- reads ----------------------------------------------------------------------------------


async def test_queue_stats_counts(store: Store) -> None:
    await create(store, "waiting-1", queue="a", run_at=ago(30))
    await create(store, "waiting-2", queue="a", run_at=ago(5))
    await create(store, "delayed", queue="a", run_at=now() + timedelta(hours=1))
    await create(store, "active", queue="a", priority=9)
    await create(store, "retry", queue="a", priority=8)
    [active, retry] = await claim(store, limit=2, queues=("a",))
    await finish(store, retry, RunStatus.RETRYING, retry_at=now() + timedelta(hours=1))
    await finished_run(store, "x", RunStatus.SUCCESS)
    await create(store, "other", queue="b", run_at=ago(2))
    stats = await store.queue_stats()
    a = stats["a"]
    assert {k: a[k] for k in a if k != "oldestWaitingAgeSeconds"} == {
        "waiting": 2,
        "delayed": 1,
        "active": 1,
        "retrying": 1,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert 29 <= a["oldestWaitingAgeSeconds"] < 120
    assert stats["b"]["waiting"] == 1 and 1 <= stats["b"]["oldestWaitingAgeSeconds"] < 60
    assert stats["q-x"]["completed"] == 1 and stats["q-x"]["oldestWaitingAgeSeconds"] is None
    assert active.job_name == "active"


async def test_finished_per_minute_counts_by_queue_and_minute_of_the_end(
    store: Store, store_url: str
) -> None:
    """The throughput chart's source: runs by the minute they *finished* (not were created),
    SUCCESS and FAILED only, from `since` on (inclusive)."""
    minute = (int(now().timestamp()) // 60) * 60 - 300  # five whole minutes ago
    since = minute - 600

    async def ended(job: str, queue: str, status: RunStatus, at: float, **kw: Any) -> Run:
        run = await create(store, job, queue=queue, **kw)
        [claimed] = await claim(store, queues=(queue,))
        assert await finish(store, claimed, status)
        stamp = f"to_timestamp({at})" if backend_of(store_url) == "postgres" else str(at)
        raw_execute(store_url, f"UPDATE runs SET finished_at = {stamp} WHERE id = {run.id}")
        return run

    await ended("j1", "a", RunStatus.SUCCESS, minute + 10)
    await ended("j2", "a", RunStatus.FAILED, minute + 50)
    await ended("j3", "a", RunStatus.SUCCESS, minute + 70)
    await ended("j2", "a", RunStatus.SUCCESS, since - 1)  # before the window
    await ended("j3", "b", RunStatus.FAILED, since)  # the window's first instant counts
    # created three hours ago (or retried since), finished inside the window: counted
    old = await ended("j1", "b", RunStatus.SUCCESS, minute + 30)
    created = (
        "now() - interval '3 hours'"
        if backend_of(store_url) == "postgres"
        else str(now().timestamp() - 3 * 3600)
    )
    raw_execute(store_url, f"UPDATE runs SET created_at = {created} WHERE id = {old.id}")
    # neither completed nor failed: never counted
    cancelled = await create(store, "j1", queue="a")
    assert await store.request_cancel(cancelled.id) is not None
    await create(store, "j4", queue="a")
    [retrying] = await claim(store, queues=("a",))
    assert await finish(store, retrying, RunStatus.RETRYING, retry_at=now() + timedelta(hours=1))
    await create(store, "j5", queue="a")
    await claim(store, queues=("a",))  # RUNNING

    buckets = await store.finished_per_minute(datetime.fromtimestamp(since, UTC))
    got = [(b.queue, int(b.minute.timestamp()), b.completed, b.failed) for b in buckets]
    assert got == [
        ("a", minute, 1, 1),
        ("a", minute + 60, 1, 0),
        ("b", since, 0, 1),
        ("b", minute, 1, 0),
    ]
    assert all(b.minute.tzinfo is not None for b in buckets)
    later = await store.finished_per_minute(datetime.fromtimestamp(minute + 60, UTC))
    assert [(b.queue, b.completed, b.failed) for b in later] == [("a", 1, 0)]
    assert await store.finished_per_minute(now() + timedelta(minutes=1)) == []


async def test_list_runs_filters_and_cursor(store: Store) -> None:
    t0 = now()
    imports = [await create(store, "user-import", tenant_id="7") for _ in range(5)]
    other = await create(store, "report", correlation_id="corr-xyz", queue="reports")
    failed = await finished_run(store, "broken", RunStatus.FAILED)

    def ids(runs: list[Run]) -> list[int]:
        return [r.id for r in runs]

    every = await store.list_runs(RunFilter(limit=100))
    assert ids(every) == sorted(ids(every), reverse=True) and len(every) == 7
    by_name = await store.list_runs(RunFilter(job_name="user-import", limit=100))
    assert ids(by_name) == [r.id for r in reversed(imports)]
    page1 = await store.list_runs(RunFilter(job_name="user-import", limit=2))
    page2 = await store.list_runs(
        RunFilter(job_name="user-import", limit=2, before_id=page1[-1].id)
    )
    page3 = await store.list_runs(
        RunFilter(job_name="user-import", limit=2, before_id=page2[-1].id)
    )
    assert ids(page1 + page2 + page3) == ids(by_name)
    assert ids(await store.list_runs(RunFilter(status=["FAILED"]))) == [failed.id]
    both = await store.list_runs(RunFilter(status=["FAILED", "QUEUED"], limit=100))
    assert len(both) == 7
    assert ids(await store.list_runs(RunFilter(queue="reports"))) == [other.id]
    assert len(await store.list_runs(RunFilter(tenant_id="7", limit=100))) == 5
    assert ids(await store.list_runs(RunFilter(correlation_id="corr-xyz"))) == [other.id]
    assert ids(await store.list_runs(RunFilter(text="xyz"))) == [other.id]
    assert len(await store.list_runs(RunFilter(text="IMPORT", limit=100))) == 5
    assert await store.list_runs(RunFilter(text="%")) == []
    assert await store.list_runs(RunFilter(text="_")) == []  # wildcards are literal text
    recent = await store.list_runs(RunFilter(created_after=t0 - timedelta(seconds=5), limit=100))
    assert len(recent) == 7
    assert await store.list_runs(RunFilter(created_before=t0 - timedelta(hours=1))) == []


async def test_list_runs_treats_sql_text_as_data(store: Store) -> None:
    evil = "'; DROP TABLE runs; --"
    run = await create(store, evil, queue=evil)
    for flt in (
        RunFilter(text=evil),
        RunFilter(job_name=evil),
        RunFilter(queue=evil),
        RunFilter(tenant_id=evil),
        RunFilter(status=[evil]),
    ):
        found = await store.list_runs(flt)
        assert found == ([] if flt.tenant_id or flt.status else [run])
    assert await store.get_run(run.id) is not None
    assert len(await store.list_runs(RunFilter())) == 1


# -- maintenance ----------------------------------------------------------------------------


async def test_prune_keeps_newest_per_job_and_never_live_runs(store: Store) -> None:
    await create(store, "p", queue="q-p")
    [logged] = await claim(store, queues=("q-p",))
    assert await store.write_feedback([feedback(logged, lines(logged.id, range(1, 3)))])
    assert await finish(store, logged)
    ok = [logged] + [await finished_run(store, "p") for _ in range(3)]
    bad = [await finished_run(store, "p", RunStatus.FAILED) for _ in range(3)]
    live = await create(store, "p", queue="idle")
    other = [await finished_run(store, "other") for _ in range(3)]
    keep = {"p": Retention(keep_completed=2, keep_failed=1)}
    deleted = await store.prune(keep, Retention())
    assert deleted == 2 + 2
    remaining = {r.id for r in await store.list_runs(RunFilter(job_name="p", limit=100))}
    assert remaining == {ok[2].id, ok[3].id, bad[2].id, live.id}
    assert await store.get_logs(logged.id, min_level=None, limit=10, after=None) == []
    assert all([await store.get_run(r.id) for r in other])
    # age-based retention, and the default rule for jobs without their own
    assert await store.prune({}, Retention(max_age_days=0)) == 3 + 3
    left = await store.list_runs(RunFilter(limit=100))
    assert [r.id for r in left] == [live.id]
    assert await store.prune({}, Retention(keep_completed=0, keep_failed=0, max_age_days=0)) == 0


# -- events ---------------------------------------------------------------------------------


async def test_changes_reach_other_processes(store: Store, other_store: Store) -> None:
    """SQLite: an outbox followed by `events_after`; PostgreSQL: NOTIFY through `listen`."""
    if store.pushes_events:
        await _check_notifications(store, other_store)
    else:
        await _check_outbox(store, other_store)


async def _check_outbox(store: Store, follower: Store) -> None:
    start = await follower.last_event_id()
    created = await create(store, "a")
    [run] = await claim(store)
    assert await store.write_feedback([feedback(run, lines(run.id, range(1, 4)))]) == [True]
    assert await store.write_feedback([feedback(run, [], attempt=9)]) == [False]
    assert await store.write_feedback([feedback(run, [])]) == [True]
    assert await finish(store, run)
    rb, rc = await ends_with_last_lines(store)
    events = await follower.events_after(start)
    assert [(e.run_id, e.kind, e.log_from, e.log_to) for e in events] == [
        (created.id, "status", 0, 0),  # a new run shows up on other processes' streams
        (run.id, "feedback", 1, 3),
        (run.id, "feedback", 0, 0),
        (run.id, "status", 0, 0),
        (rb.id, "status", 0, 0),
        (rc.id, "status", 0, 0),
        (rb.id, "feedback", 1, 2),  # an end with its last lines: the lines' event first
        (rb.id, "status", 0, 0),
        (rc.id, "status", 0, 0),
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert await follower.last_event_id() == events[-1].id
    assert await follower.events_after(events[-1].id) == []
    assert [e.kind for e in await follower.events_after(start, limit=1)] == ["status"]


async def ends_with_last_lines(store: Store, queue: str = "default") -> tuple[Run, Run]:
    """Two new runs ended by one `finish_runs`, the first with its last two lines."""
    await create(store, "b", queue=queue)
    await create(store, "c", queue=queue)
    rb, rc = await claim(store, limit=2, queues=(queue,))
    ends = [Finish(r.id, r.attempt, RunStatus.SUCCESS) for r in (rb, rc)]
    last = feedback(rb, lines(rb.id, range(1, 3)))
    assert await store.finish_runs(ends, [last]) == [True, True]
    return rb, rc


class Received:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    async def __call__(self, channel: str, payload: str) -> None:
        self.items.append((channel, payload))

    def events(self) -> list[dict[str, Any]]:
        return [e for ch, p in self.items if ch == "jobglass_events" for e in json.loads(p)]

    def wakeups(self) -> list[str]:
        return [p for ch, p in self.items if ch == "jobglass_wakeup"]


async def _start_listening(
    store: Store, probe: Callable[[], Awaitable[None]]
) -> tuple[Received, asyncio.Task[None]]:
    received = Received()
    task = asyncio.create_task(store.listen(received))
    deadline = asyncio.get_running_loop().time() + 10
    while "probe" not in received.wakeups():
        assert asyncio.get_running_loop().time() < deadline, "listener never started"
        await probe()
        await asyncio.sleep(0.05)
    return received, task


async def _pg_probe(store: Store) -> None:
    async with store.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute("SELECT pg_notify('jobglass_wakeup', 'probe')")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _check_notifications(store: Store, follower: Store) -> None:
    assert await follower.events_after(0) == [] and await follower.last_event_id() == 0
    received, task = await _start_listening(follower, lambda: _pg_probe(store))
    try:
        first = await create(store, "a", queue="emails")
        more = await store.create_runs([new("b", queue="emails"), new("c", queue="sms")])
        await eventually(lambda: sorted(received.wakeups()).count("emails") == 2)
        await eventually(lambda: "sms" in received.wakeups())
        [run] = await claim(store, queues=("emails",), limit=1)
        assert await store.write_feedback([feedback(run, lines(run.id, range(1, 4)))]) == [True]
        assert await store.write_feedback([feedback(run, [], attempt=9)]) == [False]
        assert await finish(store, run)
        rb, rc = await ends_with_last_lines(store, queue="ends")
        await eventually(lambda: len(received.events()) >= 10)
        await asyncio.sleep(0.1)
        new_ids = [first.id, *(c.run.id for c in more)]
        assert received.events() == [
            *({"r": rid, "k": "status", "f": 0, "t": 0} for rid in new_ids),
            {"r": run.id, "k": "feedback", "f": 1, "t": 3},
            {"r": run.id, "k": "status", "f": 0, "t": 0},
            {"r": rb.id, "k": "status", "f": 0, "t": 0},
            {"r": rc.id, "k": "status", "f": 0, "t": 0},
            {"r": rb.id, "k": "feedback", "f": 1, "t": 2},  # the lines' event first
            {"r": rb.id, "k": "status", "f": 0, "t": 0},
            {"r": rc.id, "k": "status", "f": 0, "t": 0},
        ]
    finally:
        await _stop(task)


# -- PostgreSQL-only capabilities ------------------------------------------------------------


@ONLY_POSTGRES
async def test_a_big_batch_of_ends_notifies_in_order(store: Store) -> None:
    """Ends with their last lines, more than one NOTIFY payload's worth: every event arrives,
    in input order, each run's lines before its end."""
    received, task = await _start_listening(store, lambda: _pg_probe(store))
    try:
        await store.create_runs([new(f"r{i}", queue="big") for i in range(150)])
        runs = await claim(store, limit=150, queues=("big",))
        ends = [Finish(r.id, r.attempt, RunStatus.SUCCESS) for r in runs]
        last = [feedback(r, lines(r.id, range(1, 2))) for r in runs]
        assert await store.finish_runs(ends, last) == [True] * 150
        await eventually(lambda: len(received.events()) >= 450)
        ends_seen = [(e["r"], e["k"]) for e in received.events()[150:]]
        assert ends_seen == [(r.id, k) for r in runs for k in ("feedback", "status")]
    finally:
        await _stop(task)


async def test_create_runs_joins_the_callers_transaction(store: Store) -> None:
    if not store.pushes_events:
        with pytest.raises(TypeError):
            await store.create_runs([new()], conn=object())
        return
    received, task = await _start_listening(store, lambda: _pg_probe(store))
    try:
        connection = store.connection  # type: ignore[attr-defined]
        big = 600  # a batch this big goes by COPY (PostgresStore._copy_runs)
        async with connection() as conn, conn.transaction(force_rollback=True):
            [rolled] = await store.create_runs([new(queue="tx-rolled")], conn=conn)
            assert rolled.created
            rolled_big = await store.create_runs([new(queue="tx-rolled")] * big, conn=conn)
            assert all(c.created for c in rolled_big)
        assert await store.get_run(rolled.run.id) is None
        assert await store.get_run(rolled_big[-1].run.id) is None
        async with connection() as conn, conn.transaction():
            [kept] = await store.create_runs([new(queue="tx-kept")], conn=conn)
            kept_big = await store.create_runs([new(queue="tx-kept-big")] * big, conn=conn)
            await asyncio.sleep(0.2)
            assert not {"tx-kept", "tx-kept-big"} & set(received.wakeups())  # not before commit
            assert not {e["r"] for e in received.events()} & {c.run.id for c in kept_big}
        assert await store.get_run(kept.run.id) is not None
        assert await store.get_run(kept_big[-1].run.id) == kept_big[-1].run
        await eventually(lambda: {"tx-kept", "tx-kept-big"} <= set(received.wakeups()))
        await eventually(
            lambda: {e["r"] for e in received.events()} >= {c.run.id for c in kept_big}
        )
        assert "tx-rolled" not in received.wakeups()
        assert not {e["r"] for e in received.events()} & {c.run.id for c in rolled_big}
        with pytest.raises(TypeError):
            await store.create_runs([new()], conn=object())
    finally:
        await _stop(task)


@ONLY_POSTGRES
async def test_listen_reconnects_after_a_lost_connection(
    store: Store, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    received, task = await _start_listening(store, lambda: _pg_probe(store))
    try:
        raw_execute(
            store_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'jobglass-listen' AND datname = current_database()",
        )
        await eventually(lambda: any(ch == "jobglass_reconnected" for ch, _ in received.items))
        await create(store, "after", queue="after-reconnect")
        await eventually(lambda: "after-reconnect" in received.wakeups())
        assert "listener connection lost" in caplog.text
    finally:
        await _stop(task)


@ONLY_POSTGRES
async def test_listen_checks_its_connection_when_quiet(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{type(store).__module__}.LISTEN_PING", 0.05)
    received, task = await _start_listening(store, lambda: _pg_probe(store))
    try:
        await asyncio.sleep(0.4)  # several quiet periods, each ending with a ping
        await create(store, "late", queue="after-quiet")
        await eventually(lambda: "after-quiet" in received.wakeups())
        assert not task.done()
    finally:
        await _stop(task)


@ONLY_POSTGRES
async def test_listen_survives_a_failing_handler(store: Store) -> None:
    calls: list[str] = []

    def handler(channel: str, payload: str) -> None:
        calls.append(payload)
        if payload == "boom":
            raise RuntimeError("handler bug")

    task = asyncio.create_task(store.listen(handler))
    try:
        async with store.connection() as conn:  # type: ignore[attr-defined]
            while "probe" not in calls:
                await conn.execute("SELECT pg_notify('jobglass_wakeup', 'probe')")
                await asyncio.sleep(0.05)
            await conn.execute("SELECT pg_notify('jobglass_wakeup', 'boom')")
            await conn.execute("SELECT pg_notify('jobglass_wakeup', 'after')")
        await eventually(lambda: "after" in calls)
    finally:
        await _stop(task)


@ONLY_POSTGRES
async def test_big_feedback_batch_splits_notify_payloads(store: Store) -> None:
    await store.create_runs([new(f"r{i}") for i in range(400)])
    runs = await claim(store, limit=400)
    assert len(runs) == 400
    received, task = await _start_listening(store, lambda: _pg_probe(store))
    try:
        ok = await store.write_feedback([feedback(r, lines(r.id, range(1, 3))) for r in runs])
        assert all(ok)
        await eventually(lambda: len(received.events()) == 400)
        payloads = [p for ch, p in received.items if ch == "jobglass_events"]
        assert len(payloads) > 1 and all(len(p.encode()) < 8000 for p in payloads)
        assert sorted(e["r"] for e in received.events()) == sorted(r.id for r in runs)
    finally:
        await _stop(task)


@ONLY_POSTGRES
async def test_claim_race_on_a_concurrency_key_is_retried(store: Store, store_url: str) -> None:
    """Another claimer takes a key between our check and our update: no error, no double run."""
    import psycopg

    first = await create(store, "first", concurrency_key="k")
    second = await create(store, "second", concurrency_key="k")
    async with await psycopg.AsyncConnection.connect(store_url) as rival:
        # the rival claims `first` but has not committed yet
        await rival.execute(
            "UPDATE runs SET status = 'RUNNING', attempt = 1 WHERE id = %s", (first.id,)
        )
        ours = asyncio.create_task(claim(store))
        await asyncio.sleep(0.3)  # we skip the locked `first` and block on `second`'s key
        assert not ours.done()
        await rival.commit()
        assert await asyncio.wait_for(ours, 10) == []
    got = await store.get_run(second.id)
    assert got is not None and got.status == RunStatus.QUEUED
