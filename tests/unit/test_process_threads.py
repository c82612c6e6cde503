"""`tune_switch_interval`: what `jobglass worker` does to its own process's thread switching."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from jobglass.process_threads import DEFAULT_SWITCH_INTERVAL, tune_switch_interval


@pytest.fixture
def interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_tune_switch_interval_shortens_the_wait_for_the_gil(interval: float) -> None:
    tune_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(DEFAULT_SWITCH_INTERVAL)
    assert interval > DEFAULT_SWITCH_INTERVAL  # shorter than Python's own


def test_tune_switch_interval_zero_leaves_it_alone(interval: float) -> None:
    tune_switch_interval(0)
    assert sys.getswitchinterval() == interval


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_tune_switch_interval_refuses_what_is_not_a_duration(interval: float, bad: float) -> None:
    with pytest.raises(ValueError, match="switch interval must be a finite number"):
        tune_switch_interval(bad)
    assert sys.getswitchinterval() == interval
