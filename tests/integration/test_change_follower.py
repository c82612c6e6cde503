"""The change follower (another process's writes, republished on this app's event bus).

A fast run can be SUCCESS by the time the follower reads the change its claim wrote, while
the change carrying its lines is still unread: the follower must then publish the lines
before the status, or a client sees the run finish before the lines that led there (a
flaky `test_filters_and_level_threshold`, 2 failures in 12 runs before the fix).
"""

from __future__ import annotations

from typing import Any

from web_jobs import make_app

from jobglass.events import Subscription
from jobglass.web.follow import ChangeFollower


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


async def test_a_status_change_read_late_brings_the_lines_first(store_url: str) -> None:
    app = make_app(store_url)
    async with app:
        run = await app.run_job("web-demo", {"lines": 12, "delay": 0.0})
        stored = await app.store.get_run(run.id)
        assert stored is not None and stored.log_seq > 12
        follower = ChangeFollower(app)
        with app.events.subscribe() as sub:
            await follower.process([(run.id, "status", 0, 0)])  # the claim's change, late
            first = drain(sub)
            assert [e["type"] for e in first] == ["feedback", "status"]
            assert first[1]["status"] == "SUCCESS"
            seqs = [line["seq"] for line in first[0]["logs"]]
            assert seqs == list(range(1, stored.log_seq + 1))
            warnings = [line for line in first[0]["logs"] if line["level"] == "warning"]
            assert len(warnings) == 1  # "item 9 looks odd"

            # the change with the lines, read next: nothing is fetched or sent twice
            await follower.process(
                [(run.id, "feedback", 1, stored.log_seq), (run.id, "status", 0, 0)]
            )
            again = drain(sub)
            assert [e["type"] for e in again] == ["feedback", "status"]
            assert again[0]["logs"] == []
