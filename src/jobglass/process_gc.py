"""Garbage-collector settings for the processes jobglass owns (`jobglass worker`).

Every run allocates containers that reference counting frees (the claimed row, its
context, tasks, futures); CPython's default gen-0 threshold (700 net allocations) still
starts a collection every 15-20 runs, and each one walks what the runs in flight hold.
None of those collections finds garbage. A worker raises the threshold once its app is
open and freezes what exists then (modules, the app, its pools) out of every later
collection. Measured with every default, one worker, 20,000 no-op runs, 3 alternating
rounds (`benchmarks/README.md`): worker CPU per run PostgreSQL 200 -> 145 us, SQLite 245 ->
193 us; the collections' own time (`gc.callbacks`) went from 40 us a run to 2.

Only the command-line worker does this: an app embedded in someone else's process leaves
that process's collector alone.
"""

from __future__ import annotations

import gc

#: `jobglass worker --gc-threshold` default: gen-0 collections every 20,000 net allocations.
DEFAULT_THRESHOLD = 20_000


def tune_gc(threshold: int = DEFAULT_THRESHOLD) -> None:
    """Freeze the objects alive now and collect the young generation every `threshold`
    net allocations (0: leave the collector as it is). Older generations keep their
    ratio: a full collection still comes, rarer."""
    if threshold < 0:
        raise ValueError(f"gc threshold must be >= 0, got {threshold}")
    if threshold == 0:
        return
    gc.collect()  # what is garbage already should not be frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
