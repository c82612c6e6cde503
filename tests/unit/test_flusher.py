"""The flusher keeps one run's unwritable batch from blocking every other run."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from jobglass.feedback import JobLogger
from jobglass.flusher import FeedbackFlusher
from jobglass.stores.base import Feedback


async def test_one_bad_batch_does_not_block_the_others() -> None:
    written: list[int] = []
    published: list[int] = []

    async def write(batches: Sequence[Feedback]) -> list[bool]:
        if any(b.run_id == 2 for b in batches):
            raise ValueError("the store refuses run 2's batch")
        written.extend(b.run_id for b in batches)
        return [True] * len(batches)

    flusher = FeedbackFlusher(write, lambda bs: published.extend(b.run_id for b in bs), 60)
    good, bad = JobLogger(1, "good"), JobLogger(2, "bad")
    flusher.attach(good)
    flusher.attach(bad)
    for round_ in range(3):
        good.info(f"round {round_}")
        bad.info(f"round {round_}")
        await flusher.flush()
        assert written.count(1) == round_ + 1  # the good run is written every time
    assert not bad.lost  # a failed write is not a lost lease
    assert bad.drain() is None  # after three tries alone, the refused lines were dropped
    await flusher.close()


async def test_when_every_write_fails_nothing_is_dropped() -> None:
    async def write(batches: Sequence[Feedback]) -> list[bool]:
        raise ConnectionError("database is down")

    flusher = FeedbackFlusher(write, lambda bs: None, 60)
    a, b = JobLogger(1, "a"), JobLogger(2, "b")
    flusher.attach(a)
    flusher.attach(b)
    a.info("kept")
    b.info("kept too")
    for _ in range(5):
        with contextlib.suppress(RuntimeError):  # the store is down; the flusher keeps lines
            await flusher.flush()
    batch_a, batch_b = a.drain(), b.drain()
    assert batch_a is not None and [x.message for x in batch_a.logs] == ["kept"]
    assert batch_b is not None and [x.message for x in batch_b.logs] == ["kept too"]
    if flusher._task is not None:
        flusher._task.cancel()
