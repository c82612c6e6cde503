"""Cron field parsing and day matching; see `jobglass.cron` for the syntax."""

from __future__ import annotations

import calendar
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidInput

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


class CronError(InvalidInput):
    """A cron expression, interval or time zone was refused (an `InvalidInput`, so a
    `ValueError` too).

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
