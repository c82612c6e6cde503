"""The seeds' exact strings."""

from __future__ import annotations

import pytest

from jobglass import formatting


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0.00s"),
        (-3, "0.00s"),
        (4.999, "0.00s"),
        (5, "0.01s"),
        (2340, "2.34s"),
        (59_994, "59.99s"),
        (60_000, "1m 0s"),
        (154_000, "2m 34s"),
        (3_599_000, "59m 59s"),
        (3_723_000, "1h 2m 3s"),
        (90_061_000, "25h 1m 1s"),
    ],
)
def test_duration(ms: float, text: str) -> None:
    assert formatting.duration(ms) == text


def test_counts_have_thousands_separators() -> None:
    assert formatting.count(235750) == "235,750"
    assert formatting.count(5) == "5"
    assert formatting.count(1_000_000) == "1,000,000"


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("updates", "Updates"),
        ("api_calls", "Api Calls"),
        ("apiCalls", "Api Calls"),
        ("re-indexed", "Re Indexed"),
    ],
)
def test_title(key: str, label: str) -> None:
    assert formatting.title(key) == label


def test_progress_messages_as_in_seed_002() -> None:
    msg = formatting.progress_message("Scoring users", 1250, 5000, show_counts=True)
    assert msg == "Scoring users (1,250 / 5,000)"
    assert formatting.percent(1250, 5000) == 25
    unknown = formatting.progress_message(
        "Scanning for orphaned files", 1250, None, show_counts=True
    )
    assert unknown == "Scanning for orphaned files (1,250 processed)"
    note = formatting.progress_message(
        "Initializing", 0, None, show_counts=False, note="Loading configuration"
    )
    assert note == "Initializing (Loading configuration)"
    assert formatting.progress_message("Saving results", 0, None, show_counts=False) == (
        "Saving results"
    )


def test_percent_is_clamped_and_unknown_without_total() -> None:
    assert formatting.percent(6000, 5000) == 100
    assert formatting.percent(-3, 5000) == 0
    assert formatting.percent(10, None) is None
    assert formatting.percent(10, 0) is None


def test_summary_line_of_seed_002() -> None:
    line = formatting.summary(
        "Completed in",
        154_000,
        5000,
        [("updates", 235750), ("skipped", 150), ("errors", 2), ("warnings", 150)],
    )
    assert line == (
        "Completed in 2m 34s | Processed: 5,000 entities | Updates: 235,750 | Skipped: 150"
        " | Errors: 2 | Warnings: 150"
    )


def test_summary_without_progress_and_with_dropped_lines() -> None:
    line = formatting.summary("Failed after", 2340, None, [("deletes", 3)], dropped_logs=1200)
    assert line == "Failed after 2.34s | Deletes: 3 | Dropped log lines: 1,200"
