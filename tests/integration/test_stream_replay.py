"""A one-run stream resumed with `after`: the replay and the snapshot agree, even when the
run's last lines commit between the two reads (a flaky miss of the reconnect test)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jobglass.app import JobGlass
from jobglass.models import LogLine, Run, RunStatus
from jobglass.stores.base import ClaimParams, Feedback, Finish
from jobglass.web.auth import Identity
from jobglass.web.hub import StreamHub
from jobglass.web.stream import StreamFilter, StreamSession


def last_lines(run: Run, seqs: range) -> Feedback:
    logs = [
        LogLine(run.id, seq, "info", "Working", f"line {seq}", None, time.time(), run.attempt)
        for seq in seqs
    ]
    return Feedback(run.id, run.attempt, logs, "Working", seqs[-1], None, None, None, {}, False)


async def test_lines_committed_during_the_replay_come_before_the_snapshot(
    tmp_path: Path,
) -> None:
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/stream.db")

    @app.job(name="steps")
    async def steps(ctx: Any) -> None:
        return None

    async with app:
        queued = await app.enqueue("steps")
        [run] = await app.store.claim_runs(ClaimParams("w", ["default"], 1, 30.0))
        assert await app.store.write_feedback([last_lines(run, range(1, 6))]) == [True]
        real_get_run = app.get_run

        async def get_run_after_the_end(run_id: int | str) -> Run:
            # the run's last lines and its end commit after the replay read lines 3-5
            end = Finish(run.id, run.attempt, RunStatus.SUCCESS)
            assert await app.store.finish_runs([end], [last_lines(run, range(6, 9))]) == [True]
            app.get_run = real_get_run  # type: ignore[method-assign]
            return await real_get_run(run_id)

        app.get_run = get_run_after_the_end  # type: ignore[method-assign]
        hub = StreamHub(app)
        who = Identity("tester", "viewer", "api_key")
        session = StreamSession(hub, StreamFilter(run_id=queued.id, after=2), who, 100)
        try:
            frames = [json.loads(frame.text) async for frame in session.open()]
        finally:
            session.close()
            await hub.stop()
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "hello" and kinds[-1] == "snapshot"
    replayed = [line["seq"] for f in frames if f["type"] == "logs" for line in f["logs"]]
    assert replayed == [3, 4, 5, 6, 7, 8]
    snapshot = frames[-1]
    assert snapshot["seq"] == 8 and snapshot["run"]["status"] == "SUCCESS"
