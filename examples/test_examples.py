"""The docs/testing.md example, run for real: seed jobs tested in memory."""

from __future__ import annotations

from jobglass.testing import run_test_job

from .jobs import match_scores, orphan_scan, user_sync


async def test_user_sync_reports_failures() -> None:
    result = await run_test_job(user_sync, {"batch_size": 50})
    assert result.status == "SUCCESS"
    assert result.stages == ["Initializing", "Loading users", "Syncing users", "Finalizing"]
    assert result.outcome == {"synced": 48, "errors": 2}
    assert result.messages("error") == ["Failed to sync user 13", "Failed to sync user 42"]
    assert result.progress["message"] == "Finalizing"
    assert result.summary is not None
    assert result.summary.endswith("| Processed: 50 entities | Synced: 48 | Errors: 2")


async def test_match_scores_tells_the_seed_story() -> None:
    result = await run_test_job(match_scores, {"user_count": 1000})
    assert result.stages == ["Initializing", "Fetching users", "Scoring users", "Finalizing"]
    assert result.progress["message"] == "Finalizing (saving results)"
    assert result.progress["percent"] == 100
    assert result.outcome["skipped"] == result.outcome["warnings"] > 0
    assert result.messages("info", exact=True)[1] == "Batch 100/1,000 complete"


async def test_orphan_scan_has_no_total() -> None:
    result = await run_test_job(orphan_scan, {"files": 500})
    assert result.progress["message"] == "Scanning for orphaned files (500 processed)"
    assert result.progress["percent"] is None
    assert result.outcome == {"deletes": 500}


def test_embedded_worker_logs_json_lines_with_run_fields() -> None:
    import io
    import json
    import logging

    from .embedded_worker import main

    out = io.StringIO()
    handler = main(out, count=3)
    logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    starts = [x for x in lines if x["message"].startswith("Starting job resize-image")]
    mine = [x for x in lines if x["logger"] == "myapp.images"]
    assert len(starts) == 3 and len(mine) == 3
    assert sorted(x["job.image_id"] for x in mine) == [0, 1, 2]
    assert all(x["job_name"] == "resize-image" and x["attempt"] == 1 for x in mine)
    assert "k-123" not in out.getvalue()  # api_key is a sensitive key: redacted
    ends = [x for x in lines if "completed successfully" in x["message"]]
    assert len(ends) == 3 and all(x["status"] == "success" for x in ends)


def test_a_dedicated_embedded_worker_takes_the_worker_process_settings() -> None:
    import gc
    import io
    import logging
    import sys

    from jobglass.process_gc import DEFAULT_THRESHOLD
    from jobglass.process_threads import DEFAULT_SWITCH_INTERVAL

    from .embedded_worker import main

    threshold, switch = gc.get_threshold(), sys.getswitchinterval()
    try:
        handler = main(io.StringIO(), count=2, dedicated=True)
        logging.getLogger().removeHandler(handler)
        assert gc.get_threshold()[0] == DEFAULT_THRESHOLD and gc.get_freeze_count() > 0
        assert abs(sys.getswitchinterval() - DEFAULT_SWITCH_INTERVAL) < 1e-9
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(switch)


def test_bulk_enqueue_returns_ids_and_dedupes() -> None:
    from .bulk_enqueue import main

    new_ids, known = main(count=1_200)
    assert known == 1 and len(new_ids) == 1_199 == len(set(new_ids))
    assert new_ids == sorted(new_ids)
