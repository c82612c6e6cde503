"""Cancelling from another process: a queued run at once, a running one cooperatively."""

from __future__ import annotations

import json
import time

import pytest
from qhelpers import QueueEnv

from jobglass import RunStatus

pytestmark = pytest.mark.slow


async def test_cancel_a_queued_run_from_the_cli(qenv: QueueEnv) -> None:
    run = await qenv.app.enqueue("noop", delay=60)
    out = await qenv.cli("cancel", str(run.id))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"run {run.id}: CANCELLED"
    final = await qenv.app.get_run(run.id)
    assert final.status == RunStatus.CANCELLED
    assert final.finished_at is not None and final.attempt == 0
    # a worker never picks it up
    qenv.start_worker(concurrency=2)
    await qenv.wait_ready(*qenv.workers)
    other = await qenv.app.enqueue("noop")
    await qenv.wait_finished([other.id])
    assert (await qenv.app.get_run(run.id)).status == RunStatus.CANCELLED
    assert not qenv.records("done", run=run.id)
    # cancelling it again is a no-op that still reports the state
    again = await qenv.cli("cancel", str(run.id))
    assert again.returncode == 0 and "CANCELLED" in again.stdout


async def test_cancel_a_running_run_from_the_cli(qenv: QueueEnv) -> None:
    qenv.start_worker(concurrency=2)
    run = await qenv.app.enqueue("cooperative", {"linger": 2.0})
    await qenv.wait_until(lambda: qenv.records("start", run=run.id), 20, "the run to start")
    assert (await qenv.app.get_run(run.id)).cancel_requested is False

    out = await qenv.cli("cancel", str(run.id))
    asked = time.time()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"run {run.id}: cancel requested"

    # visible to anyone while the job is still running
    seen = await qenv.cli("show", str(run.id), "--json")
    shown = json.loads(seen.stdout)["run"]
    assert shown["status"] == "RUNNING" and shown["cancelRequested"] is True

    [saw] = await qenv.wait_until(
        lambda: qenv.records("saw_cancel", run=run.id), 5, "the job to see ctx.cancelled"
    )
    assert saw["t"] - asked < 1.0, saw["t"] - asked

    [final] = await qenv.wait_finished([run.id], within=10)
    assert final.status == RunStatus.CANCELLED, final.errors
    assert final.error is not None and final.error["type"] == "JobCancelled"
    assert not qenv.records("done", run=run.id)
    hooks = await qenv.wait_until(lambda: qenv.records("hook", run=run.id), 5, "the hook")
    assert [h["hook"] for h in hooks] == ["cancelled"]


async def test_cancel_a_run_that_does_not_exist(qenv: QueueEnv) -> None:
    for bad in ("999999", "abc", "-3"):
        out = await qenv.cli("cancel", bad)
        assert out.returncode == 2, (bad, out)
        assert f"run {bad!r}" in out.stderr or f"run {bad}" in out.stderr
        assert "does not exist" in out.stderr
