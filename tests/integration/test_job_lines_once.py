"""Each run's lines reach Python logging once: the seed 004 start/finish lines, while the
seed 000 job-processor records (Job started/completed) go to the app-log store only."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from jobglass import JobContext, JobGlass
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
    assert messages.count(
        f"Starting job DataCleanupJob (ID: {run.id}) with correlation ID abc123def456"
    ) == 1
    assert sum(m.startswith(f"Job DataCleanupJob (ID: {run.id}) completed") for m in messages) == 1
    assert "cleaning" in messages
    assert "Job started" not in messages and "Job completed" not in messages
    stored_messages = [x["message"] for x in stored["logs"]]
    assert sorted(stored_messages) == ["Job completed", "Job started"]
