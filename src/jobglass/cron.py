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

import calendar
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CronError",
    "CronSchedule",
    "IntervalSchedule",
    "next_fire_times",
    "parse_interval",
    "parse_schedule",
]

_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Without a year field, search at most this many years ahead.  28 years is the
# Gregorian weekday/leap-year cycle; a little more covers the skipped leap
# year 2100.  Impossible dates (``0 0 0 30 2 ?``) give None after this.
_HORIZON_YEARS = 30
_MAX_YEAR = 9998
_QUARTZ_YEAR_MIN, _QUARTZ_YEAR_MAX = 1970, 2099

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_ABBR = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_WORDS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}

_MACROS = {
    "@YEARLY": "0 0 1 1 *",
    "@ANNUALLY": "0 0 1 1 *",
    "@MONTHLY": "0 0 1 * *",
    "@WEEKLY": "0 0 * * 0",
    "@DAILY": "0 0 * * *",
    "@MIDNIGHT": "0 0 * * *",
    "@HOURLY": "0 * * * *",
}


class CronError(ValueError):
    """A cron expression, interval or time zone was refused.

    ``expression`` is the text that was refused; ``field`` names the offending
    field (``"hour"``, ``"day-of-week"``, ``"timezone"``, ``"interval"``...) or is
    ``None`` when the problem is not tied to one field.
    """

    def __init__(self, message: str, expression: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.field = field


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Dom:
    """Parsed day-of-month field."""

    is_any: bool
    star: bool  # classic cron: field starts with '*' (Vixie DOM_STAR)
    days: frozenset[int]
    last_offsets: frozenset[int]  # L -> 0, L-3 -> 3
    last_weekday: bool  # LW
    nearest_weekday: frozenset[int]  # 15W -> 15


@dataclass(frozen=True, slots=True)
class _Dow:
    """Parsed day-of-week field; weekdays are 0=Sunday .. 6=Saturday internally."""

    is_any: bool
    star: bool
    days: frozenset[int]
    nth: frozenset[tuple[int, int]]  # (weekday, k): k-th weekday of the month
    last: frozenset[int]  # last <weekday> of the month


@dataclass(frozen=True, slots=True)
class _Spec:
    quartz: bool
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...] | None
    dom: _Dom
    dow: _Dow
    explicit_seconds: bool


@dataclass(frozen=True, slots=True)
class _Bounds:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # names[i] has value i + names_base
    names_base: int = 1
    wrap: bool = False  # reversed ranges wrap around (Quartz)


class _FieldParser:
    """Parses one field; builds error messages naming the field."""

    def __init__(self, expression: str, bounds: _Bounds, raw: str) -> None:
        self.expression = expression
        self.b = bounds
        self.raw = raw  # as written by the user, for messages
        self.text = raw.upper()

    def error(self, detail: str, token: str | None = None) -> CronError:
        where = f"{self.b.name} field '{self.raw}'"
        if token is None or token.upper() == self.text:
            msg = f"{where} {detail}"
        else:
            msg = f"{where}: '{token}' {detail}"
        return CronError(
            f"invalid cron expression '{self.expression}': {msg}", self.expression, self.b.name
        )

    def items(self) -> list[str]:
        parts = self.text.split(",")
        if any(p == "" for p in parts):
            raise self.error("has an empty list item")
        if len(parts) > 1 and "?" in parts:
            raise self.error("may use '?' only on its own")
        return parts

    def value(self, token: str) -> int:
        b = self.b
        if token.isdigit() and token.isascii():
            v = int(token)
        elif b.names and token in b.names:
            return b.names.index(token) + b.names_base
        elif token.isalpha():
            kind = "month" if b.names is _MONTH_NAMES else "day name"
            if b.names:
                first, last = b.names[0], b.names[-1]
                raise self.error(
                    f"is not a valid {kind} (use {b.lo}-{b.hi} or {first}-{last})", token
                )
            raise self.error(f"is not a number (expected {b.lo}-{b.hi})", token)
        else:
            raise self.error("is not a valid value", token)
        if not b.lo <= v <= b.hi:
            raise self.error(f"is out of range {b.lo}-{b.hi}", token)
        return v

    def number(self, token: str, lo: int, hi: int, what: str, item: str) -> int:
        if not (token.isdigit() and token.isascii()):
            raise self.error(f"has an invalid {what} '{token}'", item)
        v = int(token)
        if not lo <= v <= hi:
            raise self.error(f"has {what} {v}, which must be between {lo} and {hi}", item)
        return v

    def plain(self, item: str) -> list[int]:
        """``*``, ``n``, ``a-b``, ``*/s``, ``a/s``, ``a-b/s``."""
        b = self.b
        base, slash, step_text = item.partition("/")
        span = b.hi - b.lo + 1
        step = self.number(step_text, 1, span, "step", item) if slash else 1
        if base == "*":
            start, end = b.lo, b.hi
        elif "-" in base:
            left, _, right = base.partition("-")
            if not left or not right:
                raise self.error("is not a valid value or range", item)
            start, end = self.value(left), self.value(right)
            if start > end and not b.wrap:
                raise self.error(f"has a range whose start {start} is after its end {end}", item)
        elif base == "":
            raise self.error("is not a valid value", item)
        else:
            start = self.value(base)
            end = b.hi if slash else start
        if start <= end:
            return list(range(start, end + 1, step))
        # wrapping range, e.g. FRI-MON or 22-2
        count = (b.hi - start + 1) + (end - b.lo + 1)
        return [b.lo + (start - b.lo + i) % span for i in range(0, count, step)]

    def simple(self) -> tuple[int, ...]:
        out: set[int] = set()
        for item in self.items():
            if item == "?":
                raise self.error("may not be '?' ('?' is only for day-of-month or day-of-week)")
            out.update(self.plain(item))
        return tuple(sorted(out))


