"""The curated public API: everything in __all__ exists, nothing private leaks."""

from __future__ import annotations

import jobglass


def test_all_names_exist_and_are_sorted() -> None:
    for name in jobglass.__all__:
        assert hasattr(jobglass, name), name
    assert list(jobglass.__all__) == sorted(jobglass.__all__)
    assert not [n for n in jobglass.__all__ if n.startswith("_") and n != "__version__"]


def test_design_names_are_public() -> None:
    for name in ("JobGlass", "JobContext", "Retry", "TransientError", "FatalError", "BaseJob",
                 "JobLogger", "create_job_logger"):
        assert name in jobglass.__all__
