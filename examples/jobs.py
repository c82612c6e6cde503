"""The seeds' jobs, runnable: `jobglass run examples.jobs:app user-sync`.

- `user-sync` (seed 001, "Complete Example"): stages, a known total, per-user errors.
- `match-scores` (seed 002, "Complete Example: Match Score Job"): 5,000 users scored
  with warnings for users without quiz data, batch info lines and a final summary.
- `orphan-scan` (seed 002, "Pattern 2"): an unknown total.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobglass import JobContext, JobGlass, Retry

from .fake_data import ExternalService, compute_scores, fetch_users, make_users

app = JobGlass()
directory = ExternalService()


@app.job(name="user-sync", retry=Retry(attempts=3, backoff="exponential", delay=5))
async def user_sync(ctx: JobContext, batch_size: int = 100, pause_ms: int = 0) -> dict[str, int]:
    """Sync users to the external directory (seed 001)."""
    log = ctx.log
    log.set_stage("Initializing")
    log.info("Job started", {"batchSize": batch_size})

    log.set_stage("Loading users")
    users = await fetch_users(batch_size)
    log.set_total(len(users), "users")
    log.milestone(f"Found {len(users):,} users to sync")
    if not users:
        log.info("No users to sync")
        return {"synced": 0}

    log.set_stage("Syncing users")
    synced = failed = 0
    for user in users:
        try:
            await directory.sync(user, pause_ms / 1000)
            synced += 1
            log.add_outcome("synced", 1)
        except Exception as err:
            failed += 1
            log.add_outcome("errors", 1)
            log.error(f"Failed to sync user {user.id}", {"userId": str(user.id), "error": str(err)})
        log.increment_progress()
        if (synced + failed) % 10 == 0:
            log.info(
                f"Progress: {synced + failed}/{len(users)}", {"synced": synced, "failed": failed}
            )

    log.set_stage("Finalizing")
    log.milestone("Sync complete", {"total": len(users), "synced": synced, "failed": failed})
    return {"synced": synced, "failed": failed}


@app.job(name="match-scores", timeout=3600)
async def match_scores(
    ctx: JobContext, user_count: int = 5000, pause_ms: int = 0, algorithm_version: str = "v1"
) -> dict[str, Any]:
    """Compute match scores for every user (seed 002)."""
    log = ctx.log
    log.set_stage("Initializing", "Loading configuration")
    config = {"algorithmVersion": algorithm_version, "weights": {"quiz": 0.7, "activity": 0.3}}
    log.info("Configuration loaded", config)

    log.set_stage("Fetching users", "fetching from database")
    users = make_users(user_count)
    log.set_total(len(users), "users")
    log.milestone(f"Loaded {len(users):,} users to process")

    log.set_stage("Scoring users")
    total_scores = skipped = 0
    for i, user in enumerate(users):
        ctx.raise_if_cancelled()
        scores = compute_scores(user)
        if not scores:
            skipped += 1
            log.warning(f"No valid candidates for user {user.id}", {"userId": str(user.id)})
            log.add_outcome("skipped", 1)
        else:
            total_scores += len(scores)
            log.add_outcome("updates", len(scores))
        log.increment_progress(1)
        if (i + 1) % 100 == 0:
            log.info(
                f"Batch {i + 1:,}/{len(users):,} complete",
                {"avgScoresPerUser": round(total_scores / (i + 1), 1), "skippedCount": skipped},
            )
        if pause_ms:
            await asyncio.sleep(pause_ms / 1000)

    log.set_stage("Finalizing", "saving results")
    log.milestone(
        "All users processed",
        {"totalUsers": len(users), "totalScores": total_scores, "totalSkipped": skipped},
    )
    return {"users": len(users), "scores": total_scores, "skipped": skipped}


@app.job(name="orphan-scan")
def orphan_scan(ctx: JobContext, files: int = 1250) -> int:
    """Scan for orphaned files; the total is unknown up front (seed 002, pattern 2)."""
    log = ctx.log
    log.set_stage("Scanning for orphaned files")
    for found in range(1, files + 1):
        log.increment_progress()
        log.add_outcome("deletes", 1)
        if found % 250 == 0:
            log.info(f"Found {found:,} orphaned files so far")
    return files
