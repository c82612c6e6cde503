"""Correlation ids: 32 lowercase hex characters, later ids sort after earlier ones."""

from __future__ import annotations

import re
import time

from jobglass.ids import new_correlation_id


def test_correlation_ids_are_hex_unique_and_time_ordered() -> None:
    first = [new_correlation_id() for _ in range(1000)]
    time.sleep(0.002)  # the next millisecond at least
    later = [new_correlation_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", c) for c in first + later)
    assert len(set(first + later)) == 2000
    assert max(first) < min(later)
    millis = int(later[0][:12], 16)
    assert abs(millis - time.time() * 1000) < 5000  # the prefix is the clock in ms
