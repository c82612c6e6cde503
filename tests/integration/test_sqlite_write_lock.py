"""The SQLite store's writer waits for another process's write lock, and gives up by name.

The writer begins each transaction with `_begin_immediate` (its own short retries instead of
SQLite's busy handler, whose sleeps grow to 25 ms and more): a write while another process
holds the lock must wait for it, then succeed; past `BUSY_TIMEOUT_MS` it fails with SQLite's
"database is locked", and nothing half-written stays behind.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobglass.stores import sqlite as sqlite_store
from jobglass.stores.base import NewRun
from jobglass.stores.sqlite import SQLiteStore

HOLD = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO schema_migrations VALUES (999, 'held', 0)")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
print("released", flush=True)
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


async def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(str(tmp_path / "lock.db"))
    await store.open()
    await store.migrate()
    return store


async def test_a_write_waits_for_another_process_then_succeeds(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        holder = _hold_lock(tmp_path / "lock.db", 0.5)
        started = time.monotonic()
        [created] = await store.create_runs([NewRun(job_name="after-the-lock")])
        waited = time.monotonic() - started
        assert holder.wait(5) == 0 and holder.stdout is not None
        assert holder.stdout.read().strip() == "released"
        assert waited >= 0.3  # it did wait for the other process
        assert created.created and (await store.get_run(created.run_id)) == created.run
    finally:
        await store.close()


async def test_a_write_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await _store(tmp_path)
    try:
        [kept] = await store.create_runs([NewRun(job_name="before")])
        monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 200)
        holder = _hold_lock(tmp_path / "lock.db", 3.0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                await store.create_runs([NewRun(job_name="refused")])
        finally:
            holder.kill()
            holder.wait(5)
        [after] = await store.create_runs([NewRun(job_name="after")])
        stored = [await store.get_run(c.run_id) for c in (kept, after)]
        names = [r.job_name for r in stored if r is not None]
        assert names == ["before", "after"]
        assert after.run_id == kept.run_id + 1  # the refused write left no row behind
    finally:
        await store.close()


async def test_an_end_that_cannot_be_written_keeps_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker writes an attempt's last lines with its end. When the database refuses that
    write (locked past the busy timeout), and the lines alone too, the lines stay with the
    flusher and are stored once the database is back: none is lost."""
    import asyncio

    from jobglass import JobContext, JobGlass

    app = JobGlass(f"sqlite:///{tmp_path / 'lock.db'}", flush_interval=0.05)
    release = asyncio.Event()

    @app.job(name="logs-then-ends")
    async def logs_then_ends(ctx: JobContext) -> None:
        await release.wait()
        ctx.log.info("the last line")

    async with app:
        store = await app._ready()
        run = await app.enqueue("logs-then-ends")
        worker = app.worker(concurrency=2)
        working = asyncio.create_task(worker.run())
        try:
            for _ in range(200):  # until the worker holds the run
                fresh = await store.get_run(run.id)
                if fresh is not None and str(fresh.status) == "RUNNING":
                    break
                await asyncio.sleep(0.02)
            monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 200)
            holder = _hold_lock(tmp_path / "lock.db", 1.5)
            release.set()  # the end and its lines now meet a locked database
            assert await asyncio.to_thread(holder.wait, 10) == 0  # the loop runs meanwhile
            messages: list[str] = []
            for _ in range(300):  # the flusher retries about once a second
                logs = await store.get_logs(run.id, min_level=None, limit=50, after=None)
                messages = [line.message for line in logs]
                if "the last line" in messages and any("in" in m for m in messages[1:]):
                    break
                await asyncio.sleep(0.02)
            assert "the last line" in messages
            assert len(messages) == 2 and messages[-1].startswith("Completed in")
        finally:
            worker.stop()
            await asyncio.wait_for(working, 10)
