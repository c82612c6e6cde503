"""Correlation ids: 32 lowercase hex characters, later ids sort after earlier ones."""

from __future__ import annotations

import re
import time
from itertools import islice

import pytest

from jobglass.ids import correlation_ids, new_correlation_id


def test_correlation_ids_are_hex_unique_and_time_ordered() -> None:
    first = [new_correlation_id() for _ in range(1000)]
    time.sleep(0.002)  # the next millisecond at least
    later = [new_correlation_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", c) for c in first + later)
    assert len(set(first + later)) == 2000
    assert max(first) < min(later)
    millis = int(later[0][:12], 16)
    assert abs(millis - time.time() * 1000) < 5000  # the prefix is the clock in ms


@pytest.mark.parametrize("block", [1, 3, 256])
def test_batch_ids_are_hex_unique_and_later_blocks_sort_later(block: int) -> None:
    """Ids made in blocks (a batch's): the same shape as single ids, none repeated, a block
    made in a later millisecond sorting after every id before it."""
    fresh = correlation_ids(block)
    first = list(islice(fresh, 3 * block))
    time.sleep(0.002)
    later = list(islice(fresh, block + 1))  # a new block after the pause, one id of the next
    ids = first + later
    assert all(re.fullmatch(r"[0-9a-f]{32}", c) for c in ids)
    assert len(set(ids)) == len(ids)
    assert max(first) < later[-1]
    assert abs(int(first[0][:12], 16) - time.time() * 1000) < 5000


def test_an_empty_block_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        correlation_ids(0)