def _bounds(quartz: bool) -> tuple[_Bounds, ...]:
    dow = (
        _Bounds("day-of-week", 1, 7, _DAY_ABBR, 1, wrap=True)
        if quartz
        else _Bounds("day-of-week", 0, 7, _DAY_ABBR, 0)
    )
    return (
        _Bounds("second", 0, 59, wrap=quartz),
        _Bounds("minute", 0, 59, wrap=quartz),
        _Bounds("hour", 0, 23, wrap=quartz),
        _Bounds("day-of-month", 1, 31, wrap=quartz),
        _Bounds("month", 1, 12, _MONTH_NAMES, 1, wrap=quartz),
        dow,
        _Bounds("year", _QUARTZ_YEAR_MIN, _QUARTZ_YEAR_MAX),
    )


def _parse_dom(p: _FieldParser) -> _Dom:
    if p.text in ("*", "?"):
        return _Dom(True, True, frozenset(), frozenset(), False, frozenset())
    days: set[int] = set()
    last_offsets: set[int] = set()
    nearest: set[int] = set()
    last_weekday = False
    for item in p.items():
        if item == "L":
            last_offsets.add(0)
        elif item == "LW":
            last_weekday = True
        elif item.startswith("L-"):
            last_offsets.add(p.number(item[2:], 0, 30, "offset", item))
        elif item.endswith("W") and len(item) > 1:
            nearest.add(p.number(item[:-1], 1, 31, "day", item))
        elif "L" in item or "W" in item:
            raise p.error("is not valid here (use L, L-n, nW or LW)", item)
        else:
            days.update(p.plain(item))
    return _Dom(
        False,
        p.text.startswith("*"),
        frozenset(days),
        frozenset(last_offsets),
        last_weekday,
        frozenset(nearest),
    )


def _parse_dow(p: _FieldParser, quartz: bool) -> _Dow:
    if p.text in ("*", "?"):
        return _Dow(True, True, frozenset(), frozenset(), frozenset())

    def weekday(v: int) -> int:  # -> 0=Sunday .. 6=Saturday
        return v - 1 if quartz else v % 7

    days: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    for item in p.items():
        if item == "L":
            days.add(6)  # 'L' alone = last day of the week = Saturday
        elif "#" in item:
            left, _, right = item.partition("#")
            k = p.number(right, 1, 5, "occurrence", item)
            nth.add((weekday(p.value(left)), k))
        elif item.endswith("L"):
            last.add(weekday(p.value(item[:-1])))
        else:
            days.update(weekday(v) for v in p.plain(item))
    return _Dow(False, p.text.startswith("*"), frozenset(days), frozenset(nth), frozenset(last))


