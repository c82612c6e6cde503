"""JobLogger behaviour, in memory (no database): formats, coalescing, caps, threads."""

from __future__ import annotations

import re
import threading

from jobglass import JobContext
from jobglass.feedback import JobLogger
from jobglass.testing import run_test_job


async def match_scores_like(ctx: JobContext, users: int = 5000) -> dict[str, int]:
    """Seed 002's match-score job shape: warnings for 150 users, 2 errors, 235,750 updates."""
    log = ctx.log
    log.set_stage("Initializing", "Loading configuration")
    log.info("Configuration loaded", {"algorithmVersion": "v1"})
    log.set_stage("Fetching users", "fetching from database")
    log.set_total(users, "users")
    log.milestone(f"Loaded {users:,} users to process")
    log.set_stage("Scoring users")
    for i in range(users):
        if i % 33 == 0 and i // 33 < 150:
            log.warning(f"No valid candidates for user {i}", {"userId": str(i)})
            log.add_outcome("skipped", 1)
        elif i in (1234, 4321):
            log.error(f"Failed to process user {i}", {"userId": str(i), "error": "timeout"})
            log.add_outcome("errors", 1)
        else:
            log.add_outcome("updates", 48 if i % 2 else 47)
        log.increment_progress(1)
        if i + 1 == 1250:
            snap = log.progress_snapshot()
            assert snap["message"] == "Scoring users (1,250 / 5,000)"
            assert snap["percent"] == 25
        if (i + 1) % 100 == 0:
            log.info(f"Batch {i + 1}/{users} complete")
    log.set_stage("Finalizing", "saving results")
    snap = log.progress_snapshot()
    assert snap["message"] == "Finalizing (saving results)"
    assert snap["percent"] == 100
    log.milestone("All users processed")
    return {"users": users}


async def test_five_thousand_entity_run_matches_seed_002_shapes() -> None:
    result = await run_test_job(match_scores_like, {"users": 5000})
    assert result.status == "SUCCESS"
    assert result.stages == ["Initializing", "Fetching users", "Scoring users", "Finalizing"]
    assert list(result.outcome) == ["skipped", "updates", "errors", "warnings"]
    assert result.outcome["skipped"] == 150
    assert result.outcome["errors"] == 2  # reported by the job: its figure stands
    assert result.outcome["warnings"] == 150  # from the warning line count
    updates = result.outcome["updates"]
    assert result.summary is not None
    assert re.fullmatch(
        r"Completed in \d+\.\d\ds \| Processed: 5,000 entities \| Skipped: 150 \| "
        + re.escape(f"Updates: {updates:,}")
        + r" \| Errors: 2 \| Warnings: 150",
        result.summary,
    ), result.summary
    levels = [line.level for line in result.logs]
    assert levels[0] == "milestone" and result.logs[0].message == "Starting: Initializing"
    assert result.logs[-1].message == result.summary
    assert levels.count("warning") == 150 and levels.count("error") == 2
    seqs = [line.seq for line in result.logs]
    assert seqs == list(range(1, len(seqs) + 1))
    assert result.logs[0].context == {"message": "Loading configuration"}
    assert result.progress["current"] == 5000 and result.progress["total"] == 5000


async def test_errors_and_warnings_default_to_line_counts_in_that_order() -> None:
    def job(ctx: JobContext) -> None:
        ctx.log.add_outcome("updates", 3)
        ctx.log.warning("w1")
        ctx.log.error("e1")
        ctx.log.warning("w2")

    result = await run_test_job(job)
    assert list(result.outcome.items()) == [("updates", 3), ("errors", 1), ("warnings", 2)]
    assert result.summary is not None
    assert result.summary.endswith("| Updates: 3 | Errors: 1 | Warnings: 2")
    assert "Processed" not in result.summary


async def test_progress_above_total_is_clamped_and_warned_once() -> None:
    def job(ctx: JobContext) -> None:
        ctx.log.set_stage("Processing")
        ctx.log.set_total(10, "items")
        for _ in range(15):
            ctx.log.increment_progress()

    result = await run_test_job(job)
    warnings = result.messages("warning", exact=True)
    assert warnings == ["Progress 11 exceeds the total of 10; percent is capped at 100"]
    assert result.progress["percent"] == 100
    assert result.progress["message"] == "Processing (15 / 10)"


