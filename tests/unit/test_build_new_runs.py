"""`build_new_runs`: a batch checked as each item alone would be, shared options once."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from jobglass import EnqueueRequest, InvalidInput, JobContext, Retry
from jobglass.enqueue import build_new_run, build_new_runs
from jobglass.jobs import JobDefinition


async def _job(ctx: JobContext, n: int = 0) -> None:
    return None


JOB = JobDefinition.build("count", _job)


def _lookups() -> tuple[list[str], Any]:
    asked: list[str] = []

    def get_job(name: str) -> JobDefinition:
        asked.append(name)
        return JOB

    return asked, get_job


def test_options_shared_by_consecutive_items_are_checked_once() -> None:
    retry = Retry(attempts=4)
    uniform = [EnqueueRequest("count", {"n": i}, queue="q", retry=retry) for i in range(50)]
    asked, get_job = _lookups()
    news = build_new_runs(uniform, get_job)
    assert len(asked) == 1
    assert [n.params for n in news] == [{"n": i} for i in range(50)]
    assert {(n.queue, n.retry.attempts) for n in news} == {("q", 4)}
    ids = [n.correlation_id or "" for n in news]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"[0-9a-f]{32}", c) for c in ids)

    # equal but not the same objects, or alternating options: checked per item
    alternating = [EnqueueRequest("count", queue=("a", "b")[i % 2]) for i in range(6)]
    asked, get_job = _lookups()
    assert [n.queue for n in build_new_runs(alternating, get_job)] == ["a", "b"] * 3
    assert len(asked) == 6
    copies = [EnqueueRequest("count", retry=Retry(attempts=2)) for _ in range(3)]
    asked, get_job = _lookups()
    build_new_runs(copies, get_job)
    assert len(asked) == 3


def test_each_item_is_what_it_would_be_alone() -> None:
    items = [
        EnqueueRequest("count", {"n": 1}, queue="q", priority=3, correlation_id="given"),
        EnqueueRequest("count", {"n": 2}, queue="q", priority=3),
        EnqueueRequest("count", {"n": 3}, queue="q", priority=3, tenant_id=9),
    ]
    batch = build_new_runs(items, lambda name: JOB)
    for item, new in zip(items, batch, strict=True):
        alone = build_new_run(JOB, item)
        new.correlation_id = alone.correlation_id = None if item.correlation_id is None else "c"
        assert new == alone
    assert batch[0].correlation_id == "c" and batch[2].tenant_id == "9"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"params": {"n": "x"}}, "parameter 'n' must be integer"),
        ({"params": {"n": float("inf")}}, "parameter 'n' is not JSON-serializable"),
        ({"params": {"other": 1}}, "unexpected parameter 'other'"),
        ({"params": {1: 1}}, "parameter names must be strings"),
        ({"correlation_id": "\x00"}, "correlation_id must not contain NUL"),
    ],
)
def test_a_bad_item_among_shared_options_is_refused(bad: dict[str, Any], message: str) -> None:
    items = [EnqueueRequest("count", {"n": i}, queue="q") for i in range(10)]
    items[7] = EnqueueRequest("count", **{"params": {"n": 7}, "queue": "q", **bad})
    with pytest.raises(InvalidInput, match=re.escape(message)):
        build_new_runs(items, lambda name: JOB)


def test_a_params_cycle_is_refused_by_name() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(InvalidInput, match="parameter 'n' is not JSON-serializable"):
        JOB.validate_params({"n": cycle})


def test_random_batches_match_items_checked_alone() -> None:
    """Batches drawn from a few shared option objects (some of them refused) and per-item
    params: the batch refuses with the first refused item's error, else gives each item's
    run as `build_new_run` alone would (correlation ids aside)."""
    rng = random.Random(20261123)
    retries = [Retry(attempts=3), Retry(attempts=1, backoff="fixed")]
    option_pool: list[dict[str, Any]] = [
        {},
        {"queue": "a", "retry": retries[0]},
        {"queue": "a", "retry": Retry(attempts=3)},  # equal to the one before, not the same
        {"queue": "b", "priority": 7, "tenant_id": 3},
        {"delay": 5.0, "keep_completed": 10},
        {"queue": "bad queue"},  # refused
        {"priority": True},  # refused
        {"timeout": 2.5, "user_id": "u", "scope": "user"},
    ]
    params_pool: list[Any] = [None, {"n": 1}, {"n": 2}, {"n": "x"}, {"n": float("nan")}]
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(300):
        items = []
        for _ in range(rng.randint(1, 12)):
            options = rng.choice(option_pool)
            healthy = rng.random() < 0.9  # mostly healthy params, so many batches pass
            params = rng.choice(params_pool[:3] if healthy else params_pool)
            items.append(EnqueueRequest("count", params, **options))
        alone: list[Any] = []
        for item in items:
            try:
                alone.append(build_new_run(JOB, item))
            except InvalidInput as err:
                alone.append(err)
                break
        refused = [x for x in alone if isinstance(x, InvalidInput)]
        if refused:
            with pytest.raises(InvalidInput) as caught:
                build_new_runs(items, lambda name: JOB)
            assert str(caught.value) == str(refused[0])
            outcomes["refused"] += 1
            continue
        batch = build_new_runs(items, lambda name: JOB)
        for new, single in zip(batch, alone, strict=True):
            new.correlation_id = single.correlation_id = "c"
            if single.run_at is not None:  # a delay counts from the moment of checking
                assert new.run_at is not None
                assert abs((new.run_at - single.run_at).total_seconds()) < 1
                new.run_at = single.run_at
            assert new == single
        outcomes["accepted"] += 1
    assert min(outcomes.values()) > 50, outcomes
