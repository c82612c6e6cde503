"""`app.enqueue` (the Python API) applies the shared bounds: `run_at` from 2000-01-01Z to ten
years ahead, integer tenant/user ids within signed 64 bits; refused by name, nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from qhelpers import QueueEnv

from jobglass import EnqueueRequest, InvalidInput

RUN_AT = "run_at must be from 2000-01-01T00:00:00Z to ten years from now"
INT64 = "must be a string or an integer that fits signed 64 bits"

REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"run_at": "0001-01-01T00:00:00Z"}, f"{RUN_AT}, got 0001-01-01T00:00:00Z"),
    ({"run_at": "1970-01-01T00:00:00+00:00"}, f"{RUN_AT}, got 1970-01-01T00:00:00Z"),
    ({"run_at": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)}, RUN_AT),
    ({"run_at": datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))}, RUN_AT),
    ({"run_at": "9999-12-31T23:59:59-01:00"}, RUN_AT),
    ({"run_at": datetime.now(UTC) + timedelta(days=3660)}, RUN_AT),
    ({"tenant_id": 10**30}, f"tenant_id {INT64}"),
    ({"tenant_id": 2**63}, f"tenant_id {INT64}"),
    ({"user_id": -(2**63) - 1}, f"user_id {INT64}"),
    ({"user_id": 10**30}, f"user_id {INT64}"),
]


async def test_out_of_bounds_enqueues_are_refused_and_write_nothing(qenv: QueueEnv) -> None:
    app = qenv.app
    for options, message in REFUSED:
        with pytest.raises(InvalidInput) as caught:
            await app.enqueue("noop", {"n": 1}, **options)
        assert message in str(caught.value), (options, str(caught.value))
        with pytest.raises(InvalidInput, match="must be"):  # the batch path: nothing written
            await app.enqueue_many([EnqueueRequest("noop"), EnqueueRequest("noop", **options)])
        with pytest.raises(InvalidInput, match="must be"):
            await app.enqueue_many([{"job_name": "noop", **options}])
    with pytest.raises(InvalidInput, match=f"tenant_id {INT64}"):
        await app.run_job("noop", tenant_id=10**30)
    with pytest.raises(InvalidInput, match=f"tenant_id {INT64}"):
        await app.enqueue_tenant(10**30, "noop")
    assert await qenv.count_rows("runs") == 0


async def test_bounds_themselves_are_accepted(qenv: QueueEnv) -> None:
    app = qenv.app
    earliest = await app.enqueue("noop", run_at="2000-01-01T00:00:00Z")
    assert earliest.run_at == datetime(2000, 1, 1, tzinfo=UTC)
    zoned = await app.enqueue("noop", run_at="2000-01-01T01:00:00+01:00")
    assert zoned.run_at == datetime(2000, 1, 1, tzinfo=UTC)
    ahead = datetime.now(UTC) + timedelta(days=9 * 365)
    late = await app.enqueue("noop", run_at=ahead)
    assert late.run_at is not None and abs((late.run_at - ahead).total_seconds()) < 0.01
    big = await app.enqueue("noop", tenant_id=2**63 - 1, user_id=-(2**63))
    assert big.tenant_id == str(2**63 - 1) and big.user_id == str(-(2**63))
    text = await app.enqueue("noop", tenant_id="1" * 40)  # strings are taken as they are
    assert text.tenant_id == "1" * 40
    stored = await app.get_run(big.id)
    assert stored.tenant_id == "9223372036854775807" and stored.user_id == "-9223372036854775808"
    assert await qenv.count_rows("runs") == 5
