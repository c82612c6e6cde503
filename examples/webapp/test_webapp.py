"""The web app example, run for real (in-process ASGI transport, SQLite)."""

from __future__ import annotations

from pathlib import Path

import httpx

from .app import create_app


async def test_the_example_logs_like_the_seed(tmp_path: Path) -> None:
    api, jobs = create_app(f"sqlite:///{tmp_path}/webapp.db")
    transport = httpx.ASGITransport(app=api)
    async with jobs, httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        headers = {"x-correlation-id": "example-1"}
        users = await client.get("/api/users", headers=headers)
        assert users.headers["x-correlation-id"] == "example-1"
        created = await client.post("/api/posts", json={"title": "Hello"}, headers=headers)
        assert created.status_code == 201
        await client.post("/api/login", json={"userId": "u-1"}, headers=headers)
        await client.post("/api/sync", headers=headers)
        assert (await client.get("/api/upstream", headers=headers)).json()["items"]
        queued = await jobs.get_run(created.json()["jobRunId"])
        assert queued.correlation_id == "example-1"  # enqueued during the request

        run = await jobs.run_job("process-post", {"title": "Hello"})
        assert run.status == "SUCCESS"
        await jobs.log.flush()
        logs = await jobs.query_logs(correlation_id="example-1")
        messages = {line["message"] for line in logs["logs"]}
        assert {
            "Users list accessed",
            "Sync failed",
            "Upstream API call completed",
            "GET /api/users 200",
            "POST /api/posts 201",
        } <= messages
        upstream = next(x for x in logs["logs"] if x["message"] == "Upstream API call completed")
        assert upstream["requestSize"] > 0 and upstream["responseSize"] > 0
        sync = next(x for x in logs["logs"] if x["message"] == "Sync failed")
        assert (sync["sourceKey"], sync["recordKey"]) == ("datasource-1", "record-123")
        audit = await jobs.query_audit(correlation_id="example-1")
        assert {(e["action"], e["userId"]) for e in audit["events"]} == {
            ("post.created", None),
            ("user.login", "u-1"),
        }
        job_lines = await jobs.query_logs(correlation_id=run.correlation_id)
        assert [x["message"] for x in job_lines["logs"]] == [
            "Job completed",
            "Indexing post",
            "Job started",
        ]
