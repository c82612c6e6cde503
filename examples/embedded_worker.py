"""A worker inside your own process, logging as `jobglass worker` does.

    python -m examples.embedded_worker          # SQLite file in a temporary folder

`configure_logging(json=True, batched=True)` writes JSON lines with the run fields; batched,
the lines of one event-loop turn go out in one write (at most 0.1 s late if a job blocks the
loop; WARNING and worse at once). `handler.flush()` writes what waits, and `logging.shutdown`
(at exit) calls it.

A process that only runs jobs can also take `jobglass worker`'s garbage-collector settings
(`tune_gc()`: startup objects frozen, young collections every 20,000 net allocations instead
of 700; a quarter of a no-op run's CPU went to collections that found nothing) and, on
SQLite as here, its thread switching (`tune_switch_interval()`: the GIL handed to a waiting
thread after 0.2 ms, not 5; the store's writer waits for it while holding the file's write
lock). Leave them out in a process that does other work too: they change the whole
process's settings.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from typing import IO

from jobglass import JobContext, JobGlass
from jobglass.observe.logging import configure_logging
from jobglass.process_gc import tune_gc
from jobglass.process_threads import tune_switch_interval


def make_app(database_url: str) -> JobGlass:
    app = JobGlass(database_url)

    @app.job(name="resize-image")
    async def resize_image(ctx: JobContext, image_id: int, api_key: str = "") -> dict[str, int]:
        logging.getLogger("myapp.images").info("resizing %s", image_id)  # carries run fields
        return {"image_id": image_id}

    return app


async def run_some(app: JobGlass, count: int, dedicated: bool = False) -> None:
    """Enqueue `count` resizes, then work until they are done."""
    async with app:
        if dedicated:  # this process does nothing but run jobs
            tune_gc()
            tune_switch_interval()
        for image_id in range(count):
            await app.enqueue("resize-image", {"image_id": image_id, "api_key": "k-123"})
        worker = app.worker(concurrency=10)
        task = asyncio.create_task(worker.run())
        while worker.completed < count:  # noqa: ASYNC110 - the worker's own counter
            await asyncio.sleep(0.01)
        worker.stop()
        await task


def main(stream: IO[str] = sys.stderr, count: int = 3, dedicated: bool = False) -> logging.Handler:
    handler = configure_logging(json=True, level=logging.INFO, stream=stream, batched=True)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_some(make_app(f"sqlite:///{folder}/jobs.db"), count, dedicated))
    handler.flush()
    return handler


if __name__ == "__main__":
    main(dedicated=True)
