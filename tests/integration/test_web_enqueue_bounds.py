"""`POST /api/admin/jobs` refuses out-of-bounds `runAt`, `tenantId` and `userId` with a 422
naming the field (the shared enqueue bounds), over real HTTP, on both backends."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

RUN_AT = "body field 'runAt': must be from 2000-01-01T00:00:00Z to ten years from now"
INT64 = "must be a string or an integer that fits signed 64 bits"


def _error(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == 422, body
    message: str = body["error"]["message"]
    assert "Traceback" not in message
    return message


async def test_out_of_bounds_enqueue_is_refused_by_name(make_web_stack: Any) -> None:
    stack = make_web_stack(worker=False)
    eleven_years = (datetime.now(UTC) + timedelta(days=11 * 365)).isoformat()
    refused: list[tuple[dict[str, Any], str]] = [
        ({"runAt": "0001-01-01T00:00:00Z"}, f"{RUN_AT}, got 0001-01-01T00:00:00Z"),
        ({"runAt": "1970-01-01T00:00:00Z"}, f"{RUN_AT}, got 1970-01-01T00:00:00Z"),
        ({"runAt": "1999-12-31T23:59:59.999Z"}, RUN_AT),
        ({"runAt": "2000-01-01T00:30:00+01:00"}, f"{RUN_AT}, got 1999-12-31T23:30:00Z"),
        ({"runAt": "0001-01-01T00:00:00+01:00"}, RUN_AT),  # before UTC's year 1: no overflow
        ({"runAt": "9999-12-31T23:59:59-01:00"}, RUN_AT),
        ({"runAt": eleven_years}, RUN_AT),
        ({"tenantId": 10**30}, f"body field 'tenantId': {INT64}"),
        ({"tenantId": 2**63}, f"body field 'tenantId': {INT64}"),
        ({"tenantId": -(2**63) - 1}, f"body field 'tenantId': {INT64}"),
        ({"userId": 10**30}, f"body field 'userId': {INT64}"),
        ({"userId": -(10**30)}, f"body field 'userId': {INT64}"),
        ({"tenantId": "t\u0000"}, "body field 'tenantId': must not contain NUL"),
        ({"userId": "\u0000u"}, "body field 'userId': must not contain NUL"),
        ({"correlationId": "c\u0000"}, "correlationId: NUL characters are not allowed"),
        ({"jobId": "j\u0000"}, "jobId: NUL characters are not allowed"),
    ]
    async with stack.client() as client:
        for extra, message in refused:
            r = await client.post("/jobs", json={"jobName": "web-demo", **extra})
            assert message in _error(r), (extra, r.text)
        # a float literal that size is no id either (refused by the body's own parsing)
        raw = b'{"jobName": "web-demo", "tenantId": 1e30}'
        json_type = {"content-type": "application/json"}
        assert "'tenantId" in _error(await client.post("/jobs", content=raw, headers=json_type))
        # both fields wrong: both named
        both = {"jobName": "web-demo", "tenantId": 10**30, "runAt": "0001-01-01T00:00:00Z"}
        message = _error(await client.post("/jobs", json=both))
        assert "'tenantId'" in message and "'runAt'" in message
        # unchanged: a number no float holds is refused by the JSON layer
        huge = b'{"jobName": "web-demo", "tenantId": 1e400}'
        _error(await client.post("/jobs", content=huge, headers=json_type))
        assert (await client.get("/jobs")).json()["runs"] == []  # nothing was written

        # the bounds themselves are accepted; integer ids come back as strings
        r = await client.post(
            "/jobs", json={"jobName": "web-demo", "runAt": "2000-01-01T00:00:00Z"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["run"]["runAt"] == "2000-01-01T00:00:00.000Z"
        nine_years = datetime.now(UTC) + timedelta(days=9 * 365)
        r = await client.post(
            "/jobs", json={"jobName": "web-demo", "runAt": nine_years.isoformat()}
        )
        assert r.status_code == 201, r.text
        body = {"jobName": "web-demo", "tenantId": 2**63 - 1, "userId": -(2**63)}
        r = await client.post("/jobs", content=json.dumps(body), headers=json_type)
        assert r.status_code == 201, r.text
        run = r.json()["run"]
        assert run["tenantId"] == "9223372036854775807" and run["userId"] == "-9223372036854775808"
        assert len((await client.get("/jobs")).json()["runs"]) == 3

        # the oldest waiting run dates from 2000 at most: its age stays a sane figure
        stats = (await client.get("/queues/stats")).json()["web"]
        age = stats["oldestWaitingAgeSeconds"]
        assert age is not None and age <= time.time() - 946_684_800 + 60
