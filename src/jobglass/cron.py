"""Cron expressions, fixed intervals and their next fire times.

A pure module: no database, no application state.  The scheduler uses it to
compute when each schedule fires next.

Supported syntax
================

*Quartz* (6 or 7 fields, seconds first)::

    sec  min  hour  day-of-month  month  day-of-week  [year]

    0 0 2 * * ?        02:00:00 every day
    0 0 8 ? * MON      08:00:00 every Monday
    0 */15 * * * ?     every 15 minutes
    0 0 0 L * ?        midnight on the last day of every month

* day-of-week is numbered ``1=SUN .. 7=SAT`` (Quartz numbering, *not*
  classic cron's ``0=SUN``); names ``SUN``-``SAT`` and ``JAN``-``DEC`` are
  accepted in any case.
* ``*`` any value, ``?`` "no specific value" (day-of-month/day-of-week only),
  ``a-b`` ranges (a range may wrap around, e.g. ``FRI-MON`` or ``22-2``),
  ``a,b`` lists, ``*/n``, ``a/n`` and ``a-b/n`` steps.
* day-of-month: ``L`` (last day), ``L-n`` (n days before the last day),
  ``nW`` (the weekday nearest day n, never leaving the month: ``1W`` on a
  Saturday is Monday the 3rd), ``LW`` (last weekday of the month).
* day-of-week: ``nL`` (the last weekday n of the month: ``6L`` = last
  Friday, ``5L`` = last Thursday in Quartz numbering; in a classic 5-field
  expression ``5L`` is the last Friday), ``n#k`` (the k-th weekday n of the
  month, ``6#3`` = third Friday) and ``L`` alone (= ``7`` = Saturday).
* Quartz requires ``?`` in exactly one of day-of-month / day-of-week.  We also
  accept ``*`` in one or both (``*`` means "any", so the other field alone
  decides), but refuse concrete values in both.
* the optional year field accepts 1970-2099.

*Classic cron* (5 fields, ``min hour day-of-month month day-of-week``) with
day-of-week ``0-7`` (0 and 7 are Sunday) and the macros ``@yearly``
(``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly``.  The seconds field is implicitly ``0``.  When *both*
day-of-month and day-of-week are restricted (neither starts with ``*``), a day
matches if it matches **either** field (the classic Vixie-cron OR rule:
``0 0 1 * 1`` fires on the 1st of the month *and* on every Monday).  If either
field starts with ``*`` (e.g. ``*/2``) the two are combined with AND, as in
Vixie cron.

Time zones and daylight-saving time
===================================

Each schedule is evaluated on the wall clock of its IANA time zone (default
UTC).  Fire times are returned as aware datetimes in that zone.

* **Spring forward (gap).**  Wall-clock times that do not exist are not lost:
  a schedule that matches a time inside the gap fires once, at the first valid
  instant after the gap (``02:30`` in Europe/Berlin on 2026-03-29 fires at
  ``03:00 CEST``).  Exception: if the schedule also matches the first skipped
  time *shifted by the gap length* (e.g. ``02:30`` -> ``03:30`` for an hourly
  ``0 30 * * * ?``), the schedule's rhythm continues unbroken in real time and
  no extra catch-up run is added.  So a daily job still runs that day, while an
  hourly/every-N-minutes job keeps its real-time spacing (no duplicate run).
* **Fall back (repeated hour).**  A wall-clock time that occurs twice fires at
  its first occurrence.  Its second occurrence fires only if the schedule also
  matches that time shifted by the DST offset change (e.g. ``02:30`` ->
  ``03:30``): hourly and every-N-minutes schedules therefore keep firing every
  real hour / N minutes through the repeated hour, while a daily ``02:30`` job
  fires exactly once.

Intervals
=========

``parse_interval("1h30m")`` returns a :class:`datetime.timedelta`
(units ``w d h m s``, in that order, each at most once).  An
:class:`IntervalSchedule` fires at ``anchor + k * every`` (k >= 0) in real time,
unaffected by DST; the default anchor is the Unix epoch, so ``4h`` fires at
00:00, 04:00, ... UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .cron_describe import _describe_days, _describe_duration, _describe_time, _describe_values
from .cron_parse import (
    _EPOCH,
    _HORIZON_YEARS,
    _MAX_YEAR,
    _MONTH_WORDS,
    _SECOND,
    _ZERO,
    CronError,
    _load_zone,
    _month_days,
    _next_in,
    _offset,
    _parse_expression,
    _Spec,
    _utc_naive,
)

__all__ = [
    "CronError",
    "CronSchedule",
    "IntervalSchedule",
    "next_fire_times",
    "parse_interval",
    "parse_schedule",
]

# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression evaluated in an IANA time zone.

    Immutable and hashable; equality compares ``expression`` and ``timezone``.
    Build one with :meth:`parse` (or the constructor, which parses too).
    """

    expression: str
    timezone: str = "UTC"
    _spec: _Spec = field(init=False, repr=False, compare=False)
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _days_cache: dict[tuple[int, int], tuple[int, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise CronError("cron expression must be a string", str(self.expression), None)
        object.__setattr__(self, "expression", " ".join(self.expression.split()))
        object.__setattr__(self, "_spec", _parse_expression(self.expression))
        object.__setattr__(self, "_tz", _load_zone(self.timezone, self.expression))

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronSchedule:
        """Parse ``expression``; raises :class:`CronError` (also for a bad time zone)."""
        return cls(expression, timezone)

    # -- matching on the wall clock (naive datetimes in the schedule's zone)

    def _days(self, year: int, month: int) -> tuple[int, ...]:
        cache = self._days_cache
        key = (year, month)
        days = cache.get(key)
        if days is None:
            if len(cache) > 512:
                cache.clear()
            days = cache[key] = _month_days(self._spec, year, month)
        return days

    def _matches(self, w: datetime) -> bool:
        s = self._spec
        return (
            (s.years is None or w.year in s.years)
            and w.month in s.months
            and w.hour in s.hours
            and w.minute in s.minutes
            and w.second in s.seconds
            and w.day in self._days(w.year, w.month)
        )

    def _next_wall(self, x: datetime) -> datetime | None:
        """Smallest matching whole-second wall time strictly after ``x`` (naive)."""
        s = self._spec
        t = x.replace(microsecond=0) + _SECOND
        y, mo, d, h, mi, sec = t.year, t.month, t.day, t.hour, t.minute, t.second
        limit = s.years[-1] if s.years is not None else min(y + _HORIZON_YEARS, _MAX_YEAR)
        while y <= limit:
            if s.years is not None:
                ny = _next_in(s.years, y)
                if ny is None:
                    return None
                if ny != y:
                    y, mo, d, h, mi, sec = ny, 1, 1, 0, 0, 0
            nmo = _next_in(s.months, mo)
            if nmo is None:
                y, mo, d, h, mi, sec = y + 1, 1, 1, 0, 0, 0
                continue
            if nmo != mo:
                mo, d, h, mi, sec = nmo, 1, 0, 0, 0
            nd = _next_in(self._days(y, mo), d)
            if nd is None:
                mo, d, h, mi, sec = mo + 1, 1, 0, 0, 0
                continue
            if nd != d:
                d, h, mi, sec = nd, 0, 0, 0
            nh = _next_in(s.hours, h)
            if nh is None:
                d, h, mi, sec = d + 1, 0, 0, 0
                continue
            if nh != h:
                h, mi, sec = nh, 0, 0
            nmi = _next_in(s.minutes, mi)
            if nmi is None:
                h, mi, sec = h + 1, 0, 0
                continue
            if nmi != mi:
                mi, sec = nmi, 0
            ns = _next_in(s.seconds, sec)
            if ns is None:
                mi, sec = mi + 1, 0
                continue
            return datetime(y, mo, d, h, mi, ns)
        return None

    # -- mapping wall times to real instants (naive UTC)

    def _offset_at(self, u: datetime) -> timedelta:
        return u.replace(tzinfo=UTC).astimezone(self._tz).utcoffset() or _ZERO

    def _transition(self, lo: datetime, hi: datetime) -> datetime:
        """First whole second in (lo, hi] whose UTC offset differs from lo's."""
        before = self._offset_at(lo)
        while hi - lo > _SECOND:
            mid = lo + timedelta(seconds=int((hi - lo).total_seconds()) // 2)
            if self._offset_at(mid) == before:
                lo = mid
            else:
                hi = mid
        return hi

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (naive = UTC; `next_fire_times` and
        ``jobglass cron --after`` read a naive time as wall time in the schedule's zone).

        Returns an aware datetime in the schedule's zone, or ``None`` when the
        schedule never fires again (e.g. its year field lies in the past).
        """
        try:
            best = self._next_instant(_utc_naive(after))
        except OverflowError:  # beyond datetime's range (year 9999)
            return None
        if best is None:
            return None
        return best.replace(tzinfo=UTC).astimezone(self._tz)

    def _next_instant(self, a: datetime) -> datetime | None:
        """next_after() on naive UTC instants."""
        tz = self._tz
        w = a.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None, fold=0)
        best: datetime | None = None
        start = w
        o0, o1 = _offset(w, tz, 0), _offset(w, tz, 1)
        if o0 > o1:
            # ``after`` lies inside a repeated (fall-back) period of length L:
            # walls [f0, f1) occur first at offset o0, then again at offset o1.
            shift = o0 - o1
            base = a.replace(microsecond=0)
            trans = self._transition(base - shift, base + shift)
            f0, f1 = trans + o1, trans + o0
            if a >= trans:  # first occurrences are over; resume after the period
                start = f1 - _SECOND
            # earliest second occurrence after ``a``: wall W in [f0, f1) with
            # W - o1 > a, matching, and (rule) W + shift matching as well.
            cand = self._next_wall(max(a + o1, f0 - _SECOND))
            while cand is not None and cand < f1:
                echo = self._next_wall(cand + shift - _SECOND)
                if echo is None:
                    break
                if echo == cand + shift:
                    best = cand - o1
                    break
                cand = self._next_wall(echo - shift - _SECOND)
        wall = self._next_wall(start)
        while wall is not None and (best is None or wall - _offset(wall, tz, 0) < best):
            g0, g1 = _offset(wall, tz, 0), _offset(wall, tz, 1)
            if g0 < g1:
                # ``wall`` falls in a spring-forward gap [trans + g0, trans + g1).
                gap = g1 - g0
                trans = self._transition(wall - g1, wall - g0)
                if not self._matches(wall + gap) and trans > a:
                    best = trans if best is None else min(best, trans)
                    break
                wall = self._next_wall(trans + g1 - _SECOND)
                continue
            instant = wall - g0
            if instant > a:
                best = instant if best is None else min(best, instant)
                break
            wall = self._next_wall(wall)
        return best

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after``, in order (finite only if the year ends)."""
        current: datetime = after
        while True:
            nxt = self.next_after(current)
            if nxt is None:
                return
            yield nxt
            current = nxt

    # -- English

    def describe(self) -> str:
        """One line in English, e.g. ``"At 02:00:00, every day (UTC)"``."""
        s = self._spec
        time = _describe_time(s)
        parts = [time]
        days = _describe_days(s)
        if not (days == "every day" and time.startswith("Every")):
            parts.append(days)
        if len(s.months) != 12:
            parts.append("in " + _describe_values(s.months, lambda m: _MONTH_WORDS[m - 1]))
        if s.years is not None:
            parts.append("in " + _describe_values(s.years, str))
        return ", ".join(parts) + f" ({self.timezone})"


@dataclass(frozen=True)
class IntervalSchedule:
    """Fires every ``every`` in real time, at ``anchor + k * every`` for k >= 0.

    ``anchor`` should be aware (a naive one is taken as UTC); fire times are
    returned in the anchor's time zone.
    """

    every: timedelta
    anchor: datetime = _EPOCH

    def __post_init__(self) -> None:
        if not isinstance(self.every, timedelta) or self.every <= _ZERO:
            raise CronError(
                f"invalid interval '{self.every}': it must be a positive duration",
                str(self.every),
                "interval",
            )
        if self.anchor.tzinfo is None or self.anchor.utcoffset() is None:
            object.__setattr__(self, "anchor", self.anchor.replace(tzinfo=UTC))

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (naive = UTC)."""
        tz = self.anchor.tzinfo
        a = _utc_naive(after)
        anchor = _utc_naive(self.anchor)
        if a < anchor:
            return self.anchor
        k = (a - anchor) // self.every + 1
        return (anchor + k * self.every).replace(tzinfo=UTC).astimezone(tz)

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after``, forever."""
        current = self.next_after(after)
        while True:
            yield current
            current = self.next_after(current)

    def describe(self) -> str:
        """E.g. ``"Every 1 hour 30 minutes"``."""
        return "Every " + _describe_duration(self.every)


# --------------------------------------------------------------------------- functions

_INTERVAL_RE = re.compile(
    r"(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?",
    re.ASCII,
)


def parse_interval(text: str) -> timedelta:
    """``"4h"``, ``"15m"``, ``"30s"``, ``"1h30m"``, ``"2d"``, ``"1w"`` -> timedelta.

    Units (``w d h m s``, lowercase so that ``m`` cannot be read as months) must
    appear largest first and at most once; the total must be positive.  Anything
    else raises :class:`CronError` (field ``"interval"``).
    """
    raw = text if isinstance(text, str) else repr(text)
    s = raw.strip()
    m = _INTERVAL_RE.fullmatch(s) if s else None
    if m is None or not any(m.groupdict().values()):
        raise CronError(
            f"invalid interval '{raw}': expected a duration like '30s', '15m', '4h', "
            f"'1h30m' or '2d' (units w, d, h, m, s, largest first)",
            raw,
            "interval",
        )
    parts = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    try:
        delta = timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    except OverflowError:
        raise CronError(f"invalid interval '{raw}': it is too large", raw, "interval") from None
    if delta <= _ZERO:
        raise CronError(f"invalid interval '{raw}': it must be greater than zero", raw, "interval")
    return delta


def parse_schedule(
    cron: str | None = None, every: str | None = None, timezone: str = "UTC"
) -> CronSchedule | IntervalSchedule:
    """Build a schedule from exactly one of ``cron`` or ``every``.

    An interval schedule is anchored at the Unix epoch and reports its fire
    times in ``timezone``.
    """
    if (cron is None) == (every is None):
        raise CronError(
            "a schedule needs exactly one of cron= or every= (got "
            + ("both" if cron is not None else "neither")
            + ")",
            cron or every or "",
            None,
        )
    if cron is not None:
        return CronSchedule.parse(cron, timezone)
    assert every is not None
    delta = parse_interval(every)
    zone = _load_zone(timezone, every)
    return IntervalSchedule(every=delta, anchor=_EPOCH.astimezone(zone))


def next_fire_times(
    expr: str, after: datetime | None = None, n: int = 5, tz: str = "UTC"
) -> list[datetime]:
    """The next ``n`` fire times of cron expression ``expr`` after ``after`` (default now).

    ``after`` may be aware (in any zone) or naive: a naive ``after`` is a wall-clock time in
    ``tz``, the schedule's zone, as ``jobglass cron --after`` reads it (a wall time that a
    daylight-saving change repeats or skips is read with the offset in force before the
    change). The lower-level ``CronSchedule.next_after`` takes a naive time as UTC.

    Returns aware datetimes in ``tz``; fewer than ``n`` if the schedule ends.
    """
    schedule = CronSchedule.parse(expr, tz)
    if after is not None and (after.tzinfo is None or after.utcoffset() is None):
        after = after.replace(tzinfo=schedule._tz, fold=0)
    start = datetime.now(UTC) if after is None else after
    out: list[datetime] = []
    for when in schedule.iter_after(start):
        if len(out) >= n:
            break
        out.append(when)
    return out
