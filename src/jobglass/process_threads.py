"""Thread switching for the processes jobglass owns (`jobglass worker`).

A worker on SQLite runs two busy threads: the event loop (handlers, the runner) and the
store's writer, which holds the database's write lock while it writes. The writer drops the
GIL inside each SQLite call and needs it back between them; with CPython's 5 ms switch
interval it could wait that long for the event loop to give it up, all the while holding the
file's write lock that every other worker waits for. Measured with two SQLite workers,
10,000-run windows, five alternating rounds (tenth session): median 3,779 runs/s with
Python's 5 ms, 4,060 with 0.2 ms, 4,043 with 0.1 ms; one SQLite worker and PostgreSQL workers
(one busy thread) unchanged within the noise.

The cost falls on CPU-bound sync handlers running in threads at once, which hand the GIL
over more often: four pure-Python threads took 0.794 s with 5 ms and 0.863 s with 0.2 ms
(+9 %). So `jobglass worker` sets it only on SQLite, where it was measured to help, unless
told otherwise (`--switch-interval`). Only the command-line worker does this: an app embedded
in someone else's process leaves that process's setting alone.
"""

from __future__ import annotations

import math
import sys

#: `jobglass worker --switch-interval` default on SQLite, in seconds (CPython's own is 0.005).
DEFAULT_SWITCH_INTERVAL = 0.0002


def tune_switch_interval(seconds: float = DEFAULT_SWITCH_INTERVAL) -> None:
    """Let a thread waiting for the GIL have it after `seconds` (0: leave Python's)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"switch interval must be a finite number of seconds >= 0, got {seconds}")
    if seconds > 0:
        sys.setswitchinterval(seconds)


def switch_interval_for(store: object, asked: float | None) -> float:
    """What `jobglass worker` sets: `asked` if given, else `DEFAULT_SWITCH_INTERVAL` for a
    SQLite store (a writer thread that holds the file's lock) and 0 (Python's) for others."""
    if asked is not None:
        return asked
    from .stores.sqlite import SQLiteStore

    return DEFAULT_SWITCH_INTERVAL if isinstance(store, SQLiteStore) else 0.0
