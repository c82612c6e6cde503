"""Tracked in-process runs on both backends: lifecycle, reads, bad input, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from runs_jobs import register

from jobglass import InvalidInput, JobGlass, NotFound, RunStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[JobGlass]:
    jg = JobGlass(store_url, flush_interval=0.02)
    register(jg)
    async with jg:
        yield jg


async def test_run_lifecycle_and_seed_shapes(app: JobGlass) -> None:
    run = await app.run_job("seed-run", {"users": 5000})
    assert run.status == RunStatus.SUCCESS
    assert run.trigger == "MANUAL" and run.scope == "system" and run.algorithm_version == "v1"
    assert run.result == {"users": 5000}
    assert run.metadata["params"] == {"users": 5000}
    assert run.metadata["progress"] == {"stage": "Finalizing", "current": 5000, "total": 5000}
    assert run.started_at and run.finished_at and run.duration_ms is not None
    assert run.has_warnings

    debug = await app.get_logs(run.id, level="debug", limit=10_000)
    seen = next(line for line in debug if line.message == "progress seen at 1,250")
    assert seen.context is not None
    mid = seen.context["progress"]
    assert mid["progressMessage"] == "Scoring users (1,250 / 5,000)"
    assert mid["progressPercent"] == 25 and mid["status"] == "RUNNING"

    progress = (await app.get_progress(run.id))["progress"]
    assert list(progress) == [
        "id",
        "jobName",
        "status",
        "currentStage",
        "progressCurrent",
        "progressTotal",
        "progressPercent",
        "progressMessage",
        "entitiesProcessed",
        "entitiesTotal",
        "startedAt",
    ]
    assert progress["id"] == str(run.id) and progress["progressPercent"] == 100
    assert progress["progressMessage"] == "Finalizing (saving results)"
    assert progress["startedAt"].endswith("Z")

    outcome = (await app.get_outcome(run.id))["outcome"]
    assert list(outcome) == [
        "id",
        "jobName",
        "status",
        "outcomeSummary",
        "entitiesProcessed",
        "entitiesTotal",
        "durationMs",
        "finishedAt",
    ]
    assert outcome["outcomeSummary"] == {
        "skipped": 100,
        "updates": 4900 * 47,
        "errors": 2,
        "warnings": 100,
    }
    assert outcome["entitiesProcessed"] == 5000 and outcome["status"] == "SUCCESS"

    logs = await app.get_logs(run.id, level="error")
    assert logs == []
    warnings = await app.get_logs(run.id, level="warning", limit=1000)
    assert len(warnings) == 100
    row = warnings[0].to_json()
    assert set(row) >= {"id", "level", "stage", "message", "context", "createdAt"}
    assert row["level"] == "warning" and row["stage"] == "Scoring users"
    milestones = await app.get_logs(run.id, level="milestone", limit=1000)
    assert milestones[-1].message == run.summary
    assert run.summary is not None and run.summary.startswith("Completed in ")
    assert (
        "| Processed: 5,000 entities | Skipped: 100 | Updates: 230,300 | Errors: 2 |"
        " Warnings: 100" in run.summary
    )
    page = await app.get_logs(run.id, limit=5, after=milestones[0].seq)
    assert [line.seq for line in page] == list(range(milestones[0].seq + 1, milestones[0].seq + 6))


async def test_failing_job_is_finalized(app: JobGlass) -> None:
    run = await app.run_job("explode")
    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error["type"] == "RuntimeError"
    assert run.error["message"] == "database went away"
    assert "Traceback" in run.error["traceback"]
    assert run.summary is not None and run.summary.startswith("Failed after ")
    assert run.outcome["updates"] == 3
    messages = [line.message for line in await app.get_logs(run.id, limit=100)]
    assert "about to fail" in messages
    assert "Attempt 1 failed: RuntimeError: database went away" in messages
    assert messages[-1] == run.summary
    fatal = await app.run_job("explode", {"fatal": True})
    assert fatal.status == RunStatus.FAILED and fatal.error is not None
    assert fatal.error["type"] == "FatalError"


async def test_sync_job_logging_from_threads_persists_every_line(app: JobGlass) -> None:
    run = await app.run_job("threads", {"workers": 4, "lines": 2000})
    assert run.status == RunStatus.SUCCESS and run.result == 8000
    lines = await app.get_logs(run.id, level="info", limit=10_000)
    infos = [line.message for line in lines if line.level == "info"]
    assert len(infos) == 8000 and len(set(infos)) == 8000
    assert run.progress_current == 8000


async def test_bad_input_is_refused_by_name_and_writes_nothing(app: JobGlass) -> None:
    with pytest.raises(NotFound, match="unknown job 'nope'"):
        await app.run_job("nope")
    with pytest.raises(InvalidInput, match="job 'typed': missing required parameter 'batch_size'"):
        await app.run_job("typed", {})
    with pytest.raises(InvalidInput, match="job 'typed': unexpected parameter 'size'"):
        await app.run_job("typed", {"batch_size": 1, "size": 2})
    with pytest.raises(InvalidInput, match="parameter 'label' is not JSON-serializable"):
        await app.run_job("typed", {"batch_size": 1, "label": object()})
    with pytest.raises(InvalidInput, match="parameter 'batch_size' must be integer"):
        await app.run_job("typed", {"batch_size": "ten"})
    assert await app.list_runs() == []
    with pytest.raises(NotFound):
        await app.get_run(12345)
    with pytest.raises(InvalidInput, match="unknown level"):
        await app.get_logs(1, level="loud")
    ok = await app.run_job("typed", {"batch_size": 5})
    assert ok.result == "x5"
    assert [r.id for r in await app.list_runs()] == [ok.id]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBGLASS_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "jobglass.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_run_show_and_runs(store_url: str) -> None:
    done = _cli(
        store_url, "run", "tests.integration.runs_jobs:app", "seed-run", "--param", "users=300"
    )
    assert done.returncode == 0, done.stderr
    assert "[MILESTONE] Starting: Scoring users" in done.stdout
    assert "[WARNING] No valid candidates for user 0" in done.stdout
    assert "Status: SUCCESS" in done.stdout
    assert "Processed: 300 entities | Skipped: 6 | Updates: 13,818 | Errors: 2" in done.stdout
    failed = _cli(store_url, "run", "tests.integration.runs_jobs:app", "explode")
    assert failed.returncode == 1
    assert "Status: FAILED" in failed.stdout
    bad = _cli(store_url, "run", "tests.integration.runs_jobs:app", "typed", "-p", "nope=1")
    assert bad.returncode == 2
    assert "unexpected parameter 'nope'" in bad.stderr
    listed = _cli(store_url, "runs", "--json")
    runs = json.loads(listed.stdout)
    assert [r["jobName"] for r in runs] == ["explode", "seed-run"]
    shown = _cli(store_url, "show", runs[1]["id"], "--json")
    story = json.loads(shown.stdout)
    assert story["run"]["status"] == "SUCCESS"
    assert story["logs"][-1]["message"].startswith("Completed in")
    text = _cli(store_url, "show", runs[0]["id"])
    assert "Attempt 1: RuntimeError: database went away" in text.stdout
    missing = _cli(store_url, "show", "999999")
    assert missing.returncode == 2 and "run 999999 does not exist" in missing.stderr


async def test_text_no_database_accepts_is_stored_safely(app: JobGlass) -> None:
    """Lone surrogates and NUL would make every flush fail; they are replaced, not fatal."""
    from jobglass import JobContext

    @app.job(name="odd-text")
    def odd_text(ctx: JobContext) -> str:
        ctx.log.set_stage("Stage \ud800")
        ctx.log.info("bad \udc80 and nul \x00 here", {"k": "v\ud800", "nested": ["\x00"]})
        return "ok"

    run = await app.run_job("odd-text")
    assert run.status == RunStatus.SUCCESS
    logs = await app.get_logs(run.id, limit=10)
    line = next(x for x in logs if x.level == "info")
    assert line.message == "bad \ufffd and nul \ufffd here"
    assert line.context == {"k": "v\ufffd", "nested": ["\ufffd"]}
    assert line.stage == "Stage \ufffd"
    follow_up = await app.run_job("typed", {"batch_size": 1})
    assert follow_up.status == RunStatus.SUCCESS
