"""Retries follow the backoff; FatalError is final; TransientError retries; timeouts recorded."""

from __future__ import annotations

from datetime import datetime

import pytest
from qhelpers import QueueEnv
from qjobs import FLAKY_RETRY

from jobglass import RunStatus

pytestmark = pytest.mark.slow

#: Lateness allowed between "due" and "started again" (poll 0.05 s, finish, claim).
LATE = 0.6


def _at(err: dict[str, object]) -> float:
    return datetime.fromisoformat(str(err["at"]).replace("Z", "+00:00")).timestamp()


async def test_retry_kinds_backoff_fatal_transient_and_timeout(qenv: QueueEnv) -> None:
    app = qenv.app
    # all scenarios at once, on one worker, so the test takes as long as the slowest
    backoff = await app.enqueue("flaky", {"fail_times": 3, "kind": "value"})
    exhausted = await app.enqueue("flaky", {"fail_times": 10, "kind": "value"})
    fatal = await app.enqueue("flaky", {"fail_times": 3, "kind": "fatal"})
    transient = await app.enqueue("transient-only", {"fail_times": 2})
    transient_out = await app.enqueue("transient-only", {"fail_times": 10})
    timeout = await app.enqueue("slow", {"seconds": 10})
    qenv.start_worker(concurrency=10)
    ids = [r.id for r in (backoff, exhausted, fatal, transient, transient_out, timeout)]
    runs = {r.id: r for r in await qenv.wait_finished(ids, within=40)}

    # plain errors: retried until they stop, on the exponential schedule
    run = runs[backoff.id]
    assert run.status == RunStatus.SUCCESS and run.attempt == 4, run.errors
    assert [e["type"] for e in run.errors] == ["ValueError"] * 3
    assert [e["attempt"] for e in run.errors] == [1, 2, 3]
    fails = qenv.records("fail", run=backoff.id)
    starts = qenv.records("start", run=backoff.id)
    assert [s["attempt"] for s in starts] == [1, 2, 3, 4]
    for n, (fail, nxt) in enumerate(zip(fails, starts[1:], strict=True), start=1):
        expected = FLAKY_RETRY.delay * 2 ** (n - 1)  # 0.4, 0.8, 1.6 (jitter 0)
        gap = nxt["t"] - fail["t"]
        assert expected - 0.05 <= gap <= expected + LATE, (n, gap, expected)
    # the recorded error times agree with the job's own clock
    for err, fail in zip(run.errors, fails, strict=True):
        assert abs(_at(err) - fail["t"]) < 0.5

    run = runs[exhausted.id]
    assert run.status == RunStatus.FAILED and run.attempt == FLAKY_RETRY.attempts
    assert len(run.errors) == 4 and run.error is not None
    assert run.error["type"] == "ValueError" and "attempt 4" in run.error["message"]

    # FatalError: never retried, even with attempts left
    run = runs[fatal.id]
    assert run.status == RunStatus.FAILED and run.attempt == 1
    assert [e["type"] for e in run.errors] == ["FatalError"]
    assert len(qenv.records("start", run=fatal.id)) == 1

    # TransientError: retried although the job declares a single attempt
    run = runs[transient.id]
    assert run.status == RunStatus.SUCCESS and run.attempt == 3
    assert [e["type"] for e in run.errors] == ["TransientError"] * 2
    run = runs[transient_out.id]
    assert run.status == RunStatus.FAILED and run.attempt == 3  # transient_attempts=3

    # timeout: the handler is stopped, the attempt recorded as JobTimeout
    run = runs[timeout.id]
    assert run.status == RunStatus.FAILED
    assert run.error is not None and run.error["type"] == "JobTimeout"
    assert "0.3" in run.error["message"]
    assert run.duration_ms is not None and 250 <= run.duration_ms < 2000
    assert not qenv.records("done", run=timeout.id)

    # hooks: "retrying" for each retried attempt, then the final one (fired after the finish)
    # 4 + 4 (3 retrying each, then the end), 1, 3 + 3 (2 retrying each, then the end), 1
    await qenv.wait_until(lambda: len(qenv.records("hook")) >= 16, 5, "all hooks")
    hooks = [(h["hook"], h["status"]) for h in qenv.records("hook", run=backoff.id)]
    assert hooks == [("retrying", "RETRYING")] * 3 + [("completed", "SUCCESS")]
    assert [h["hook"] for h in qenv.records("hook", run=fatal.id)] == ["failed"]
    assert [h["hook"] for h in qenv.records("hook", run=timeout.id)] == ["failed"]


async def test_retry_of_a_failed_run_from_another_process(qenv: QueueEnv) -> None:
    fatal = await qenv.app.enqueue("flaky", {"fail_times": 1, "kind": "fatal"})
    qenv.start_worker(concurrency=2)
    [run] = await qenv.wait_finished([fatal.id])
    assert run.status == RunStatus.FAILED
    out = await qenv.cli("retry", str(fatal.id))
    assert out.returncode == 0, out.stderr
    assert f"run {fatal.id}: QUEUED" in out.stdout
    [run] = await qenv.wait_finished([fatal.id])
    assert run.status == RunStatus.SUCCESS and run.attempt == 2
    # a successful run cannot be retried: exit 2 and the reason
    out = await qenv.cli("retry", str(fatal.id))
    assert out.returncode == 2
    assert "SUCCESS" in out.stderr and "only FAILED or CANCELLED" in out.stderr
