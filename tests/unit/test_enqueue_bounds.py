"""The shared enqueue bounds: `run_at` from 2000-01-01Z to ten years ahead, integer ids in int64."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobglass.enqueue import (
    EARLIEST_RUN_AT,
    ID_INT_RANGE,
    MAX_AHEAD_SECONDS,
    id_problem,
    run_at_problem,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATEST = NOW + timedelta(seconds=MAX_AHEAD_SECONDS)
PLUS_ONE = timezone(timedelta(hours=1))
MINUS_ONE = timezone(timedelta(hours=-1))


@pytest.mark.parametrize(
    "run_at",
    [
        EARLIEST_RUN_AT,
        datetime(2000, 1, 1, 1, 0, tzinfo=PLUS_ONE),  # the same instant, another zone
        NOW - timedelta(days=3650),  # long past, still a real time: runs as soon as possible
        NOW,
        LATEST,
        LATEST.astimezone(MINUS_ONE),
    ],
)
def test_run_at_inside_the_bounds(run_at: datetime) -> None:
    assert run_at_problem(run_at, NOW) is None


@pytest.mark.parametrize(
    ("run_at", "shown"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "got 0001-01-01T00:00:00Z"),
        (datetime(1970, 1, 1, tzinfo=UTC), "got 1970-01-01T00:00:00Z"),
        (EARLIEST_RUN_AT - timedelta(microseconds=1), "got 1999-12-31T23:59:59.999999Z"),
        (datetime(2000, 1, 1, tzinfo=PLUS_ONE), "got 1999-12-31T23:00:00Z"),
        (LATEST + timedelta(seconds=1), "got 2036-05-29T12:00:01Z"),
        (datetime(9999, 12, 31, tzinfo=UTC), "got 9999-12-31T00:00:00Z"),
        # out of datetime's range once converted to UTC: refused, never an OverflowError
        (datetime.min.replace(tzinfo=PLUS_ONE), "got 0001-01-01T00:00:00+01:00"),
        (datetime.max.replace(tzinfo=MINUS_ONE), "got 9999-12-31T23:59:59.999999-01:00"),
    ],
)
def test_run_at_outside_the_bounds(run_at: datetime, shown: str) -> None:
    problem = run_at_problem(run_at, NOW)
    assert problem is not None
    assert problem.startswith("must be from 2000-01-01T00:00:00Z to ten years from now")
    assert problem.endswith(shown), problem


def test_run_at_upper_bound_follows_the_clock() -> None:
    nine_years = datetime.now(UTC) + timedelta(days=9 * 365)
    assert run_at_problem(nine_years) is None
    assert run_at_problem(datetime.now(UTC) + timedelta(days=11 * 365)) is not None


@pytest.mark.parametrize(
    "value",
    [None, 0, 1, -1, 42, 2**63 - 1, -(2**63), "tenant-7", "1" * 40, True, False],
)
def test_ids_inside_the_bounds(value: object) -> None:
    assert id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "bits"),
    [(2**63, 65), (-(2**63) - 1, 65), (10**30, 101), (-(10**30), 101), (10**5000, 16611)],
    ids=["2^63", "-2^63-1", "10^30", "-10^30", "10^5000"],  # str(10**5000) would raise
)
def test_ids_outside_the_bounds(value: int, bits: int) -> None:
    problem = id_problem(value)
    low, high = ID_INT_RANGE
    assert problem == (
        f"must be a string or an integer that fits signed 64 bits ({low} to {high}),"
        f" got a {bits}-bit integer"
    )