def _parse_expression(expression: str) -> _Spec:
    text = " ".join(expression.split())
    if not text:
        raise CronError("invalid cron expression '': it is empty", expression, None)
    if text.startswith("@"):
        macro = _MACROS.get(text.upper())
        if macro is None:
            names = ", ".join(m.lower() for m in _MACROS)
            raise CronError(
                f"invalid cron expression '{expression}': unknown macro '{text}' (use {names})",
                expression,
                None,
            )
        fields = macro.split(" ")
    else:
        fields = text.split(" ")
    if len(fields) not in (5, 6, 7):
        raise CronError(
            f"invalid cron expression '{expression}': expected 5 fields (classic cron) or "
            f"6-7 fields (Quartz: sec min hour day-of-month month day-of-week [year]), "
            f"got {len(fields)}",
            expression,
            None,
        )
    quartz = len(fields) != 5
    if not quartz:
        fields = ["0", *fields]
    b = _bounds(quartz)
    ps = [_FieldParser(expression, b[i], raw) for i, raw in enumerate(fields)]
    seconds, minutes, hours = ps[0].simple(), ps[1].simple(), ps[2].simple()
    dom = _parse_dom(ps[3])
    months = ps[4].simple()
    dow = _parse_dow(ps[5], quartz)
    years: tuple[int, ...] | None = None
    if len(ps) == 7 and ps[6].text != "*":
        years = ps[6].simple()
    if quartz:
        if ps[3].text == "?" and ps[5].text == "?":
            raise CronError(
                f"invalid cron expression '{expression}': day-of-month and day-of-week "
                f"cannot both be '?'; use '?' in one and a value or '*' in the other",
                expression,
                "day-of-week",
            )
        if not dom.is_any and not dow.is_any:
            raise CronError(
                f"invalid cron expression '{expression}': day-of-month '{ps[3].raw}' and "
                f"day-of-week '{ps[5].raw}' are both specified; Quartz needs '?' in one of them",
                expression,
                "day-of-week",
            )
    return _Spec(quartz, seconds, minutes, hours, months, years, dom, dow, quartz)


def _next_in(values: tuple[int, ...], v: int) -> int | None:
    i = bisect_left(values, v)
    return values[i] if i < len(values) else None


def _month_days(spec: _Spec, year: int, month: int) -> tuple[int, ...]:
    """The days of ``year-month`` that match the day-of-month/day-of-week fields."""
    dom, dow = spec.dom, spec.dow
    first_wd, ndays = calendar.monthrange(year, month)
    first_wd = (first_wd + 1) % 7  # Monday=0 -> Sunday=0

    def wd(day: int) -> int:
        return (first_wd + day - 1) % 7

    def dom_days() -> set[int]:
        out = {d for d in dom.days if d <= ndays}
        out.update(ndays - n for n in dom.last_offsets if ndays - n >= 1)
        if dom.last_weekday:
            w = wd(ndays)
            out.add(ndays - 1 if w == 6 else ndays - 2 if w == 0 else ndays)
        for n in dom.nearest_weekday:
            if n > ndays:
                continue  # e.g. 31W in a 30-day month: no fire that month
            w = wd(n)
            if w == 6:  # Saturday -> Friday, unless that leaves the month
                out.add(n - 1 if n > 1 else n + 2)
            elif w == 0:  # Sunday -> Monday, unless that leaves the month
                out.add(n + 1 if n < ndays else n - 2)
            else:
                out.add(n)
        return out

    def dow_days() -> set[int]:
        out = {d for d in range(1, ndays + 1) if wd(d) in dow.days}
        for k, n in dow.nth:
            d = 1 + (k - first_wd) % 7 + 7 * (n - 1)
            if d <= ndays:
                out.add(d)
        for k in dow.last:
            out.add(ndays - (wd(ndays) - k) % 7)
        return out

    if dom.is_any and dow.is_any:
        days: set[int] = set(range(1, ndays + 1))
    elif dow.is_any:
        days = dom_days()
    elif dom.is_any:
        days = dow_days()
    elif spec.quartz or dom.star or dow.star:
        days = dom_days() & dow_days()  # Vixie: a '*'-led field means AND
    else:
        days = dom_days() | dow_days()  # classic cron OR rule
    return tuple(sorted(days))


def _load_zone(name: str, expression: str) -> ZoneInfo:
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"invalid time zone '{name}' for '{expression}': not a known IANA time zone "
            f"name (e.g. 'UTC', 'Europe/Berlin', 'America/New_York')",
            expression,
            "timezone",
        ) from None


