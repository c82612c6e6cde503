"""JobContext cancellation as a sync job in a worker thread sees it."""

from __future__ import annotations

import threading
import time

from jobglass.context import JobContext
from jobglass.feedback import JobLogger


def make_ctx() -> JobContext:
    return JobContext(run_id=1, job_name="sleepy", log=JobLogger(1, "sleepy"))


def test_a_sleeping_sync_job_wakes_when_cancelled() -> None:
    ctx = make_ctx()
    woke: list[tuple[bool, float]] = []

    def job() -> None:
        start = time.monotonic()
        woke.append((ctx.wait_cancelled(10), time.monotonic() - start))

    thread = threading.Thread(target=job)
    thread.start()
    time.sleep(0.1)  # the job is asleep by now
    ctx.request_cancel("cancel requested")
    thread.join(5)
    [(cancelled, slept)] = woke
    assert cancelled and slept < 5
    assert ctx.cancelled and ctx.cancel_reason == "cancel requested"


def test_a_cancel_before_the_sleep_returns_at_once_and_the_first_reason_stays() -> None:
    ctx = make_ctx()
    assert not ctx.cancelled and ctx.wait_cancelled(0.01) is False
    ctx.request_cancel("timeout")
    ctx.request_cancel("shutdown")  # a later request does not rewrite why it stopped
    start = time.monotonic()
    assert ctx.wait_cancelled(10) is True
    assert time.monotonic() - start < 1
    assert ctx.cancel_reason == "timeout"


def test_many_waiters_and_a_racing_cancel_all_wake() -> None:
    for _ in range(50):
        ctx = make_ctx()
        results: list[bool] = []

        def sleeper(ctx: JobContext = ctx, results: list[bool] = results) -> None:
            results.append(ctx.wait_cancelled(10))

        threads = [threading.Thread(target=sleeper) for _ in range(4)]
        for t in threads:
            t.start()
        ctx.request_cancel("cancel requested")  # may land before, between or after the waits
        for t in threads:
            t.join(5)
        assert results == [True] * 4
