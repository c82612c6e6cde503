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