def _utc_naive(dt: datetime) -> datetime:
    """Aware -> naive UTC; naive is taken to be UTC already."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=None, fold=0)
    return dt.astimezone(UTC).replace(tzinfo=None)


def _offset(wall: datetime, tz: tzinfo, fold: int = 0) -> timedelta:
    return wall.replace(tzinfo=tz, fold=fold).utcoffset() or _ZERO


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
        """The first fire time strictly after ``after`` (naive = UTC).

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

    Returns aware datetimes in ``tz``; fewer than ``n`` if the schedule ends.
    """
    schedule = CronSchedule.parse(expr, tz)
    start = datetime.now(UTC) if after is None else after
    out: list[datetime] = []
    for when in schedule.iter_after(start):
        if len(out) >= n:
            break
        out.append(when)
    return out


# --------------------------------------------------------------------------- describe helpers


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _describe_values(values: Sequence[int], name: Callable[[int], str]) -> str:
    """Sorted ints -> "Monday through Friday", "1, 15 and 20"."""
    vals = list(values)
    runs: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        if j - i >= 2:
            runs.append(f"{name(vals[i])} through {name(vals[j])}")
        else:
            runs.extend(name(v) for v in vals[i : j + 1])
        i = j + 1
    return _join(runs)


def _progression(values: Sequence[int]) -> int | None:
    """The step if ``values`` (3 or more) is an arithmetic progression with step > 1."""
    if len(values) < 3:
        return None
    step = values[1] - values[0]
    ok = step > 1 and all(b - a == step for a, b in pairwise(values))
    return step if ok else None


def _numbers(values: Sequence[int], unit: str, size: int) -> str:
    """ "every minute", "every 15 minutes", "every 10 minutes from minute 10 through 50",
    "minute 5", "minutes 0, 20 and 45"."""
    if len(values) == size:
        return f"every {unit}"
    step = _progression(values)
    if step is not None:
        if values[0] == 0 and values[-1] + step >= size:
            return f"every {step} {unit}s"
        return f"every {step} {unit}s from {unit} {values[0]} through {values[-1]}"
    if len(values) == 1:
        return f"{unit} {values[0]}"
    return f"{unit}s {_describe_values(values, str)}"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _describe_time(s: _Spec) -> str:
    secs, mins, hours = s.seconds, s.minutes, s.hours

    def clock(h: int, m: int, sec: int) -> str:
        return f"{h:02d}:{m:02d}:{sec:02d}" if s.explicit_seconds else f"{h:02d}:{m:02d}"

    if len(secs) == 1 and len(mins) == 1 and len(hours) <= 4:
        return "At " + _join([clock(h, mins[0], secs[0]) for h in hours])
    at_sec = f" at second {secs[0]}" if len(secs) == 1 and secs[0] else ""
    if len(hours) == 24 and len(mins) == 60:
        if len(secs) == 1:
            return "Every minute" + at_sec
        text = _numbers(secs, "second", 60)
        return text[0].upper() + text[1:] if text.startswith("every") else f"At {text}"
    if len(hours) == 24 and len(secs) == 1:
        if len(mins) == 1:
            if mins[0] == 0 and not at_sec:
                return "Every hour"
            return f"Every hour at minute {mins[0]}" + at_sec
        text = _numbers(mins, "minute", 60)
        if text.startswith("every"):
            return text[0].upper() + text[1:] + at_sec
        return f"At {text}{at_sec} of every hour"
    if len(secs) == 1 and len(mins) == 1:
        text = _numbers(hours, "hour", 24)
        if text.startswith("every") and mins[0] == 0 and secs[0] == 0:
            return text[0].upper() + text[1:]
        past = f"At minute {mins[0]}{at_sec} past "
        return past + (text if text.startswith("every") else "hours " + text.split(" ", 1)[1])
    pieces = [_numbers(mins, "minute", 60), "past " + _numbers(hours, "hour", 24)]
    if secs != (0,):
        pieces.insert(0, _numbers(secs, "second", 60) + ",")
    text = " ".join(pieces)
    return text[0].upper() + text[1:] if text.startswith("every") else f"At {text}"


def _describe_days(s: _Spec) -> str:
    dom, dow = s.dom, s.dow
    if dom.is_any and dow.is_any:
        return "every day"
    phrases: list[str] = []
    if not dom.is_any:
        items: list[str] = []
        if dom.days:
            text = _numbers(sorted(dom.days), "day", 31)
            items.append(("" if text.startswith("every") else "on ") + f"{text} of the month")
        for n in sorted(dom.last_offsets):
            if n == 0:
                items.append("on the last day of the month")
            else:
                items.append(f"{_plural(n, 'day')} before the last day of the month")
        if dom.last_weekday:
            items.append("on the last weekday of the month")
        for n in sorted(dom.nearest_weekday):
            items.append(f"on the weekday nearest day {n} of the month")
        phrases.append(_join(items))
    if not dow.is_any:
        items = []
        if dow.days:
            items.append("on " + _describe_values(sorted(dow.days), lambda d: _DAY_WORDS[d]))
        for k, n in sorted(dow.nth, key=lambda kn: (kn[1], kn[0])):
            items.append(f"on the {_ORDINALS[n]} {_DAY_WORDS[k]} of the month")
        for k in sorted(dow.last):
            items.append(f"on the last {_DAY_WORDS[k]} of the month")
        phrases.append(_join(items))
    if len(phrases) == 2:
        classic_or = not s.quartz and not dom.star and not dow.star
        return (" or " if classic_or else " if also ").join(phrases)
    return phrases[0]


def _describe_duration(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    words = [
        _plural(v, unit)
        for v, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if v
    ]
    if delta.microseconds:
        words.append(_plural(delta.microseconds, "microsecond"))
    return " ".join(words)
