"""Tests for jobglass.cron.

Every expected fire time below was worked out by hand from a printed calendar
(e.g. 2026-01-01 is a Thursday, 2026-08-01 a Saturday, 2026-05-31 a Sunday) and
the published DST rules (EU: last Sunday of March/October at 01:00 UTC; US:
second Sunday of March / first Sunday of November at 02:00 local).

Aware datetimes are compared in UTC: by PEP 495, an aware datetime inside a
repeated (fall-back) hour never compares equal to one in another zone.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from jobglass.cron import (
    CronError,
    CronSchedule,
    IntervalSchedule,
    next_fire_times,
    parse_interval,
    parse_schedule,
)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def first_n(expr: str, after: datetime, n: int, tz: str = "UTC") -> list[datetime]:
    schedule = CronSchedule.parse(expr, tz)
    out: list[datetime] = []
    for when in schedule.iter_after(after):
        out.append(when.astimezone(UTC))
        if len(out) == n:
            break
    return out


# --------------------------------------------------------------------------- table

JAN1 = utc(2026, 1, 1)

CASES: list[tuple[str, datetime, list[datetime]]] = [
    # --- Quartz basics
    ("0 0 2 * * ?", JAN1, [utc(2026, 1, 1, 2), utc(2026, 1, 2, 2)]),
    ("0 0 8 ? * MON", JAN1, [utc(2026, 1, 5, 8), utc(2026, 1, 12, 8)]),
    ("0 0 6 1 * ?", JAN1, [utc(2026, 1, 1, 6), utc(2026, 2, 1, 6), utc(2026, 3, 1, 6)]),
    # --- Quartz day-of-week numbering: 1=SUN, 2=MON, ..., 7=SAT
    ("0 0 8 ? * 1", JAN1, [utc(2026, 1, 4, 8), utc(2026, 1, 11, 8)]),  # Sundays
    ("0 0 8 ? * 2", JAN1, [utc(2026, 1, 5, 8), utc(2026, 1, 12, 8)]),  # Mondays
    ("0 0 8 ? * 7", JAN1, [utc(2026, 1, 3, 8), utc(2026, 1, 10, 8)]),  # Saturdays
    (
        "0 30 9 ? * 2,4,6",
        JAN1,
        [utc(2026, 1, 2, 9, 30), utc(2026, 1, 5, 9, 30), utc(2026, 1, 7, 9, 30)],
    ),
    ("0 0 12 ? * L", JAN1, [utc(2026, 1, 3, 12), utc(2026, 1, 10, 12)]),  # L alone = SAT
    # --- steps
    (
        "0 */15 * * * ?",
        utc(2026, 1, 1, 10, 7, 30),
        [
            utc(2026, 1, 1, 10, 15),
            utc(2026, 1, 1, 10, 30),
            utc(2026, 1, 1, 10, 45),
            utc(2026, 1, 1, 11, 0),
        ],
    ),
    (
        "*/5 * * * * ?",
        utc(2026, 1, 1, 10, 0, 3),
        [utc(2026, 1, 1, 10, 0, 5), utc(2026, 1, 1, 10, 0, 10)],
    ),
    (
        "0 10-50/10 * * * ?",
        utc(2026, 1, 1, 10, 50),
        [utc(2026, 1, 1, 11, 10), utc(2026, 1, 1, 11, 20)],
    ),
    (
        "5/15 * * * * ?",
        utc(2026, 1, 1, 10, 0, 50),
        [utc(2026, 1, 1, 10, 1, 5), utc(2026, 1, 1, 10, 1, 20)],
    ),
    ("0 0 */6 * * ?", utc(2026, 1, 1, 13), [utc(2026, 1, 1, 18), utc(2026, 1, 2, 0)]),
    # --- L, L-n, LW
    ("0 0 0 L * ?", JAN1, [utc(2026, 1, 31), utc(2026, 2, 28), utc(2026, 3, 31)]),
    ("0 0 0 L-2 * ?", JAN1, [utc(2026, 1, 29), utc(2026, 2, 26), utc(2026, 3, 29)]),
    # Jan 31 and Feb 28 2026 are Saturdays -> Friday; Mar 31 is a Tuesday
    ("0 0 0 LW * ?", JAN1, [utc(2026, 1, 30), utc(2026, 2, 27), utc(2026, 3, 31)]),
    ("0 0 0 LW * ?", utc(2026, 5, 1), [utc(2026, 5, 29)]),  # May 31 2026 is a Sunday
    # --- nW
    (
        "0 0 0 15W * ?",
        utc(2026, 1, 1),
        [utc(2026, 1, 15), utc(2026, 2, 16), utc(2026, 3, 16)],
    ),  # Feb/Mar 15 = Sun
    ("0 0 0 15W * ?", utc(2026, 8, 1), [utc(2026, 8, 14)]),  # Aug 15 2026 = Saturday -> Fri 14
    ("0 0 0 1W * ?", utc(2026, 7, 15), [utc(2026, 8, 3)]),  # Aug 1 = Sat -> Mon 3, not Jul 31
    ("0 0 0 1W * ?", utc(2026, 1, 15), [utc(2026, 2, 2)]),  # Feb 1 = Sun -> Mon 2
    ("0 0 0 31W * ?", utc(2026, 5, 1), [utc(2026, 5, 29)]),  # May 31 = Sun -> Fri 29, not Jun 1
    # --- # and nL
    ("0 0 10 ? * 6#3", JAN1, [utc(2026, 1, 16, 10), utc(2026, 2, 20, 10)]),  # third Friday
    ("0 0 10 ? * fri#3", JAN1, [utc(2026, 1, 16, 10)]),
    ("0 0 0 ? * 2#5", JAN1, [utc(2026, 3, 30)]),  # first month with a 5th Monday
    ("0 0 0 ? * 6L", JAN1, [utc(2026, 1, 30), utc(2026, 2, 27), utc(2026, 3, 27)]),  # last Fri
    ("0 0 0 ? * 5L", JAN1, [utc(2026, 1, 29), utc(2026, 2, 26)]),  # Quartz 5 = THU
    # --- Feb 29, names, wrap-around ranges, years
    ("0 0 0 29 2 ?", JAN1, [utc(2028, 2, 29), utc(2032, 2, 29)]),
    ("0 0 12 1 jan,JUL ?", JAN1, [utc(2026, 1, 1, 12), utc(2026, 7, 1, 12), utc(2027, 1, 1, 12)]),
    ("0 0 9 ? * mon-FRI", utc(2026, 1, 2, 10), [utc(2026, 1, 5, 9), utc(2026, 1, 6, 9)]),
    (
        "0 0 0 ? * FRI-MON",
        JAN1,
        [utc(2026, 1, 2), utc(2026, 1, 3), utc(2026, 1, 4), utc(2026, 1, 5), utc(2026, 1, 9)],
    ),
    (
        "0 0 12 1 JAN-MAR ? 2027",
        JAN1,
        [utc(2027, 1, 1, 12), utc(2027, 2, 1, 12), utc(2027, 3, 1, 12)],
    ),
    ("0 0 0 1 1 ? 2025", JAN1, []),  # year already past
    ("0 0 0 30 2 ?", JAN1, []),  # never exists
    ("0 0 0 31 4,6,9,11 ?", JAN1, []),  # never exists
    # --- classic 5-field: min hour dom month dow, 0 and 7 = Sunday
    (
        "*/15 * * * *",
        utc(2026, 1, 1, 10, 7, 30),
        [utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30)],
    ),
    ("0 2 * * 1-5", utc(2026, 1, 2, 3), [utc(2026, 1, 5, 2), utc(2026, 1, 6, 2)]),
    ("0 0 * * 0", JAN1, [utc(2026, 1, 4), utc(2026, 1, 11)]),
    ("0 0 * * 7", JAN1, [utc(2026, 1, 4), utc(2026, 1, 11)]),
    ("0 0 * * sun", JAN1, [utc(2026, 1, 4)]),
    ("0 0 * * 5L", JAN1, [utc(2026, 1, 30)]),  # classic 5 = FRI
    ("0 0 * * 5#3", JAN1, [utc(2026, 1, 16)]),
    # classic OR rule: the 1st of the month OR any Monday
    ("0 0 1 * 1", utc(2026, 1, 20), [utc(2026, 1, 26), utc(2026, 2, 1), utc(2026, 2, 2)]),
    ("0 0 13 * 5", utc(2026, 2, 1), [utc(2026, 2, 6), utc(2026, 2, 13), utc(2026, 2, 20)]),
    # Vixie quirk: a '*'-led day-of-month (*/10 = 1,11,21,31) is ANDed with the weekday
    ("0 0 */10 * 1", JAN1, [utc(2026, 5, 11)]),
    # --- macros
    ("@hourly", utc(2026, 1, 1, 10, 7), [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)]),
    ("@daily", utc(2026, 1, 1, 10), [utc(2026, 1, 2), utc(2026, 1, 3)]),
    ("@midnight", utc(2026, 1, 1, 10), [utc(2026, 1, 2)]),
    ("@weekly", JAN1, [utc(2026, 1, 4), utc(2026, 1, 11)]),
    ("@monthly", JAN1, [utc(2026, 2, 1), utc(2026, 3, 1)]),
    ("@yearly", JAN1, [utc(2027, 1, 1)]),
    ("@ANNUALLY", JAN1, [utc(2027, 1, 1)]),
]


@pytest.mark.parametrize(("expr", "after", "expected"), CASES)
def test_next_fire_times_table(expr: str, after: datetime, expected: list[datetime]) -> None:
    n = len(expected) if expected else 3
    assert first_n(expr, after, n) == expected


def test_next_after_is_strict() -> None:
    schedule = CronSchedule.parse("0 0 2 * * ?")
    assert schedule.next_after(utc(2026, 1, 1, 2)) == utc(2026, 1, 2, 2)
    assert schedule.next_after(utc(2026, 1, 1, 1, 59, 59)) == utc(2026, 1, 1, 2)
    just_after = datetime(2026, 1, 1, 2, 0, 0, 1, tzinfo=UTC)
    assert schedule.next_after(just_after) == utc(2026, 1, 2, 2)


def test_naive_after_is_utc_and_result_is_aware_in_schedule_zone() -> None:
    schedule = CronSchedule.parse("0 0 8 ? * MON", "Europe/Berlin")
    got = schedule.next_after(datetime(2026, 1, 1))  # naive = UTC
    assert got is not None
    assert got.tzinfo == ZoneInfo("Europe/Berlin")
    assert got.isoformat() == "2026-01-05T08:00:00+01:00"


def test_after_in_another_zone() -> None:
    schedule = CronSchedule.parse("0 0 2 * * ?")  # UTC
    after = datetime(2026, 1, 1, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # = 01:30Z
    assert schedule.next_after(after) == utc(2026, 1, 1, 2)


def test_year_field_ends_iteration() -> None:
    schedule = CronSchedule.parse("0 0 12 1 JAN-MAR ? 2027")
    assert list(schedule.iter_after(JAN1)) == [
        utc(2027, 1, 1, 12),
        utc(2027, 2, 1, 12),
        utc(2027, 3, 1, 12),
    ]
    assert schedule.next_after(utc(2027, 3, 1, 12)) is None


def test_impossible_dates_terminate_quickly() -> None:
    schedule = CronSchedule.parse("0 0 0 30 2 ?")
    start = time.perf_counter()
    assert schedule.next_after(JAN1) is None
    assert time.perf_counter() - start < 0.5


# --------------------------------------------------------------------------- DST
# Each row: expression, zone, after (UTC), expected fire times as
# (UTC instant, local wall clock with offset).

DST_CASES: list[tuple[str, str, datetime, list[tuple[datetime, str]]]] = [
    # Berlin spring forward 2026-03-29: 02:00 CET -> 03:00 CEST (01:00Z).
    # 02:30 does not exist: fires at the first valid instant after the gap.
    (
        "0 30 2 * * ?",
        "Europe/Berlin",
        utc(2026, 3, 28),
        [
            (utc(2026, 3, 28, 1, 30), "2026-03-28 02:30+01:00"),
            (utc(2026, 3, 29, 1, 0), "2026-03-29 03:00+02:00"),
            (utc(2026, 3, 30, 0, 30), "2026-03-30 02:30+02:00"),
        ],
    ),
    # Berlin fall back 2026-10-25: 03:00 CEST -> 02:00 CET (01:00Z); 02:30 occurs twice:
    # fires once, at the first occurrence (00:30Z), not again at 01:30Z.
    (
        "0 30 2 * * ?",
        "Europe/Berlin",
        utc(2026, 10, 24),
        [
            (utc(2026, 10, 24, 0, 30), "2026-10-24 02:30+02:00"),
            (utc(2026, 10, 25, 0, 30), "2026-10-25 02:30+02:00"),
            (utc(2026, 10, 26, 1, 30), "2026-10-26 02:30+01:00"),
        ],
    ),
    # every 30 minutes keeps 30 real minutes across both transitions
    (
        "0 */30 * * * ?",
        "Europe/Berlin",
        utc(2026, 3, 28, 23, 45),
        [
            (utc(2026, 3, 29, 0, 0), "2026-03-29 01:00+01:00"),
            (utc(2026, 3, 29, 0, 30), "2026-03-29 01:30+01:00"),
            (utc(2026, 3, 29, 1, 0), "2026-03-29 03:00+02:00"),
            (utc(2026, 3, 29, 1, 30), "2026-03-29 03:30+02:00"),
        ],
    ),
    (
        "0 */30 * * * ?",
        "Europe/Berlin",
        utc(2026, 10, 24, 23, 45),
        [
            (utc(2026, 10, 25, 0, 0), "2026-10-25 02:00+02:00"),
            (utc(2026, 10, 25, 0, 30), "2026-10-25 02:30+02:00"),
            (utc(2026, 10, 25, 1, 0), "2026-10-25 02:00+01:00"),
            (utc(2026, 10, 25, 1, 30), "2026-10-25 02:30+01:00"),
            (utc(2026, 10, 25, 2, 0), "2026-10-25 03:00+01:00"),
        ],
    ),
    # hourly at :30 gets no extra catch-up run for the skipped 02:30 (03:30 follows)
    (
        "0 30 * * * ?",
        "Europe/Berlin",
        utc(2026, 3, 28, 23, 45),
        [
            (utc(2026, 3, 29, 0, 30), "2026-03-29 01:30+01:00"),
            (utc(2026, 3, 29, 1, 30), "2026-03-29 03:30+02:00"),
            (utc(2026, 3, 29, 2, 30), "2026-03-29 04:30+02:00"),
        ],
    ),
    (
        "0 0 * * * ?",
        "Europe/Berlin",
        utc(2026, 10, 24, 23, 30),
        [
            (utc(2026, 10, 25, 0, 0), "2026-10-25 02:00+02:00"),
            (utc(2026, 10, 25, 1, 0), "2026-10-25 02:00+01:00"),
            (utc(2026, 10, 25, 2, 0), "2026-10-25 03:00+01:00"),
        ],
    ),
    # per-minute across both transitions
    (
        "0 * * * * ?",
        "Europe/Berlin",
        utc(2026, 3, 29, 0, 58),
        [
            (utc(2026, 3, 29, 0, 59), "2026-03-29 01:59+01:00"),
            (utc(2026, 3, 29, 1, 0), "2026-03-29 03:00+02:00"),
            (utc(2026, 3, 29, 1, 1), "2026-03-29 03:01+02:00"),
        ],
    ),
    (
        "0 * * * * ?",
        "Europe/Berlin",
        utc(2026, 10, 25, 0, 58),
        [
            (utc(2026, 10, 25, 0, 59), "2026-10-25 02:59+02:00"),
            (utc(2026, 10, 25, 1, 0), "2026-10-25 02:00+01:00"),
            (utc(2026, 10, 25, 1, 1), "2026-10-25 02:01+01:00"),
        ],
    ),
    # New York spring forward 2026-03-08: 02:00 EST -> 03:00 EDT (07:00Z)
    (
        "0 30 2 * * ?",
        "America/New_York",
        utc(2026, 3, 7),
        [
            (utc(2026, 3, 7, 7, 30), "2026-03-07 02:30-05:00"),
            (utc(2026, 3, 8, 7, 0), "2026-03-08 03:00-04:00"),
            (utc(2026, 3, 9, 6, 30), "2026-03-09 02:30-04:00"),
        ],
    ),
    # New York fall back 2026-11-01: 02:00 EDT -> 01:00 EST (06:00Z); 02:30 exists once
    (
        "0 30 2 * * ?",
        "America/New_York",
        utc(2026, 10, 31),
        [
            (utc(2026, 10, 31, 6, 30), "2026-10-31 02:30-04:00"),
            (utc(2026, 11, 1, 7, 30), "2026-11-01 02:30-05:00"),
            (utc(2026, 11, 2, 7, 30), "2026-11-02 02:30-05:00"),
        ],
    ),
    # ... but 01:30 exists twice there: first occurrence only
    (
        "0 30 1 * * ?",
        "America/New_York",
        utc(2026, 10, 31, 12),
        [
            (utc(2026, 11, 1, 5, 30), "2026-11-01 01:30-04:00"),
            (utc(2026, 11, 2, 6, 30), "2026-11-02 01:30-05:00"),
        ],
    ),
    (
        "0 */30 * * * ?",
        "America/New_York",
        utc(2026, 3, 8, 5, 45),
        [
            (utc(2026, 3, 8, 6, 0), "2026-03-08 01:00-05:00"),
            (utc(2026, 3, 8, 6, 30), "2026-03-08 01:30-05:00"),
            (utc(2026, 3, 8, 7, 0), "2026-03-08 03:00-04:00"),
            (utc(2026, 3, 8, 7, 30), "2026-03-08 03:30-04:00"),
        ],
    ),
    (
        "0 */30 * * * ?",
        "America/New_York",
        utc(2026, 11, 1, 4, 45),
        [
            (utc(2026, 11, 1, 5, 0), "2026-11-01 01:00-04:00"),
            (utc(2026, 11, 1, 5, 30), "2026-11-01 01:30-04:00"),
            (utc(2026, 11, 1, 6, 0), "2026-11-01 01:00-05:00"),
            (utc(2026, 11, 1, 6, 30), "2026-11-01 01:30-05:00"),
            (utc(2026, 11, 1, 7, 0), "2026-11-01 02:00-05:00"),
        ],
    ),
    # classic 5-field expressions follow the same rules
    (
        "30 2 * * *",
        "Europe/Berlin",
        utc(2026, 3, 28, 12),
        [
            (utc(2026, 3, 29, 1, 0), "2026-03-29 03:00+02:00"),
        ],
    ),
    # starting inside the repeated hour: first pass (02:10 CEST) and second pass (02:10 CET)
    (
        "0 */30 * * * ?",
        "Europe/Berlin",
        utc(2026, 10, 25, 0, 10),
        [
            (utc(2026, 10, 25, 0, 30), "2026-10-25 02:30+02:00"),
            (utc(2026, 10, 25, 1, 0), "2026-10-25 02:00+01:00"),
        ],
    ),
    (
        "0 */30 * * * ?",
        "Europe/Berlin",
        utc(2026, 10, 25, 1, 10),
        [
            (utc(2026, 10, 25, 1, 30), "2026-10-25 02:30+01:00"),
            (utc(2026, 10, 25, 2, 0), "2026-10-25 03:00+01:00"),
        ],
    ),
    (
        "0 30 2 * * ?",
        "Europe/Berlin",
        utc(2026, 10, 25, 0, 30),
        [
            (utc(2026, 10, 26, 1, 30), "2026-10-26 02:30+01:00"),
        ],
    ),
    (
        "0 30 2 * * ?",
        "Europe/Berlin",
        utc(2026, 10, 25, 1, 10),
        [
            (utc(2026, 10, 26, 1, 30), "2026-10-26 02:30+01:00"),
        ],
    ),
    # resuming right at the spring catch-up instant does not fire again that day
    (
        "0 30 2 * * ?",
        "Europe/Berlin",
        utc(2026, 3, 29, 1, 0),
        [
            (utc(2026, 3, 30, 0, 30), "2026-03-30 02:30+02:00"),
        ],
    ),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), DST_CASES)
def test_dst_transitions(
    expr: str, tz: str, after: datetime, expected: list[tuple[datetime, str]]
) -> None:
    schedule = CronSchedule.parse(expr, tz)
    got: list[datetime] = []
    for when in schedule.iter_after(after):
        got.append(when)
        if len(got) == len(expected):
            break
    assert [g.astimezone(UTC) for g in got] == [instant for instant, _ in expected]
    assert [g.isoformat(sep=" ", timespec="minutes") for g in got] == [w for _, w in expected]
    assert all(g.tzinfo == ZoneInfo(tz) for g in got)


TRANSITIONS = {
    "Europe/Berlin": [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)],
    "America/New_York": [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)],
}


@pytest.mark.parametrize("tz", sorted(TRANSITIONS))
@pytest.mark.parametrize(
    ("expr", "spacing"),
    [
        ("0 * * * * ?", timedelta(minutes=1)),
        ("0 */15 * * * ?", timedelta(minutes=15)),
        ("0 */30 * * * ?", timedelta(minutes=30)),
        ("0 0 * * * ?", timedelta(hours=1)),
        ("0 30 * * * ?", timedelta(hours=1)),
        ("*/20 * * * *", timedelta(minutes=20)),
    ],
)
def test_sub_hourly_schedules_keep_real_time_spacing_across_dst(
    tz: str, expr: str, spacing: timedelta
) -> None:
    schedule = CronSchedule.parse(expr, tz)
    for transition in TRANSITIONS[tz]:
        start = transition - timedelta(days=1)
        fires: list[datetime] = []
        for when in schedule.iter_after(start):
            fires.append(when.astimezone(UTC))
            if fires[-1] > transition + timedelta(days=1):
                break
        gaps = {b - a for a, b in pairwise(fires)}
        assert gaps == {spacing}, (tz, transition, sorted(gaps))


def test_daily_schedule_fires_exactly_once_per_day_across_dst() -> None:
    for tz in ("Europe/Berlin", "America/New_York"):
        for expr in ("0 30 2 * * ?", "0 30 1 * * ?", "0 0 3 * * ?"):
            schedule = CronSchedule.parse(expr, tz)
            days = []
            for when in schedule.iter_after(utc(2026, 3, 1)):
                if when.year == 2027:
                    break
                days.append(when.date())
            assert len(days) == len(set(days)) == 306, (tz, expr)  # Mar 1 .. Dec 31


# --------------------------------------------------------------------------- next_fire_times


def test_next_fire_times_returns_aware_datetimes_with_right_offset() -> None:
    got = next_fire_times("0 0 8 ? * MON", after=utc(2026, 3, 20), n=3, tz="Europe/Berlin")
    assert [g.isoformat() for g in got] == [
        "2026-03-23T08:00:00+01:00",
        "2026-03-30T08:00:00+02:00",
        "2026-04-06T08:00:00+02:00",
    ]
    assert [g.astimezone(UTC) for g in got] == [
        utc(2026, 3, 23, 7),
        utc(2026, 3, 30, 6),
        utc(2026, 4, 6, 6),
    ]


def test_next_fire_times_reads_a_naive_after_as_wall_time_in_the_zone() -> None:
    """As `jobglass cron --after` does: 07:30 is 07:30 in Berlin (06:30Z), not 07:30Z."""
    naive = next_fire_times("0 0 8 * * ?", after=datetime(2026, 1, 5, 7, 30), n=2,
                            tz="Europe/Berlin")  # fmt: skip
    assert [g.isoformat() for g in naive] == [
        "2026-01-05T08:00:00+01:00",
        "2026-01-06T08:00:00+01:00",
    ]
    berlin = datetime(2026, 1, 5, 7, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert next_fire_times("0 0 8 * * ?", after=berlin, n=2, tz="Europe/Berlin") == naive
    # aware times keep their own zone: 07:30Z is 08:30 in Berlin, past that day's fire
    aware = next_fire_times("0 0 8 * * ?", after=utc(2026, 1, 5, 7, 30), n=1, tz="Europe/Berlin")
    assert [g.isoformat() for g in aware] == ["2026-01-06T08:00:00+01:00"]
    # in UTC (the default zone) naive and UTC agree
    assert next_fire_times("@daily", after=datetime(2026, 1, 1, 10), n=1) == [utc(2026, 1, 2)]
    # a wall time the spring-forward change skips is read with the offset before it:
    # 02:30 on 2026-03-29 in Berlin = 01:30Z = 03:30 CEST
    got = next_fire_times("0 */15 * * * ?", after=datetime(2026, 3, 29, 2, 30), n=1,
                          tz="Europe/Berlin")  # fmt: skip
    assert [g.isoformat() for g in got] == ["2026-03-29T03:45:00+02:00"]


def test_next_fire_times_defaults() -> None:
    before = datetime.now(UTC)
    got = next_fire_times("*/15 * * * *")
    assert len(got) == 5
    assert all(g.tzinfo == ZoneInfo("UTC") and g.utcoffset() == timedelta(0) for g in got)
    assert before < got[0] <= before + timedelta(minutes=15)
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(got))


def test_next_fire_times_stops_when_schedule_ends() -> None:
    assert next_fire_times("0 0 0 1 1 ? 2027", after=JAN1, n=5) == [utc(2027, 1, 1)]
    assert next_fire_times("0 0 0 1 1 ? 2025", after=JAN1) == []
    assert next_fire_times("@daily", after=JAN1, n=0) == []


# --------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, str | None, str]] = [
    ("", None, "empty"),
    ("* *", None, "got 2"),
    ("0 0 2 * * ? 2027 1", None, "got 8"),
    ("0 0 25 * * ?", "hour", "hour field '25' is out of range 0-23"),
    ("60 * * * * ?", "second", "second field '60' is out of range 0-59"),
    ("0 60 * * * ?", "minute", "minute field '60' is out of range 0-59"),
    ("0 0 0 32 * ?", "day-of-month", "day-of-month field '32' is out of range 1-31"),
    ("0 0 0 0 * ?", "day-of-month", "out of range 1-31"),
    ("0 0 0 ? 13 *", "month", "month field '13' is out of range 1-12"),
    ("0 0 0 ? * 0", "day-of-week", "day-of-week field '0' is out of range 1-7"),
    ("0 0 0 ? * 8", "day-of-week", "out of range 1-7"),
    ("0 0 0 ? * 2-9", "day-of-week", "'9' is out of range 1-7"),
    ("* * * * 8", "day-of-week", "out of range 0-7"),
    ("0 0 0 1 1 ? 1969", "year", "year field '1969' is out of range 1970-2099"),
    ("0 */0 * * * ?", "minute", "step 0"),
    ("0 */61 * * * ?", "minute", "step 61"),
    ("0 5/x * * * ?", "minute", "invalid step"),
    ("0 0 1- * * ?", "hour", "not a valid value"),
    ("0 0 1,,2 * * ?", "hour", "empty list item"),
    ("5-1 * * * *", "minute", "start 5 is after its end 1"),
    ("0 0 0 ? FOO *", "month", "'FOO' is not a valid month"),
    ("0 0 0 ? * FUNDAY", "day-of-week", "not a valid day name"),
    ("0 0 0 ? * MON#6", "day-of-week", "occurrence 6"),
    ("0 0 0 ? * 8L", "day-of-week", "out of range 1-7"),
    ("0 0 0 L-31 * ?", "day-of-month", "offset 31"),
    ("0 0 0 32W * ?", "day-of-month", "day 32"),
    ("0 0 0 1-5W * ?", "day-of-month", "invalid day"),
    ("0 0 ? * * *", "hour", "'?' is only for day-of-month or day-of-week"),
    ("0 0 0 1 * MON", "day-of-week", "both specified"),
    ("0 0 0 15 * 2#1", "day-of-week", "both specified"),
    ("0 0 0 ? * ?", "day-of-week", "cannot both be '?'"),
    ("@reboot", None, "unknown macro"),
]


@pytest.mark.parametrize(("expr", "field", "fragment"), ERRORS)
def test_errors_name_the_field(expr: str, field: str | None, fragment: str) -> None:
    with pytest.raises(CronError) as info:
        CronSchedule.parse(expr)
    assert fragment in str(info.value)
    assert info.value.field == field
    assert info.value.expression == expr
    assert str(info.value).startswith(f"invalid cron expression '{expr}'")


def test_error_message_format_and_type() -> None:
    with pytest.raises(ValueError) as info:  # CronError is a ValueError
        CronSchedule.parse("0 0 25 * * ?")
    assert str(info.value) == (
        "invalid cron expression '0 0 25 * * ?': hour field '25' is out of range 0-23"
    )


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "Europe", "../etc/passwd", "/etc/localtime"])
def test_bad_timezone(tz: str) -> None:
    with pytest.raises(CronError) as info:
        CronSchedule.parse("0 0 2 * * ?", tz)
    assert info.value.field == "timezone"
    assert f"'{tz}'" in str(info.value)


def test_star_in_both_day_fields_is_any() -> None:
    assert first_n("0 0 2 * * *", JAN1, 2) == [utc(2026, 1, 1, 2), utc(2026, 1, 2, 2)]
    # '*' with a concrete other field: the concrete field decides (no OR in Quartz)
    assert first_n("0 0 8 * * MON", JAN1, 1) == [utc(2026, 1, 5, 8)]


# --------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", timedelta(hours=4)),
        ("15m", timedelta(minutes=15)),
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("90s", timedelta(seconds=90)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse_interval(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4",
        "4x",
        "h",
        "0s",
        "0h0m",
        "1.5h",
        "30m1h",
        "-5m",
        "5M",
        "1d1d",
        "4 hours",
        "99999999999d",
    ],
)
def test_parse_interval_refuses(text: str) -> None:
    with pytest.raises(CronError) as info:
        parse_interval(text)
    assert info.value.field == "interval"
    assert f"invalid interval '{text}'" in str(info.value)


def test_interval_schedule() -> None:
    schedule = IntervalSchedule(every=timedelta(hours=4))  # anchored at the Unix epoch
    assert schedule.next_after(utc(2026, 1, 1, 1)) == utc(2026, 1, 1, 4)
    assert schedule.next_after(utc(2026, 1, 1, 4)) == utc(2026, 1, 1, 8)  # strictly after
    anchored = IntervalSchedule(timedelta(minutes=90), anchor=utc(2026, 1, 1, 9, 15))
    assert anchored.next_after(utc(2025, 12, 1)) == utc(2026, 1, 1, 9, 15)  # before anchor
    got = []
    for when in anchored.iter_after(utc(2026, 1, 1, 10)):
        got.append(when)
        if len(got) == 3:
            break
    assert got == [utc(2026, 1, 1, 10, 45), utc(2026, 1, 1, 12, 15), utc(2026, 1, 1, 13, 45)]
    naive = IntervalSchedule(timedelta(hours=1), anchor=datetime(2026, 1, 1))
    assert naive.anchor == utc(2026, 1, 1)
    with pytest.raises(CronError):
        IntervalSchedule(timedelta(0))


def test_interval_is_real_time_across_dst() -> None:
    schedule = parse_schedule(every="4h", timezone="Europe/Berlin")
    assert isinstance(schedule, IntervalSchedule)
    got = []
    for when in schedule.iter_after(utc(2026, 3, 28, 21)):
        got.append(when)
        if len(got) == 3:
            break
    assert [g.isoformat() for g in got] == [
        "2026-03-29T01:00:00+01:00",  # 00:00Z
        "2026-03-29T06:00:00+02:00",  # 04:00Z
        "2026-03-29T10:00:00+02:00",  # 08:00Z
    ]


def test_parse_schedule() -> None:
    cron = parse_schedule(cron="0 0 2 * * ?", timezone="Europe/Berlin")
    assert cron == CronSchedule("0 0 2 * * ?", "Europe/Berlin")
    interval = parse_schedule(every="1h30m")
    assert isinstance(interval, IntervalSchedule)
    assert interval.every == timedelta(minutes=90)
    for kwargs in ({}, {"cron": "@daily", "every": "4h"}):
        with pytest.raises(CronError, match="exactly one of cron= or every="):
            parse_schedule(**kwargs)
    with pytest.raises(CronError) as info:
        parse_schedule(every="4h", timezone="Nope/Nope")
    assert info.value.field == "timezone"
    with pytest.raises(CronError) as info:
        parse_schedule(every="soon")
    assert info.value.field == "interval"


# --------------------------------------------------------------------------- value object


def test_schedule_is_immutable_and_hashable() -> None:
    a = CronSchedule.parse("0 0 2 * * ?", "Europe/Berlin")
    b = CronSchedule("0  0 2 * * ?", "Europe/Berlin")  # whitespace is normalised
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, CronSchedule.parse("0 0 2 * * ?")}) == 2
    assert a.expression == "0 0 2 * * ?"
    assert a.timezone == "Europe/Berlin"
    assert repr(a) == "CronSchedule(expression='0 0 2 * * ?', timezone='Europe/Berlin')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.expression = "@daily"  # type: ignore[misc]
    assert CronSchedule.parse("@daily").timezone == "UTC"


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("expr", "tz", "text"),
    [
        ("0 0 2 * * ?", "UTC", "At 02:00:00, every day (UTC)"),
        ("0 0 8 ? * MON", "Europe/Berlin", "At 08:00:00, on Monday (Europe/Berlin)"),
        ("0 */15 * * * ?", "UTC", "Every 15 minutes (UTC)"),
        ("0 0 10 ? * 6#3", "UTC", "At 10:00:00, on the third Friday of the month (UTC)"),
        ("0 0 0 ? * 6L", "UTC", "At 00:00:00, on the last Friday of the month (UTC)"),
        ("0 0 0 L * ?", "UTC", "At 00:00:00, on the last day of the month (UTC)"),
        ("0 0 9 15W * ?", "UTC", "At 09:00:00, on the weekday nearest day 15 of the month (UTC)"),
        ("0 2 * * 1-5", "UTC", "At 02:00, on Monday through Friday (UTC)"),
        ("0 0 1 * 1", "UTC", "At 00:00, on day 1 of the month or on Monday (UTC)"),
        ("@hourly", "UTC", "Every hour (UTC)"),
        (
            "0 0 12 1 JAN-MAR ? 2027",
            "UTC",
            "At 12:00:00, on day 1 of the month, in January through March, in 2027 (UTC)",
        ),
    ],
)
def test_describe(expr: str, tz: str, text: str) -> None:
    assert CronSchedule.parse(expr, tz).describe() == text


def test_describe_interval() -> None:
    assert IntervalSchedule(parse_interval("1h30m")).describe() == "Every 1 hour 30 minutes"
    assert IntervalSchedule(parse_interval("2d")).describe() == "Every 2 days"


# --------------------------------------------------------------------------- speed


def test_next_after_is_fast() -> None:
    schedules = [
        CronSchedule.parse(e, "Europe/Berlin")
        for e in ("0 0 2 * * ?", "0 */15 * * * ?", "0 0 8 ? * MON-FRI", "0 0 10 ? * 6#3", "@daily")
    ]
    after = utc(2026, 5, 17, 13, 7)
    start = time.perf_counter()
    for _ in range(200):
        for schedule in schedules:
            schedule.next_after(after)
    per_call = (time.perf_counter() - start) / 1000
    assert per_call < 0.001  # budget from the scheduler: well under 1 ms
