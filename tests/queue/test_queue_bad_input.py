"""Bad input is refused by name, and nothing is written (API and CLI)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from qhelpers import JOBS_APP, QueueEnv

from jobglass import EnqueueRequest, InvalidInput, NotFound, Retry, RunStatus

BAD_ENQUEUES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"job_name": "no-such-job"}, NotFound, "unknown job 'no-such-job'"),
    ({"queue": ""}, InvalidInput, "invalid queue name ''"),
    ({"queue": "q" * 65}, InvalidInput, "invalid queue name 'qqq"),
    ({"queue": "bad queue!"}, InvalidInput, "invalid queue name 'bad queue!'"),
    ({"queue": "-leading"}, InvalidInput, "invalid queue name '-leading'"),
    ({"queue": "a/b"}, InvalidInput, "invalid queue name 'a/b'"),
    ({"delay": -1}, InvalidInput, "delay must be a number of seconds >= 0, got -1"),
    ({"delay": "soon"}, InvalidInput, "delay must be a number of seconds"),
    ({"priority": 1001}, InvalidInput, "priority must be an integer from -1000 to 1000, got 1001"),
    ({"priority": -5000}, InvalidInput, "priority must be an integer from -1000 to 1000"),
    ({"priority": 1.5}, InvalidInput, "priority must be an integer"),
    ({"priority": "high"}, InvalidInput, "priority must be an integer"),
    ({"priority": True}, InvalidInput, "priority must be an integer from -1000 to 1000, got True"),
    ({"run_at": "tomorrow"}, InvalidInput, "run_at 'tomorrow' is not an ISO-8601 time"),
    ({"run_at": "2026-13-40T00:00:00Z"}, InvalidInput, "is not an ISO-8601 time"),
    ({"run_at": "2026-01-01T08:00:00"}, InvalidInput, "run_at must carry a time zone"),
    ({"run_at": datetime(2026, 1, 1)}, InvalidInput, "run_at must carry a time zone"),
    ({"delay": 5, "run_at": "2026-01-01T08:00:00Z"}, InvalidInput, "give delay or run_at"),
    ({"params": {"n": "seven"}}, InvalidInput, "parameter 'n' must be integer"),
    ({"params": {"m": 1}}, InvalidInput, "unexpected parameter 'm'"),
    ({"job_id": ""}, InvalidInput, "job_id must be a non-empty string"),
    ({"timeout": -1}, InvalidInput, "timeout must be a number of seconds > 0"),
    ({"timeout": float("inf")}, InvalidInput, "timeout must be a number of seconds > 0 and finite"),
    ({"timeout": float("nan")}, InvalidInput, "timeout must be a number of seconds > 0 and finite"),
    ({"timeout": True}, InvalidInput, "timeout must be a number of seconds > 0, got True"),
    ({"keep_completed": -1}, InvalidInput, "keep_completed must be a whole number of runs from 0"),
    ({"keep_completed": "10"}, InvalidInput, "keep_completed must be a whole number of runs"),
    ({"keep_failed": 1.5}, InvalidInput, "keep_failed must be a whole number of runs"),
    ({"keep_failed": 2**31}, InvalidInput, "keep_failed must be a whole number of runs"),
    # PostgreSQL refuses NUL in text (a database error before): refused by name on both
    ({"tenant_id": "t\x00"}, InvalidInput, "tenant_id must not contain NUL (\\x00)"),
    ({"user_id": "\x00"}, InvalidInput, "user_id must not contain NUL (\\x00)"),
    ({"correlation_id": "c\x00d"}, InvalidInput, "correlation_id must not contain NUL"),
    ({"job_id": "j\x00"}, InvalidInput, "job_id must not contain NUL"),
    ({"algorithm_version": "v\x00"}, InvalidInput, "algorithm_version must not contain NUL"),
]


async def test_bad_enqueue_is_refused_and_writes_nothing(qenv: QueueEnv) -> None:
    for raw, error, message in BAD_ENQUEUES:
        options = dict(raw)
        job = options.pop("job_name", "noop")
        params = options.pop("params", None)
        with pytest.raises(error) as caught:
            await qenv.app.enqueue(job, params, **options)
        assert message in str(caught.value), (raw, str(caught.value))
        # one bad item spoils the whole batch: the good one before it is not written either
        with pytest.raises(error):
            await qenv.app.enqueue_many(
                [EnqueueRequest("noop", {"n": 1}), EnqueueRequest(job, params, **options)]
            )
    assert await qenv.count_rows("runs") == 0


BAD_ITEMS: list[tuple[dict[str, Any], str]] = [
    ({"params": {"n": "seven"}}, "parameter 'n' must be integer"),
    ({"params": {"m": 1}}, "unexpected parameter 'm'"),
    ({"params": {"n": float("nan")}}, "parameter 'n' is not JSON-serializable"),
    ({"params": {"n": object()}}, "parameter 'n' is not JSON-serializable"),
    ({"correlation_id": "c\x00"}, "correlation_id must not contain NUL"),
]


async def test_a_bad_item_deep_in_a_uniform_batch_is_refused(qenv: QueueEnv) -> None:
    """`enqueue_many` checks options shared by consecutive items once (the same objects, as
    a batch made in one loop has), yet every item's params and correlation id are checked,
    and a refused item anywhere (here the 700th of a batch that would go by COPY on
    PostgreSQL) leaves nothing written."""
    queue, retry, tenant = "bulk", Retry(attempts=3, delay=2.0), "tenant-7"

    def item(i: int, **given: Any) -> EnqueueRequest:
        options = {"params": {"n": i}, "queue": queue, "retry": retry, "tenant_id": tenant}
        return EnqueueRequest("noop", **{**options, **given})

    for bad, message in BAD_ITEMS:
        batch = [item(i) for i in range(800)]
        batch[700] = item(700, **bad)
        with pytest.raises(InvalidInput) as caught:
            await qenv.app.enqueue_many(batch)
        assert message in str(caught.value), (bad, str(caught.value))
    assert await qenv.count_rows("runs") == 0

    created = await qenv.app.enqueue_many([item(i) for i in range(800)] + [item(800, queue="x")])
    runs = [c.run for c in created]
    assert [r.params for r in runs] == [{"n": i} for i in range(801)]
    assert [r.queue for r in runs] == [queue] * 800 + ["x"]
    assert {(r.tenant_id, r.max_attempts, r.retry.delay, r.scope) for r in runs} == {
        (tenant, 3, 2.0, "tenant")
    }
    assert len({r.correlation_id for r in runs}) == 801
    for run in runs[::100] + runs[-1:]:
        assert await qenv.app.get_run(run.id) == run
    assert await qenv.count_rows("runs") == 801


async def test_control_of_missing_runs(qenv: QueueEnv) -> None:
    app = qenv.app
    for bad in (999_999, "999999", "abc", 0, -4):
        with pytest.raises(NotFound, match="does not exist"):
            await app.cancel(bad)
        with pytest.raises(NotFound, match="does not exist"):
            await app.retry(bad)
        with pytest.raises(NotFound, match="does not exist"):
            await app.delete_run(bad)
    assert await qenv.count_rows("runs") == 0


async def test_worker_refuses_bad_options(qenv: QueueEnv) -> None:
    with pytest.raises(InvalidInput, match="invalid queue name"):
        qenv.app.worker(queues=["ok", "not ok"])
    with pytest.raises(InvalidInput, match="at least one queue"):
        qenv.app.worker(queues=[])
    with pytest.raises(InvalidInput, match="concurrency must be >= 1"):
        qenv.app.worker(concurrency=-1)


CLI_BAD = [
    (["no-such-job"], "unknown job 'no-such-job'"),
    (["noop", "--queue", "bad queue!"], "invalid queue name 'bad queue!'"),
    (["noop", "--delay", "-5"], "delay must be a number of seconds >= 0"),
    (["noop", "--priority", "5000"], "priority must be an integer from -1000 to 1000"),
    (["noop", "--run-at", "next tuesday"], "run_at 'next tuesday' is not an ISO-8601 time"),
]


@pytest.mark.slow
async def test_cli_enqueue_refuses_bad_input_with_status_2(qenv: QueueEnv) -> None:
    outs = await asyncio.gather(*(qenv.cli("enqueue", JOBS_APP, *args) for args, _ in CLI_BAD))
    for (args, message), out in zip(CLI_BAD, outs, strict=True):
        assert out.returncode == 2, (args, out)
        assert message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
        assert out.stdout == ""
    assert await qenv.count_rows("runs") == 0
    # and a good one goes through
    ok = await qenv.cli("enqueue", JOBS_APP, "noop", "--param", "n=7", "--priority", "3")
    assert ok.returncode == 0, ok.stderr
    assert '"status": "QUEUED"' in ok.stdout
    assert await qenv.count_rows("runs") == 1
    [run] = await qenv.app.list_runs()
    assert run.params == {"n": 7} and run.priority == 3


@pytest.mark.slow
async def test_cli_worker_refuses_a_bad_gc_threshold(qenv: QueueEnv) -> None:
    for value, message in (("-1", "must be >= 0"), ("lots", "not a whole number: 'lots'")):
        out = await qenv.cli("worker", JOBS_APP, "--gc-threshold", value)
        assert out.returncode == 2, out
        assert f"argument --gc-threshold: {message}" in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.slow
async def test_cli_worker_refuses_a_bad_switch_interval(qenv: QueueEnv) -> None:
    for value, message in (
        ("-0.001", "must be from 0 to 1 second"),
        ("2", "must be from 0 to 1 second"),
        ("nan", "must be from 0 to 1 second"),
        ("soon", "not a number of seconds: 'soon'"),
    ):
        out = await qenv.cli("worker", JOBS_APP, "--switch-interval", value)
        assert out.returncode == 2, out
        assert f"argument --switch-interval: {message}" in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.slow
async def test_cli_worker_tunes_its_garbage_collector(qenv: QueueEnv) -> None:
    """`jobglass worker` freezes its startup objects and raises the young generation's
    threshold (default 20,000), and on SQLite hands the GIL over after 0.2 ms instead of 5;
    `--gc-threshold 0 --switch-interval 0` leaves Python's settings."""
    tuned = qenv.start_worker()
    untouched = qenv.start_worker(
        queues="plain-gc", extra=["--gc-threshold", "0", "--switch-interval", "0"]
    )
    await qenv.wait_ready(tuned, untouched)
    runs = [
        await qenv.app.enqueue("gc-settings"),
        await qenv.app.enqueue("gc-settings", queue="plain-gc"),
    ]
    await qenv.wait_finished([r.id for r in runs], statuses={RunStatus.SUCCESS})
    seen = {r["run"]: (r["threshold"], r["frozen"] > 0, r["switch"]) for r in qenv.records("gc")}
    switched = 0.0002 if qenv.backend == "sqlite" else 0.005
    assert seen[runs[0].id] == (20_000, True, pytest.approx(switched))
    threshold, frozen, switch = seen[runs[1].id]
    assert threshold != 20_000 and not frozen and switch == pytest.approx(0.005)
