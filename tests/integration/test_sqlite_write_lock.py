"""The SQLite store's writer waits for another process's write lock, and gives up by name.

The writer begins each transaction with `_begin_immediate` (its own short retries instead of
SQLite's busy handler, whose sleeps grow to 25 ms and more): a write while another process
holds the lock must wait for it, then succeed; past `BUSY_TIMEOUT_MS` it fails with SQLite's
"database is locked", and nothing half-written stays behind. Before it, the writer takes the
writer lock (`sqlite_writer_lock`): behind another jobglass process's transaction it sleeps
instead of retrying, and a forked child or a killed holder changes nothing of that.
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


# -- jobglass's own writers queue on the writer lock (sqlite_writer_lock) ----------------------

HOLD_AS_JOBGLASS = """
import asyncio, sys, time
from jobglass.stores.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(sys.argv[1])
    await store.open()

    def hold(c):
        c.execute("INSERT INTO schema_migrations VALUES (999, 'held', 0)")
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))

    await store._write(hold)
    print("released", flush=True)
    await store.close()

asyncio.run(main())
"""


def _hold_as_jobglass(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process's jobglass writer in a transaction (writer lock and SQLite's)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_AS_JOBGLASS, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _count_begins(store: SQLiteStore) -> list[str]:
    begins: list[str] = []
    assert store._wconn is not None
    store._wconn.set_trace_callback(
        lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None
    )
    return begins


@pytest.mark.parametrize("holder", ["another program", "another jobglass process"])
async def test_a_write_waits_for_another_process_then_succeeds(tmp_path: Path, holder: str) -> None:
    """Behind another jobglass process's transaction, a write sleeps on the writer lock and
    begins its own once, when that transaction ends; behind a writer that takes no writer
    lock (a plain sqlite3 connection), it retries SQLite's lock (every 0.05-1 ms) meanwhile."""
    store = await _store(tmp_path)
    try:
        assert (tmp_path / "lock.db-jobglass.lock").exists()
        begins = _count_begins(store)
        hold = _hold_lock if holder == "another program" else _hold_as_jobglass
        proc = hold(tmp_path / "lock.db", 0.5)
        started = time.monotonic()
        [created] = await store.create_runs([NewRun(job_name="after-the-lock")])
        waited = time.monotonic() - started
        assert proc.wait(5) == 0 and proc.stdout is not None
        assert proc.stdout.read().strip() == "released"
        assert waited >= 0.3  # it did wait for the other process
        if holder == "another program":
            assert len(begins) > 1
        else:
            assert begins == ["BEGIN IMMEDIATE"]
        assert created.created and (await store.get_run(created.run_id)) == created.run
    finally:
        await store.close()


async def test_a_writer_killed_in_its_transaction_blocks_no_one(tmp_path: Path) -> None:
    """The kernel drops a dead process's writer lock (and SQLite's): SIGKILL mid-write."""
    store = await _store(tmp_path)
    try:
        holder = _hold_as_jobglass(tmp_path / "lock.db", 60)
        holder.kill()
        assert holder.wait(5) != 0
        started = time.monotonic()
        [created] = await store.create_runs([NewRun(job_name="after-the-kill")])
        assert time.monotonic() - started < 5
        assert (await store.get_run(created.run_id)) == created.run
        applied = await store._read(
            lambda c: c.execute(
                "SELECT count(*) FROM schema_migrations WHERE version = 999"
            ).fetchone()[0]
        )
        assert applied == 0  # the killed transaction left nothing
    finally:
        await store.close()


FORK_WHILE_HOLDING = """
import os, sys, threading, time
from jobglass.stores.sqlite_writer_lock import WriterLock

lock = WriterLock(sys.argv[1])
assert lock.acquire()
pid = os.fork()
if pid == 0:  # the child: exit 0 only if it waited for its parent, then got the lock
    code = 1
    try:
        got = threading.Thread(target=lock.acquire, daemon=True)
        got.start()
        got.join(0.3)
        if got.is_alive():  # still waiting while the parent holds the lock
            got.join(10)
            code = 0 if not got.is_alive() else 2
    finally:
        os._exit(code)
time.sleep(0.6)
lock.release()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_takes_the_writer_lock_as_a_process_of_its_own(tmp_path: Path) -> None:
    """A `flock` belongs to the open file, which fork shares: the child opens the lock file
    again, so it waits while its parent holds the lock instead of sharing it. (In a process
    of its own: forking pytest's, threads and all, is no test of anything.)"""
    done = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_HOLDING, str(tmp_path / "fork.db")], timeout=30
    )
    assert done.returncode == 0


def test_a_database_in_memory_or_by_uri_has_no_writer_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobglass.stores.sqlite_writer_lock import WriterLock

    monkeypatch.chdir(tmp_path)
    for database in (":memory:", "", "file::memory:?cache=shared"):
        assert WriterLock(database).acquire() is False
    assert list(tmp_path.iterdir()) == []  # no lock file named after a URI


async def test_a_file_system_without_flock_leaves_writers_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where `flock` fails (ENOLCK on some network file systems; none here, so it is made to
    fail), writes go on, retrying SQLite's lock as before, and the log says why once."""
    import errno

    from jobglass.stores import sqlite_writer_lock

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(sqlite_writer_lock.fcntl, "flock", refuse)
    store = await _store(tmp_path)
    try:
        begins = _count_begins(store)
        holder = _hold_lock(tmp_path / "lock.db", 0.3)
        created = await store.create_runs([NewRun(job_name=f"run-{i}") for i in range(2)])
        await store.create_runs([NewRun(job_name="another")])
        assert holder.wait(5) == 0
        assert len(begins) > 2  # retried while the other program held SQLite's lock
        assert [(await store.get_run(c.run_id)) for c in created] == [c.run for c in created]
        refusals = [r for r in caplog.records if "no writer lock on" in r.getMessage()]
        assert len(refusals) == 1 and "No locks available" in refusals[0].getMessage()
    finally:
        await store.close()
