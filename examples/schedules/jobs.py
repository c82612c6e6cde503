"""Scheduled jobs from the seeds, runnable.

Seed 004 (ConnectFlow's Quartz jobs): `data-cleanup` daily at 02:00, `subscription-grace-period`
hourly, `report-generation` weekly (Monday 08:00, ReportType=Weekly) and monthly (the 1st at
06:00, ReportType=Monthly). Seed 003 (MWAP): a `health-check` of each integration every 4 hours,
and a `token-refresh` that re-schedules itself 5 minutes before the new token expires.

The schedules are defined in code with the seed's default crons (as JobSchedulingService did)
and overridden by `jobglass.toml` next to this file, or by the file JOBGLASS_SCHEDULE_CONFIG
names (try `appsettings.json`, the seed's QuartzJobs format)::

    jobglass schedules --app examples.schedules.jobs:app --next 3
    jobglass scheduler examples.schedules.jobs:app          # fire them (any number of these)
    jobglass worker examples.schedules.jobs:app              # run what fired
    jobglass schedules trigger report-generation.Weekly --app examples.schedules.jobs:app
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobglass import FatalError, JobContext, JobGlass, Retry, Run

HERE = Path(__file__).parent
app = JobGlass(
    schedule_config=os.environ.get("JOBGLASS_SCHEDULE_CONFIG", str(HERE / "jobglass.toml"))
)


def _rng(ctx: JobContext) -> random.Random:
    """Fake data that is the same for the same fire time (so a re-run tells the same story)."""
    return random.Random(f"{ctx.job_name}:{ctx.fire_time or ctx.run_id}")


def _scheduled_by(ctx: JobContext) -> None:
    if ctx.fire_time is not None:
        ctx.log.info(
            f"Triggered by {ctx.trigger.lower()} for {ctx.fire_time:%Y-%m-%d %H:%M} UTC",
            {
                "fireTime": ctx.fire_time.isoformat(),
                "nextFireTime": ctx.next_fire_time.isoformat() if ctx.next_fire_time else None,
                "correlationId": ctx.correlation_id,
            },
        )


# -- seed 004: ConnectFlow's production jobs -------------------------------------------------------


@app.job(name="data-cleanup", schedule="0 0 2 * * ?", allow_concurrent=False, timeout=3600)
async def data_cleanup(ctx: JobContext, retention_days: int = 90) -> dict[str, int]:
    """Daily data cleanup: expired data, old audit logs, temporary files (system job)."""
    log, rng = ctx.log, _rng(ctx)
    _scheduled_by(ctx)
    log.set_stage("Expired sessions")
    sessions = rng.randint(200, 2_000)
    log.set_total(sessions, "sessions")
    for start in range(0, sessions, 250):
        await asyncio.sleep(0.005)
        log.increment_progress(min(250, sessions - start))
    log.add_outcome("sessions", sessions)
    log.milestone(f"Removed {sessions:,} expired sessions")

    log.set_stage("Audit logs", f"older than {retention_days} days")
    archived = rng.randint(1_000, 50_000)
    log.add_outcome("archived", archived)
    log.info(f"Archived {archived:,} audit log rows", {"retentionDays": retention_days})

    log.set_stage("Temporary files")
    batches = rng.randint(3, 8)
    log.set_total(batches * 500, "files")
    orphaned = 0
    for _batch in range(batches):
        await asyncio.sleep(0.005)
        orphaned += rng.randint(0, 40)
        log.increment_progress(500)
    if orphaned > 100:
        log.warning(f"{orphaned} orphaned files: more than usual", {"orphaned": orphaned})
    log.add_outcome("files", orphaned)
    return {"sessions": sessions, "archived": archived, "files": orphaned}


@app.job(name="subscription-grace-period", schedule="0 0 * * * ?", allow_concurrent=False)
async def subscription_grace_period(ctx: JobContext) -> dict[str, int]:
    """Hourly: subscriptions whose grace period ended are downgraded and their owners told."""
    log, rng = ctx.log, _rng(ctx)
    _scheduled_by(ctx)
    log.set_stage("Finding expired grace periods")
    expired = [f"sub-{rng.randint(1000, 9999)}" for _ in range(rng.randint(0, 12))]
    log.set_total(len(expired), "subscriptions")
    log.milestone(f"Found {len(expired)} subscriptions past their grace period")
    log.set_stage("Downgrading")
    for sub in expired:
        await asyncio.sleep(0.005)
        if rng.random() < 0.1:
            log.error(f"Could not downgrade {sub}", {"subscriptionId": sub, "error": "timeout"})
            log.add_outcome("errors")
        else:
            log.add_outcome("downgraded")
            log.add_outcome("notified")
        log.increment_progress()
    return {"expired": len(expired)}


@app.job(name="report-generation", retry=Retry(attempts=3, backoff="exponential", delay=30))
async def report_generation(ctx: JobContext, report_type: str = "Weekly") -> dict[str, Any]:
    """System and business reports; `report_type` is Weekly or Monthly (seed: ReportType)."""
    log, rng = ctx.log, _rng(ctx)
    if report_type not in ("Weekly", "Monthly"):
        raise FatalError(f"unknown report type {report_type!r}: use Weekly or Monthly")
    _scheduled_by(ctx)
    days = 7 if report_type == "Weekly" else 30
    log.set_stage("Collecting metrics", f"last {days} days")
    sections = ["jobs", "tenants", "subscriptions", "integrations", "errors"]
    log.set_total(len(sections), "sections")
    for section in sections:
        await asyncio.sleep(0.01)
        log.info(f"Collected {section}", {"rows": rng.randint(10, 5_000)})
        log.increment_progress()
    log.set_stage("Rendering", f"{report_type} report")
    await asyncio.sleep(0.01)
    log.set_stage("Publishing")
    log.milestone(f"{report_type} report published", {"correlationId": ctx.correlation_id})
    log.add_outcome("reports")
    return {"reportType": report_type, "sections": len(sections)}


# Seed: ScheduleJobFromConfig<ReportGenerationJob>(defaultCron, suffix: "Weekly", JobDataMap).
# Same names as in jobglass.toml / appsettings.json, so the config overrides these defaults.
app.schedule(
    "report-generation",
    name="report-generation.Weekly",
    cron="0 0 8 ? * MON",
    params={"report_type": "Weekly"},
    description="Weekly report generation job",
)
app.schedule(
    "report-generation",
    name="report-generation.Monthly",
    cron="0 0 6 1 * ?",
    params={"report_type": "Monthly"},
    description="Monthly report generation job",
)


# -- seed 003: integrations: health checks and token refresh ---------------------------------------


@dataclass
class Integration:
    id: str
    tenant_id: str
    provider: str
    status: str  # active | expired | revoked | error
    refresh_token: str | None = "rt"


INTEGRATIONS = {
    i.id: i
    for i in (
        Integration("int-dropbox-7", "7", "dropbox", "active"),
        Integration("int-gdrive-7", "7", "google-drive", "expired"),
        Integration("int-onedrive-9", "9", "onedrive", "revoked", refresh_token=None),
    )
}


@app.job(name="health-check")
async def health_check(ctx: JobContext, integration_id: str) -> dict[str, str]:
    """Check one integration; expired tokens get an urgent refresh (seed 003, HealthCheckJob)."""
    log = ctx.log
    integration = INTEGRATIONS.get(integration_id)
    if integration is None:
        log.warning("Integration no longer exists", {"integrationId": integration_id})
        return {"status": "missing"}
    log.set_stage("Checking integration", integration.provider)
    await asyncio.sleep(0.01)
    status = integration.status
    if status == "expired":
        urgent = await ctx_app(ctx).enqueue(
            "token-refresh", params={"integration_id": integration.id},
            tenant_id=integration.tenant_id, priority=10,
        )  # fmt: skip
        log.warning("Token expired: refresh queued", {"runId": str(urgent.id)})
    elif status == "revoked":
        log.warning("Access revoked: tenant owner notified", {"tenantId": integration.tenant_id})
    elif status == "error":  # logged for investigation; health checks do not retry
        log.error("Integration health check failed", {"integrationId": integration.id})
    log.milestone(f"Health check completed: {status}")
    return {"status": status}


# Seed: one repeating health check per active integration, every 4 hours (classic 5-field cron).
for _integration in INTEGRATIONS.values():
    app.schedule("health-check", name=f"health-{_integration.id}", cron="0 */4 * * *",
                 params={"integration_id": _integration.id}, tenant_id=_integration.tenant_id,
                 correlation_prefix="health", description="Integration health check")  # fmt: skip


@app.job(name="token-refresh", retry=Retry(attempts=3, backoff="exponential", delay=5))
async def token_refresh(ctx: JobContext, integration_id: str) -> dict[str, str]:
    """Refresh an integration's OAuth tokens; the next refresh is queued when this run
    completes, 5 minutes before the new token expires (see `_chain_token_refresh`)."""
    log = ctx.log
    integration = INTEGRATIONS.get(integration_id)
    if integration is None or not integration.refresh_token:
        raise FatalError("No refresh token available")
    log.set_stage("Refreshing tokens", integration.provider)
    await asyncio.sleep(0.01)
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    integration.status = "active"
    log.milestone("Tokens refreshed", {"expiresAt": expires_at.isoformat()})
    log.info(
        f"Next refresh at {expires_at - timedelta(minutes=5):%H:%M:%S} UTC, once this run ends"
    )
    return {"integrationId": integration_id, "expiresAt": expires_at.isoformat()}


async def schedule_token_refresh(integration_id: str, tenant_id: str | None,
                                 expires_at: datetime) -> Run:  # fmt: skip
    """A delayed refresh 5 minutes before expiry; `job_id` makes it one per integration (a
    second call while it waits returns the waiting run)."""
    refresh_at = max(expires_at - timedelta(minutes=5), datetime.now(UTC))
    return await app.enqueue(
        "token-refresh", params={"integration_id": integration_id}, tenant_id=tenant_id,
        run_at=refresh_at, job_id=f"refresh-{integration_id}",
    )  # fmt: skip


@app.on("completed")
async def _chain_token_refresh(run: Run) -> None:
    # Here, not inside the job: while the job runs, its own run holds the job_id, and the
    # enqueue would return that run instead of queuing the next one.
    if run.job_name == "token-refresh" and isinstance(run.result, dict):
        expires_at = datetime.fromisoformat(run.result["expiresAt"])
        await schedule_token_refresh(run.params["integration_id"], run.tenant_id, expires_at)


def ctx_app(ctx: JobContext) -> JobGlass:
    return ctx.app or app
