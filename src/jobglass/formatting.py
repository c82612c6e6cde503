"""The exact strings the seeds print: counts, durations, progress messages, summaries."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def count(n: int | float) -> str:
    """Thousands separated: 235750 -> '235,750'."""
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def duration(ms: float) -> str:
    """'2.34s' under a minute, '2m 34s' under an hour, '1h 2m 3s' above."""
    if ms < 5.0:  # what `:.2f` makes of less than 5 ms (a no-op job's end line; 1/6 the cost)
        return "0.00s"
    seconds = ms / 1000.0
    if seconds < 60:
        return f"{seconds:.2f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def title(key: str) -> str:
    """Outcome key to its label: 'updates' -> 'Updates', 'api_calls'/'apiCalls' -> 'Api Calls'."""
    words = _CAMEL.sub(" ", key).replace("_", " ").replace("-", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words) or key


def percent(current: int, total: int | None) -> int | None:
    """Whole percent, clamped to 0..100; None when the total is unknown."""
    if not total or total <= 0:
        return None
    return max(0, min(100, (min(current, total) * 100) // total))


def progress_message(
    stage: str | None,
    current: int,
    total: int | None,
    *,
    show_counts: bool,
    note: str | None = None,
) -> str | None:
    """'Scoring users (1,250 / 5,000)', 'Scanning (1,250 processed)', 'Initializing (Loading)'."""
    if stage is None and not show_counts and note is None:
        return None
    head = stage or "Progress"
    if show_counts:
        counts = f"{count(current)} / {count(total)}" if total else f"{count(current)} processed"
        text = f"{head} ({counts})"
        return f"{text} - {note}" if note else text
    return f"{head} ({note})" if note else head


def summary(
    verb: str,
    elapsed_ms: float,
    processed: int | None,
    outcome: Iterable[tuple[str, int | float]],
    dropped_logs: int = 0,
) -> str:
    """'Completed in 2m 34s | Processed: 5,000 entities | Updates: 235,750 | ...'."""
    parts = [f"{verb} {duration(elapsed_ms)}"]
    if processed is not None:
        parts.append(f"Processed: {count(processed)} entities")
    parts.extend(f"{title(key)}: {count(value)}" for key, value in outcome)
    if dropped_logs:
        parts.append(f"Dropped log lines: {count(dropped_logs)}")
    return " | ".join(parts)
