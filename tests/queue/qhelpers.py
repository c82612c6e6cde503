"""Helpers of the queue tests: worker processes, CLI calls, records, waiting for runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qjobs import RECORD_ENV, read_records

from jobglass import JobGlass, Run
from jobglass.models import FINISHED

REPO = Path(__file__).resolve().parents[2]
JOBS_APP = "tests.queue.qjobs:app"
#: Short intervals so each test is quick; a test may override any of them per worker.
WORKER_ENV = {
    "JOBGLASS_POLL_INTERVAL": "0.05",
    "JOBGLASS_LEASE_SECONDS": "5",
    "JOBGLASS_FLUSH_INTERVAL": "0.05",
    "JOBGLASS_PRUNE_INTERVAL": "3600",
}


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    async def wait_exit(self, within: float) -> int:
        """The exit status, waiting without blocking the event loop."""
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {within}s:\n{self.log()}")
            await asyncio.sleep(0.02)
        return self.proc.returncode


@dataclass
class QueueEnv:
    url: str
    app: JobGlass
    tmp: Path
    record_path: Path
    workers: list[WorkerProc] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgres"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(WORKER_ENV)
        env.update(
            {
                "JOBGLASS_DATABASE_URL": self.url,
                RECORD_ENV: str(self.record_path),
                "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    # -- processes --------------------------------------------------------------------------

    def start_worker(
        self,
        *,
        concurrency: int = 10,
        queues: str = "default",
        grace: float | None = None,
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> WorkerProc:
        name = f"worker{len(self.workers) + 1}"
        log_path = self.tmp / f"{name}.log"
        args = [
            sys.executable,
            "-m",
            "jobglass.cli",
            "worker",
            JOBS_APP,
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
        ]
        if grace is not None:
            args += ["--grace", str(grace)]
        args += extra
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                args,
                cwd=REPO,
                env=self.env(**(env or {})),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        worker = WorkerProc(proc, log_path, name)
        self.workers.append(worker)
        return worker

    async def wait_ready(self, *workers: WorkerProc, within: float = 20) -> None:
        """Until each worker has announced itself (its app is open, the schema migrated)."""
        deadline = time.monotonic() + within
        for w in workers:
            while "jobglass worker " not in w.log():
                if w.proc.poll() is not None:
                    raise AssertionError(f"{w.name} exited with {w.proc.returncode}:\n{w.log()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{w.name} not ready after {within}s:\n{w.log()}")
                await asyncio.sleep(0.02)

    async def cli(
        self, *args: str, within: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`jobglass ARGS...` in a separate process, on this test's database."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobglass.cli",
            *args,
            cwd=REPO,
            env=self.env(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL whatever is still there after a moment."""
        live = [w for w in self.workers if w.proc.poll() is None]
        for w in live:
            w.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for w in live:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(5)

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.name} (pid {w.pid}) ---\n{w.log()}" for w in self.workers)

    # -- records and runs ---------------------------------------------------------------------

    def records(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        out = read_records(self.record_path, event)
        return [r for r in out if all(r.get(k) == v for k, v in match.items())]

    async def wait_until(
        self,
        check: Callable[[], Awaitable[Any]] | Callable[[], Any],
        within: float = 20,
        what: str = "condition",
        interval: float = 0.05,
    ) -> Any:
        """Poll `check` (sync or async) until it returns something truthy; return that."""
        deadline = time.monotonic() + within
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            crashed = [w for w in self.workers if w.proc.poll() not in (None, 0, -signal.SIGKILL)]
            if crashed:
                w = crashed[0]
                raise AssertionError(
                    f"{w.name} exited with {w.proc.returncode} while waiting for {what}\n"
                    + self.worker_logs()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {within}s waiting for {what}\n" + self.worker_logs()
                )
            await asyncio.sleep(interval)

    async def wait_finished(
        self, run_ids: Iterable[int], within: float = 30, statuses: Any = FINISHED
    ) -> list[Run]:
        """Until every run reaches one of `statuses` (default: any finished one)."""
        ids = list(run_ids)
        found: dict[int, Run] = {}

        async def done() -> bool:
            for rid in ids:
                if rid not in found:
                    run = await self.app.get_run(rid)
                    if run.status not in statuses:
                        return False
                    found[rid] = run
            return True

        await self.wait_until(done, within, f"runs {ids[:5]}... to finish")
        return [found[rid] for rid in ids]

    async def count_rows(self, table: str, where: str = "") -> int:
        """Rows of one table (optionally `WHERE where`), read straight from the database."""
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        if self.backend == "sqlite":
            import sqlite3

            from jobglass.stores.sqlite import sqlite_path

            conn = sqlite3.connect(sqlite_path(self.url))
            try:
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url) as conn:
            cur = await conn.execute(sql)  # type: ignore[arg-type]
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])
