"""`tune_switch_interval`: what `jobglass worker` does to its own process's thread switching."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobglass.process_threads import (
    DEFAULT_SWITCH_INTERVAL,
    switch_interval_for,
    tune_switch_interval,
)
from jobglass.stores.postgres import PostgresStore
from jobglass.stores.sqlite import SQLiteStore


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


def test_the_worker_sets_it_on_sqlite_unless_told(tmp_path: Path) -> None:
    """Where a writer thread holds the file's lock (SQLite) the default applies; PostgreSQL
    keeps Python's; a value given on the command line applies to either."""
    sqlite = SQLiteStore(f"sqlite:///{tmp_path}/x.db")
    postgres = PostgresStore("postgresql://127.0.0.1:1/none")  # never connected
    assert switch_interval_for(sqlite, None) == DEFAULT_SWITCH_INTERVAL
    assert switch_interval_for(postgres, None) == 0.0
    assert switch_interval_for(postgres, 0.001) == 0.001
    assert switch_interval_for(sqlite, 0.0) == 0.0
