"""App-level behaviour on a real SQLite file: BaseJob, sync twins, create_job_logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobglass import (
    BaseJob,
    InvalidInput,
    JobContext,
    JobGlass,
    Retry,
    RunStatus,
    create_job_logger,
)


class ReportJob(BaseJob):
    name = "report-generation"
    retry = Retry(attempts=2, delay=1)
    description = "Weekly and monthly reports"

    async def execute(self, ctx: JobContext, report_type: str = "Weekly") -> dict[str, Any]:
        ctx.log.set_stage("Generating")
        ctx.log.add_outcome("reports", 1)
        return {"type": report_type, "tenant": ctx.tenant_id, "correlation": ctx.correlation_id}


def make_app(tmp_path: Path) -> JobGlass:
    app = JobGlass(f"sqlite:///{tmp_path}/app.db")
    app.register(ReportJob)

    @app.job(name="plain")
    def plain(ctx: JobContext, n: int = 1) -> int:
        assert create_job_logger(ctx.run_id, ctx.job_name) is ctx.log
        ctx.log.info(f"n={n}")
        return n * 2

    return app


def test_sync_twins_outside_any_loop(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    run = app.run_job_sync("plain", {"n": 21})
    assert run.status == RunStatus.SUCCESS and run.result == 42
    queued = app.enqueue_sync("plain", {"n": 2}, priority=5, job_id="once")
    again = app.enqueue_sync("plain", {"n": 3}, job_id="once")
    assert again.id == queued.id and queued.status == RunStatus.QUEUED


async def test_base_job_class(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    definition = app.get_job("report-generation")
    assert definition.describe()["params"] == [
        {"name": "report_type", "required": False, "type": "string", "default": "Weekly"}
    ]
    assert definition.retry.attempts == 2
    async with app:
        run = await app.run_job(
            "report-generation",
            {"report_type": "Monthly"},
            tenant_id=7,
            correlation_id="abc123def456",
        )
        assert run.status == RunStatus.SUCCESS
        assert run.result == {"type": "Monthly", "tenant": "7", "correlation": "abc123def456"}
        assert run.tenant_id == "7" and run.outcome == {"reports": 1}
        with pytest.raises(InvalidInput, match="unexpected parameter 'ReportType'"):
            await app.run_job("report-generation", {"ReportType": "x"})


def test_registry_refuses_bad_definitions(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(InvalidInput, match="registered twice"):
        app.register(ReportJob)
    with pytest.raises(InvalidInput, match="invalid job name"):
        app.job(name="bad name!")(lambda ctx: None)
    with pytest.raises(InvalidInput, match="must take the JobContext first"):
        app.job(name="no-ctx")(lambda: None)
    with pytest.raises(InvalidInput, match=r"Retry\.attempts must be"):
        Retry(attempts=0)
    with pytest.raises(InvalidInput, match="invalid queue name"):
        app.job(name="q", queue="has space")(lambda ctx: None)
    with pytest.raises(InvalidInput, match="job 't': timeout must be a number of seconds > 0"):
        app.job(name="t", timeout=float("inf"))(lambda ctx: None)
    with pytest.raises(InvalidInput, match="job 'k': keep_completed must be a whole number"):
        app.job(name="k", keep_completed=-1)(lambda ctx: None)
    with pytest.raises(InvalidInput, match="job 'f': keep_failed must be a whole number"):
        app.job(name="f", keep_failed=2.5)(lambda ctx: None)
    with pytest.raises(InvalidInput, match="job 'p': priority must be an integer from -1000"):
        app.job(name="p", priority=5000)(lambda ctx: None)
    with pytest.raises(InvalidInput, match=r"job 'b': priority must be an integer .* got True"):
        app.job(name="b", priority=True)(lambda ctx: None)
    assert not {"t", "k", "f", "p", "b"} & set(app.jobs)
