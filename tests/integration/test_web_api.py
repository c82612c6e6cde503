"""The admin API over real HTTP, a worker in another process, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

SEED_LOG_KEYS = ["id", "level", "stage", "message", "context", "createdAt"]
SEED_PROGRESS_KEYS = [
    "id", "jobName", "status", "currentStage", "progressCurrent", "progressTotal",
    "progressPercent", "progressMessage", "entitiesProcessed", "entitiesTotal", "startedAt",
]
SEED_OUTCOME_KEYS = [
    "id", "jobName", "status", "outcomeSummary", "entitiesProcessed", "entitiesTotal",
    "durationMs", "finishedAt",
]


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "message"}, body
    assert body["error"]["status"] == status
    message: str = body["error"]["message"]
    assert "Traceback" not in message
    return message


async def test_run_endpoints_match_the_seed(web_stack: Any, aclient: httpx.AsyncClient) -> None:
    run = await web_stack.enqueue(aclient, "web-demo", {"lines": 30, "delay": 0.0})
    assert run["status"] == "QUEUED" and run["trigger"] == "API"
    assert run["metadata"]["params"] == {"lines": 30, "delay": 0.0}
    done = await web_stack.wait_status(aclient, run["id"])
    assert done["status"] == "SUCCESS", done
    assert done["result"] == {"lines": 30}

    r = await aclient.get(f"/jobs/{run['id']}/logs", params={"level": "warning", "limit": 100})
    assert r.status_code == 200
    logs = r.json()["logs"]
    assert list(r.json()) == ["logs"] and len(logs) == 3
    assert all(list(row) == SEED_LOG_KEYS for row in logs)
    assert logs[0]["level"] == "warning" and logs[0]["stage"] == "Processing"
    assert logs[0]["context"] == {"i": 9} and logs[0]["createdAt"].endswith("Z")

    everything = (await aclient.get(f"/jobs/{run['id']}/logs", params={"limit": 10_000})).json()
    ids = [int(row["id"]) for row in everything["logs"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    after = (await aclient.get(f"/jobs/{run['id']}/logs", params={"after": ids[4]})).json()
    assert [int(row["id"]) for row in after["logs"]] == ids[5:]
    limited = (await aclient.get(f"/jobs/{run['id']}/logs", params={"limit": 2})).json()
    assert len(limited["logs"]) == 2

    r = await aclient.get(f"/jobs/{run['id']}/progress")
    assert list(r.json()) == ["progress"]
    progress = r.json()["progress"]
    assert list(progress) == SEED_PROGRESS_KEYS
    assert progress["progressCurrent"] == 30 and progress["progressPercent"] == 100
    assert progress["entitiesTotal"] == 30 and progress["startedAt"].endswith("Z")

    r = await aclient.get(f"/jobs/{run['id']}/outcome")
    assert list(r.json()) == ["outcome"]
    outcome = r.json()["outcome"]
    assert list(outcome) == SEED_OUTCOME_KEYS
    assert outcome["outcomeSummary"] == {"processed": 30, "warnings": 3}
    assert outcome["status"] == "SUCCESS" and isinstance(outcome["durationMs"], int)

    detail = (await aclient.get(f"/jobs/{run['id']}")).json()
    assert list(detail) == ["run"] and detail["run"]["id"] == run["id"]
    assert detail["run"]["logSeq"] == ids[-1]


async def test_enqueue_options_dedupe_and_correlation(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    body = {
        "jobName": "web-sleep",
        "params": {"seconds": 0.1},
        "delay": 3600,
        "jobId": "nightly-1",
        "priority": 7,
        "tenantId": 42,
        "userId": "u-1",
        "timeout": 60,
    }
    r = await aclient.post("/jobs", json=body, headers={"x-correlation-id": "corr-abc"})
    assert r.status_code == 201, r.text
    first = r.json()["run"]
    assert first["correlationId"] == "corr-abc" and first["tenantId"] == "42"
    assert first["priority"] == 7 and first["jobId"] == "nightly-1" and first["userId"] == "u-1"
    assert first["metadata"]["params"] == {"seconds": 0.1} and first["scope"] == "tenant"
    assert first["runAt"] > first["createdAt"]
    r = await aclient.post("/jobs", json=body)
    assert r.status_code == 200 and r.json()["run"]["id"] == first["id"]

    r = await aclient.post(
        "/jobs",
        json={"jobName": "web-typed", "params": {"batch_size": 3}},
        headers={"x-request-id": "req-123"},
    )
    assert r.status_code == 201 and r.json()["run"]["correlationId"] == "req-123"
    r = await aclient.post(
        "/jobs", json={"jobName": "web-typed", "params": {"batch_size": 3}, "correlationId": "mine"}
    )
    assert r.json()["run"]["correlationId"] == "mine"
    r = await aclient.post("/jobs", json={"jobName": "web-typed", "params": {"batch_size": 3}})
    assert len(r.json()["run"]["correlationId"]) >= 16  # generated

    listed = (await aclient.get("/jobs", params={"correlationId": "corr-abc"})).json()
    assert [run["id"] for run in listed["runs"]] == [first["id"]]
    listed = (await aclient.get("/jobs", params={"tenant": "42", "status": "queued"})).json()
    assert [run["id"] for run in listed["runs"]] == [first["id"]]


async def test_bad_input_is_refused_by_name(web_stack: Any, aclient: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"jobName": "nope"}, 422, "unknown job 'nope'"),
        ({"jobName": "web-typed"}, 422, "missing required parameter 'batch_size'"),
        ({"jobName": "web-typed", "params": {"batch_size": "x"}}, 422, "'batch_size' must be"),
        ({"jobName": "web-typed", "params": {"batch_size": 1, "zzz": 1}}, 422, "'zzz'"),
        ({"jobName": "web-demo", "priority": 5000}, 422, "'priority'"),
        ({"jobName": "web-demo", "delay": -1}, 422, "'delay'"),
        ({"jobName": "web-demo", "queue": "bad queue!"}, 422, "invalid queue name"),
        ({"jobName": "web-demo", "runAt": "2030-01-01T00:00:00"}, 422, "time zone"),
        ({"jobName": "web-demo", "delay": 1, "runAt": "2030-01-01T00:00:00Z"}, 422, "not both"),
        ({"jobName": "web-demo", "bogus": 1}, 422, "'bogus'"),
        ({"params": {}}, 422, "'jobName'"),
        ({"jobName": "web-demo", "params": {"text": "a\x00b"}}, 422, "NUL"),
    ]
    for body, status, fragment in cases:
        message = _error(await aclient.post("/jobs", json=body), status)
        assert fragment in message, (body, message)
    json_type = {"content-type": "application/json"}
    message = _error(await aclient.post("/jobs", content=b"{not json", headers=json_type), 400)
    assert "JSON" in message
    assert "'limit'" in _error(await aclient.get("/jobs", params={"limit": 0}), 422)
    assert "'status'" in _error(await aclient.get("/jobs", params={"status": "DONE"}), 422)
    assert "'cursor'" in _error(await aclient.get("/jobs", params={"cursor": "x"}), 422)
    assert "'createdAfter'" in _error(
        await aclient.get("/jobs", params={"createdAfter": "yesterday"}), 422
    )
    assert "'level'" in _error(await aclient.get("/jobs/1/logs", params={"level": "loud"}), 422)
    _error(await aclient.get("/jobs/999999"), 404)
    _error(await aclient.get("/jobs/abc"), 404)
    _error(await aclient.get("/jobs/999999/logs"), 404)
    _error(await aclient.get("/jobs/999999/progress"), 404)
    _error(await aclient.get("/jobs/999999/outcome"), 404)
    _error(await aclient.post("/jobs/999999/cancel"), 404)
    _error(await aclient.post("/jobs/999999/retry"), 404)
    _error(await aclient.delete("/jobs/999999"), 404)
    _error(await aclient.get("/no-such-route"), 404)
    _error(await aclient.put("/jobs"), 405)


async def test_cancel_retry_delete_and_pagination(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    delayed = await web_stack.enqueue(aclient, "web-demo", {"lines": 1}, delay=3600)
    r = await aclient.post(f"/jobs/{delayed['id']}/cancel")
    assert r.status_code == 200 and r.json()["run"]["status"] == "CANCELLED"
    r = await aclient.post(f"/jobs/{delayed['id']}/retry")
    assert r.status_code == 200 and r.json()["run"]["status"] == "QUEUED"
    _error(await aclient.delete(f"/jobs/{delayed['id']}"), 409)  # live again
    await aclient.post(f"/jobs/{delayed['id']}/cancel")

    running = await web_stack.enqueue(aclient, "web-sleep", {"seconds": 30})
    await web_stack.wait_status(aclient, running["id"], ("RUNNING",))
    _error(await aclient.delete(f"/jobs/{running['id']}"), 409)
    _error(await aclient.post(f"/jobs/{running['id']}/retry"), 409)
    r = await aclient.post(f"/jobs/{running['id']}/cancel")
    assert r.status_code == 200 and r.json()["run"]["cancelRequested"] is True
    final = await web_stack.wait_status(aclient, running["id"])
    assert final["status"] == "CANCELLED"

    failed = await web_stack.enqueue(aclient, "web-fail")
    assert (await web_stack.wait_status(aclient, failed["id"]))["status"] == "FAILED"
    _error(await aclient.post(f"/jobs/{failed['id']}/cancel"), 409)
    r = await aclient.delete(f"/jobs/{failed['id']}")
    assert r.status_code == 204 and r.content == b""
    _error(await aclient.get(f"/jobs/{failed['id']}"), 404)

    made = [await web_stack.enqueue(aclient, "web-typed", {"batch_size": i}) for i in range(7)]
    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"job": "web-typed", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await aclient.get("/jobs", params=params)).json()
        pages.extend(run["id"] for run in body["runs"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == [run["id"] for run in reversed(made)]  # newest first, nothing twice
    assert (await aclient.get("/jobs", params={"q": "web-ty"})).json()["runs"]


async def test_queues_workers_registry_schedules(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    await web_stack.enqueue(aclient, "web-demo", {"lines": 1}, delay=3600)
    queues = (await aclient.get("/queues")).json()["queues"]
    assert queues["web"]["delayed"] == 1
    assert {"waiting", "active", "completed", "failed"} <= set(queues["web"])
    stats = (await aclient.get("/queues/stats")).json()
    assert stats["web"]["delayed"] == 1

    for _ in range(100):
        workers = (await aclient.get("/workers")).json()["workers"]
        if workers:
            break
        await asyncio.sleep(0.05)
    assert workers and workers[0]["pid"] == web_stack.worker.pid
    assert set(workers[0]["queues"]) == {"default", "web"}

    jobs = (await aclient.get("/registry")).json()["jobs"]
    typed = next(job for job in jobs if job["name"] == "web-typed")
    assert typed["params"] == [
        {"name": "batch_size", "required": True, "type": "integer"},
        {"name": "label", "required": False, "type": "string", "default": "x"},
    ]
    demo = next(job for job in jobs if job["name"] == "web-demo")
    assert demo["description"].startswith("Logs `lines`") and demo["queue"] == "web"

    r = await aclient.get("/schedules")
    assert r.status_code == 200
    cron = next(s for s in r.json()["schedules"] if s["jobName"] == "web-cron")
    assert cron["cron"] == "0 0 2 * * ?" and cron["paused"] is False
    name = cron["name"]
    r = await aclient.post(f"/schedules/{name}/pause")
    assert r.status_code == 200 and r.json()["schedule"]["paused"] is True
    r = await aclient.post(f"/schedules/{name}/resume")
    assert r.status_code == 200 and r.json()["schedule"]["paused"] is False
    r = await aclient.post(f"/schedules/{name}/trigger")
    assert r.status_code == 200, r.text
    triggered = r.json()["run"]
    assert triggered["jobName"] == "web-cron" and triggered["trigger"] == "MANUAL"
    assert (await web_stack.wait_status(aclient, triggered["id"]))["status"] == "SUCCESS"
    _error(await aclient.post("/schedules/no-such-schedule/pause"), 404)
    viewer = {"Authorization": f"Bearer {web_stack.token('viewer')}"}
    _error(await aclient.post(f"/schedules/{name}/trigger", headers=viewer), 403)

    me = (await aclient.get("/me")).json()["identity"]
    assert me == {"subject": "test-admin", "role": "admin", "method": "jwt"}


async def test_openapi_is_served_and_describes_the_routes(web_stack: Any) -> None:
    async with httpx.AsyncClient(base_url=web_stack.base) as client:
        spec = (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/admin/jobs", "/api/admin/jobs/{run_id}", "/api/admin/jobs/{run_id}/logs",
        "/api/admin/jobs/{run_id}/progress", "/api/admin/jobs/{run_id}/outcome",
        "/api/admin/jobs/{run_id}/cancel", "/api/admin/jobs/{run_id}/retry",
        "/api/admin/queues", "/api/admin/workers", "/api/admin/registry",
        "/api/admin/schedules", "/api/admin/stream/sse",
    ):
        assert path in paths, path
    logs = paths["/api/admin/jobs/{run_id}/logs"]["get"]
    assert {p["name"] for p in logs["parameters"]} == {"run_id", "level", "limit", "after"}
    assert logs["security"]
    schema = spec["components"]["schemas"]["LogModel"]
    assert list(schema["properties"]) == SEED_LOG_KEYS


async def test_sql_and_html_in_filters_and_logs_are_data(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    from web_jobs import HTML, SQL

    run = await web_stack.enqueue(aclient, "web-html", {"text": HTML}, correlationId=SQL)
    assert (await web_stack.wait_status(aclient, run["id"]))["status"] == "SUCCESS"
    r = await aclient.get(f"/jobs/{run['id']}/logs", params={"level": "info"})
    assert r.headers["content-type"] == "application/json"
    lines = r.json()["logs"]
    info = next(line for line in lines if line["level"] == "info")
    assert info["message"] == HTML and info["stage"] == HTML
    assert info["context"] == {"html": HTML, "sql": SQL}
    assert next(line for line in lines if line["level"] == "error")["message"] == SQL
    assert HTML in r.text or "\\u003c" not in r.text  # JSON text, not HTML
    progress = (await aclient.get(f"/jobs/{run['id']}/progress")).json()["progress"]
    assert progress["currentStage"] == HTML

    found = (await aclient.get("/jobs", params={"correlationId": SQL})).json()["runs"]
    assert [r["id"] for r in found] == [run["id"]]
    for text in (SQL, "' OR '1'='1", "%", "_", "\\", "<script>", HTML, "web-html' --"):
        for name in ("q", "job", "queue", "tenant", "correlationId"):
            r = await aclient.get("/jobs", params={name: text})
            assert r.status_code in (200, 422), (name, text, r.text)
            if r.status_code == 200:
                ids = {row["id"] for row in r.json()["runs"]}
                assert ids <= {run["id"]}, (name, text)
    assert "'status'" in _error(await aclient.get("/jobs", params={"status": "QUEUED'--"}), 422)
    q_sql = (await aclient.get("/jobs", params={"q": "DROP TABLE"})).json()["runs"]
    assert [r["id"] for r in q_sql] == [run["id"]]  # matched in the correlation id, as text
    from urllib.parse import urlencode

    async with web_stack.ws(urlencode({"job": SQL, "tenant": HTML})) as ws:
        import json

        hello = json.loads(await ws.recv())
        assert hello["filters"]["job"] == SQL and hello["filters"]["tenant"] == HTML
    final = await aclient.get(f"/jobs/{run['id']}")
    assert final.status_code == 200, final.text
    assert final.json()["run"]["status"] == "SUCCESS", final.text


async def test_unexpected_errors_are_logged_not_shown(
    web_stack: Any, aclient: httpx.AsyncClient, caplog: Any
) -> None:
    app = web_stack.api.state.jobglass

    async def broken() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    app.queue_stats = broken
    r = await aclient.get("/queues")
    message = _error(r, 500)
    assert "secret" not in message and "internal server error" in message
    assert any("secret internals" in str(rec.exc_info) for rec in caplog.records if rec.exc_info)


async def test_queue_throughput_counts_finished_runs_by_minute(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    from collections import Counter
    from datetime import UTC, datetime

    runs = [
        await web_stack.enqueue(aclient, "web-demo", {"lines": 2, "delay": 0.0}),
        await web_stack.enqueue(aclient, "web-demo", {"lines": 2, "delay": 0.0}, queue="default"),
        await web_stack.enqueue(aclient, "web-fail"),
    ]
    done = [await web_stack.wait_status(aclient, run["id"]) for run in runs]
    assert [run["status"] for run in done] == ["SUCCESS", "SUCCESS", "FAILED"]
    # a retried run counts once, at its latest end
    r = await aclient.post(f"/jobs/{done[2]['id']}/retry")
    assert r.status_code == 200, r.text
    retried = await web_stack.wait_status(aclient, done[2]["id"], ("FAILED",))
    done[2] = retried
    assert retried["attempt"] == 2
    await web_stack.enqueue(aclient, "web-sleep", {"seconds": 30})  # live: never counted

    viewer = {"Authorization": f"Bearer {web_stack.token('viewer')}"}
    r = await aclient.get("/queues/throughput", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"since", "minutes", "buckets"} and body["minutes"] == 60
    since = datetime.fromisoformat(body["since"].replace("Z", "+00:00"))
    assert since.second == 0 and 59 * 60 <= (datetime.now(UTC) - since).total_seconds() < 3600

    def minute_of(stamp: str) -> str:
        return stamp[:17] + "00.000Z"  # 2024-01-08T10:30:45.123Z -> 2024-01-08T10:30:00.000Z

    expected: Counter[tuple[str, str, str]] = Counter(
        (run["queue"], minute_of(run["finishedAt"]), run["status"]) for run in done
    )
    got: Counter[tuple[str, str, str]] = Counter()
    for bucket in body["buckets"]:
        assert set(bucket) == {"queue", "minute", "completed", "failed"}
        got[(bucket["queue"], bucket["minute"], "SUCCESS")] += bucket["completed"]
        got[(bucket["queue"], bucket["minute"], "FAILED")] += bucket["failed"]
    assert +got == expected
    queues = [(b["queue"], b["minute"]) for b in body["buckets"]]
    assert queues == sorted(queues)

    short = (await aclient.get("/queues/throughput", params={"minutes": 1})).json()
    assert short["minutes"] == 1 and short["since"] > body["since"]
    assert all(b["minute"] == short["since"] and b in body["buckets"] for b in short["buckets"])
    for bad in ("0", "1441", "x"):
        assert "minutes" in _error(
            await aclient.get("/queues/throughput", params={"minutes": bad}), 422
        )
    async with httpx.AsyncClient(base_url=web_stack.api_base) as anonymous:
        _error(await anonymous.get("/queues/throughput"), 401)
    async with httpx.AsyncClient(base_url=web_stack.base) as client:
        spec = (await client.get("/api/openapi.json")).json()
    route = spec["paths"]["/api/admin/queues/throughput"]["get"]
    assert route["security"] and {p["name"] for p in route["parameters"]} == {"minutes"}
