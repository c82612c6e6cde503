"""One-line English descriptions of parsed cron expressions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import pairwise

from .cron_parse import _DAY_WORDS, _ORDINALS, _Spec

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
