"""Jobs for tests/integration/test_runs.py (importable by the CLI as tests...:app)."""

from __future__ import annotations

import os
import threading

from jobglass import FatalError, JobContext, JobGlass

app = JobGlass(os.environ.get("JOBGLASS_DATABASE_URL", "sqlite:///jobglass-test.db"))


def register(target: JobGlass) -> None:
    """Register the same jobs on another app (tests make one app per database)."""

    @target.job(name="seed-run")
    async def seed_run(ctx: JobContext, users: int = 5000) -> dict[str, int]:
        log = ctx.log
        log.set_stage("Initializing", "Loading configuration")
        log.set_stage("Fetching users")
        log.set_total(users, "users")
        log.milestone(f"Loaded {users:,} users to process")
        log.set_stage("Scoring users")
        for i in range(users):
            if i % 50 == 0:
                log.warning(f"No valid candidates for user {i}", {"userId": str(i)})
                log.add_outcome("skipped", 1)
            else:
                log.add_outcome("updates", 47)
            log.increment_progress()
            if (i + 1) % 100 == 0:
                log.info(f"Batch {i + 1}/{users} complete")
            if i + 1 == 1250:
                await log.flush()
                progress = await target.get_progress(ctx.run_id)
                log.debug("progress seen at 1,250", {"progress": progress["progress"]})
        log.add_outcome("errors", 2)
        log.set_stage("Finalizing", "saving results")
        return {"users": users}

    @target.job(name="explode")
    async def explode(ctx: JobContext, fatal: bool = False) -> None:
        ctx.log.set_stage("Working")
        ctx.log.add_outcome("updates", 3)
        ctx.log.info("about to fail")
        if fatal:
            raise FatalError("bad configuration")
        raise RuntimeError("database went away")

    @target.job(name="threads")
    def threads(ctx: JobContext, workers: int = 4, lines: int = 2000) -> int:
        def work(n: int) -> None:
            for i in range(lines):
                ctx.log.info(f"w{n} line {i}")
                ctx.log.increment_progress()

        pool = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return workers * lines

    @target.job(name="typed")
    async def typed(ctx: JobContext, batch_size: int, label: str = "x") -> str:
        return f"{label}{batch_size}"


register(app)
