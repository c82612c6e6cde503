"""The runs list's time-range and queue filters, over real HTTP, on both backends.

`createdAfter` is inclusive, `createdBefore` exclusive; a time without a zone is UTC."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

GAP = 0.3  # seconds between the three batches: wider than any clock granularity


def _at(run: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(run["createdAt"].replace("Z", "+00:00"))


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/jobs", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["nextCursor"] is None  # every match fits one page here
    return [run["id"] for run in body["runs"]]


async def test_time_range_and_queue_filters(make_web_stack: Any) -> None:
    stack = make_web_stack(worker=False)  # the runs stay QUEUED: only their rows matter
    async with stack.client() as client:
        batches: list[list[dict[str, Any]]] = []
        for i in range(3):
            if i:
                await asyncio.sleep(GAP)
            batch = [
                await stack.enqueue(client, "web-demo", queue=queue) for queue in ("alpha", "beta")
            ]
            batches.append(batch)
        a, b, c = ([run["id"] for run in batch] for batch in batches)
        newest_first = [*c[::-1], *b[::-1], *a[::-1]]
        assert await _ids(client) == newest_first

        # the range [first of B, first of C): exactly batch B
        start, end = batches[1][0]["createdAt"], batches[2][0]["createdAt"]
        assert _at(batches[0][1]) < _at(batches[1][0]) and _at(batches[1][1]) < _at(batches[2][0])
        assert await _ids(client, createdAfter=start, createdBefore=end) == b[::-1]
        assert await _ids(client, createdAfter=start) == [*c[::-1], *b[::-1]]
        assert await _ids(client, createdBefore=start) == a[::-1]
        assert await _ids(client, createdBefore=end) == [*b[::-1], *a[::-1]]

        # the same instants written in another zone, and without a zone (taken as UTC)
        plus_two = timezone(timedelta(hours=2))
        zoned = {
            "createdAfter": _at(batches[1][0]).astimezone(plus_two).isoformat(),
            "createdBefore": _at(batches[2][0]).astimezone(plus_two).isoformat(),
        }
        assert "+02:00" in zoned["createdAfter"]
        assert await _ids(client, **zoned) == b[::-1]
        naive = {
            "createdAfter": _at(batches[1][0]).replace(tzinfo=None).isoformat(),
            "createdBefore": _at(batches[2][0]).replace(tzinfo=None).isoformat(),
        }
        assert await _ids(client, **naive) == b[::-1]

        # a range around all of them, and ranges that hold none
        first, last = _at(batches[0][0]), _at(batches[2][1])
        around = {
            "createdAfter": (first - timedelta(minutes=1)).isoformat(),
            "createdBefore": (last + timedelta(minutes=1)).isoformat(),
        }
        assert await _ids(client, **around) == newest_first
        assert await _ids(client, createdAfter=(last + timedelta(seconds=1)).isoformat()) == []
        assert await _ids(client, createdBefore=first.isoformat()) == []
        assert await _ids(client, createdAfter=end, createdBefore=start) == []  # inverted

        # queue: only that queue's runs, newest first; combined with the time range
        assert await _ids(client, queue="alpha") == [c[0], b[0], a[0]]
        assert await _ids(client, queue="beta") == [c[1], b[1], a[1]]
        assert await _ids(client, queue="gamma") == []
        assert await _ids(client, queue="web") == []  # the job's default queue: none went there
        assert await _ids(client, queue="alpha", createdAfter=start, createdBefore=end) == [b[0]]
        assert await _ids(client, queue="beta", createdAfter=start) == [c[1], b[1]]
        assert await _ids(client, queue="beta", createdBefore=start) == [a[1]]
        listed = (await client.get("/jobs", params={"queue": "alpha"})).json()["runs"]
        assert {run["queue"] for run in listed} == {"alpha"}

        # other filters still combine with these, and paging keeps to the range
        assert await _ids(client, queue="alpha", status="queued", job="web-demo") == [
            c[0],
            b[0],
            a[0],
        ]
        assert await _ids(client, queue="alpha", status="running") == []
        page = (await client.get("/jobs", params={**around, "limit": 4})).json()
        assert [run["id"] for run in page["runs"]] == newest_first[:4]
        assert page["nextCursor"] == newest_first[3]
        rest = await _ids(client, **around, cursor=page["nextCursor"])
        assert rest == newest_first[4:]
