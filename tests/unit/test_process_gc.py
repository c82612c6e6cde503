"""`tune_gc`: what `jobglass worker` does to its own process's garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from jobglass.process_gc import DEFAULT_THRESHOLD, tune_gc


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_startup_objects_and_raises_the_young_threshold(
    collector: None,
) -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == (DEFAULT_THRESHOLD, older, oldest)
    assert gc.get_freeze_count() > 0


def test_tune_gc_zero_leaves_the_collector_alone(collector: None) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_gc(0)
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_tune_gc_refuses_a_negative_threshold(collector: None) -> None:
    with pytest.raises(ValueError, match="gc threshold must be >= 0, got -3"):
        tune_gc(-3)