async def test_unknown_total_and_multi_phase_totals() -> None:
    def job(ctx: JobContext) -> None:
        log = ctx.log
        log.set_stage("Fetching data")
        assert log.progress_snapshot()["message"] == "Fetching data"
        log.set_stage("Scanning for orphaned files")
        log.increment_progress(1250)
        assert log.progress_snapshot()["message"] == "Scanning for orphaned files (1,250 processed)"
        assert log.progress_snapshot()["percent"] is None
        log.set_stage("Processing records")
        log.set_total(1000, "records")  # a total in a later phase: counting starts anew
        log.increment_progress(500)
        assert log.progress_snapshot()["message"] == "Processing records (500 / 1,000)"
        log.set_stage("Saving results")
        assert log.progress_snapshot()["message"] == "Saving results"
        log.increment_progress(100, "Batch complete")
        assert log.progress_snapshot()["message"] == "Saving results (600 / 1,000) - Batch complete"

    result = await run_test_job(job)
    assert result.status == "SUCCESS", result.error


async def test_total_discovered_midway_keeps_the_count() -> None:
    logger = JobLogger(1, "discover")
    logger.set_stage("Streaming")
    logger.increment_progress(40)
    logger.set_total(100)
    assert logger.progress_snapshot()["message"] == "Streaming (40 / 100)"
    assert logger.progress_snapshot()["percent"] == 40


async def test_log_cap_counts_and_says_what_it_dropped() -> None:
    logger = JobLogger(1, "capped", max_log_lines=10)
    for i in range(25):
        logger.info(f"line {i}")
    summary = logger.log_summary()
    batch = logger.drain()
    assert batch is not None
    messages = [line.message for line in batch.logs]
    assert messages[:10] == [f"line {i}" for i in range(10)]
    assert messages[10] == "Log limit of 10 lines reached; further lines are counted, not stored"
    assert summary.endswith("| Dropped log lines: 15")
    assert messages[-1] == summary
    assert len(messages) == 12


async def test_summary_is_logged_once() -> None:
    def job(ctx: JobContext) -> None:
        ctx.log.add_outcome("updates", 1)
        ctx.log.log_summary()

    result = await run_test_job(job)
    summaries = [m for m in result.messages("milestone") if m.startswith("Completed in")]
    assert len(summaries) == 1


async def test_failed_job_is_still_finalized() -> None:
    def job(ctx: JobContext) -> None:
        ctx.log.set_stage("Working")
        ctx.log.add_outcome("updates", 2)
        raise RuntimeError("database went away")

    result = await run_test_job(job)
    assert result.status == "FAILED"
    assert isinstance(result.error, RuntimeError)
    assert result.summary is not None
    assert result.summary.startswith("Failed after ")
    assert result.summary.endswith("| Updates: 2")


async def test_sync_job_logging_from_many_threads_loses_nothing() -> None:
    threads, per_thread = 8, 5000

    def job(ctx: JobContext) -> int:
        def work(n: int) -> None:
            for i in range(per_thread):
                ctx.log.info(f"t{n} {i}")
                ctx.log.increment_progress()
                ctx.log.add_outcome("lines", 1)

        pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return threads * per_thread

    result = await run_test_job(job)
    infos = result.messages("info", exact=True)
    assert len(infos) == threads * per_thread
    assert len(set(infos)) == threads * per_thread
    assert [line.seq for line in result.logs] == list(range(1, len(result.logs) + 1))
    assert result.progress["current"] == threads * per_thread
    assert result.outcome["lines"] == threads * per_thread


async def test_sensitive_context_keys_are_redacted() -> None:
    def job(ctx: JobContext) -> None:
        ctx.log.info("calling upstream", {"apiKey": "abc", "nested": {"password": "p", "ok": 1}})

    result = await run_test_job(job)
    line = next(x for x in result.logs if x.message == "calling upstream")
    assert line.context == {"apiKey": "[REDACTED]", "nested": {"password": "[REDACTED]", "ok": 1}}


async def test_cancellation_is_seen_by_the_job() -> None:
    import asyncio

    async def job(ctx: JobContext) -> None:
        for _ in range(200):
            ctx.raise_if_cancelled()
            await asyncio.sleep(0.01)

    result = await run_test_job(job, cancel_after=0.05)
    assert result.status == "CANCELLED"
    assert result.summary is not None and result.summary.startswith("Cancelled after")
