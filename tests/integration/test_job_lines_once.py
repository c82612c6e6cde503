"""Each run's lines reach Python logging once: the seed 004 start/finish lines, while the
seed 000 job-processor records (Job started/completed) go to the app-log store only."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from jobglass import JobContext, JobGlass
from jobglass.applog import AppLogger
from jobglass.observe.logging import configure_logging


async def test_python_logging_gets_the_seed_lines_once_and_the_store_the_job_lines(
    tmp_path: Path,
) -> None:
    app = JobGlass(f"sqlite:///{tmp_path}/once.db")

    @app.job(name="DataCleanupJob")
    async def cleanup(ctx: JobContext) -> None:
        logging.getLogger("myapp").info("cleaning")

    out = io.StringIO()
    handler = configure_logging(json=True, level=logging.INFO, stream=out)
    try:
        async with app:
            run = await app.run_job("DataCleanupJob", correlation_id="abc123def456")
            await app.log.flush()
            stored = await app.query_logs(correlation_id="abc123def456")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
    messages = [x["message"] for x in lines]
    assert (
        messages.count(
            f"Starting job DataCleanupJob (ID: {run.id}) with correlation ID abc123def456"
        )
        == 1
    )
    assert sum(m.startswith(f"Job DataCleanupJob (ID: {run.id}) completed") for m in messages) == 1
    assert "cleaning" in messages
    assert "Job started" not in messages and "Job completed" not in messages
    stored_messages = [x["message"] for x in stored["logs"]]
    assert sorted(stored_messages) == ["Job completed", "Job started"]


async def test_every_run_stores_the_same_job_lines_the_general_path_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run's job lines go through `AppLogger._emit` (its keys are not known to be
    safe yet); later runs' rows are made directly: both must store the same rows."""
    app = JobGlass(f"sqlite:///{tmp_path}/lines.db")

    @app.job(name="DataCleanupJob")
    async def cleanup(ctx: JobContext) -> None:
        return None

    general: list[str | None] = []
    emit = AppLogger._emit

    def counted(
        self: AppLogger, kind: str, level: str | None, message: str | None, *a: Any, **k: Any
    ) -> None:
        general.append(message)
        emit(self, kind, level, message, *a, **k)

    monkeypatch.setattr(AppLogger, "_emit", counted)
    async with app:
        runs = [
            await app.run_job("DataCleanupJob", correlation_id=f"cid-{i}", user_id=uid)
            for i, uid in enumerate([42, 42, "u-7", None])
        ]
        assert general == ["Job started", "Job completed"]  # the first run's only
        await app.log.flush()
        rows = []
        for i in range(len(runs)):
            stored = (await app.query_logs(correlation_id=f"cid-{i}"))["logs"]
            rows.append(sorted(stored, key=lambda row: row["message"], reverse=True))

    def shape(row: dict[str, object], run_id: int) -> dict[str, object]:
        """A row without its id, time and measured duration; the run's id as <id>."""
        kept = {k: v for k, v in row.items() if k not in ("id", "createdAt", "timestamp")}
        context = dict(kept.get("context") or {})  # type: ignore[call-overload]
        assert context.pop("jobId") == str(run_id)
        if "durationMs" in context:
            assert isinstance(context.pop("durationMs"), int)
            context["durationMs"] = "<ms>"
        kept["context"] = context
        kept.pop("correlationId")
        return kept

    first = [shape(row, runs[0].id) for row in rows[0]]
    assert [row["message"] for row in first] == ["Job started", "Job completed"]
    # (the read gives the user id as the indexed column has it: text)
    assert first[0]["context"] == {"jobType": "DataCleanupJob", "userId": "42", "attempt": 1}
    assert list(first[1]["context"]) == ["jobType", "userId", "attempt", "durationMs"]
    assert [shape(row, runs[1].id) for row in rows[1]] == first  # the direct rows
    for run, stored, uid in ((runs[2], rows[2], "u-7"), (runs[3], rows[3], None)):
        assert [shape(row, run.id)["context"]["userId"] for row in stored] == [uid, uid]  # type: ignore[index]
