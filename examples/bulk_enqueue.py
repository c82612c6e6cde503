"""Enqueue a big batch in one round trip, and read back only what you need.

    python -m examples.bulk_enqueue             # SQLite file in a temporary folder

`enqueue_many` checks every item, then writes them all in one transaction. Build the items in
one loop with the same option objects (queue, retry, ...): those options are then checked
once for the batch, and only each item's params and correlation id one by one. Each
`Created` carries the new run's id (`run_id`); its full `Run` (`created.run`) is made on
first read. An item with a `job_id` that a live run already holds returns that run instead
(`created` is False).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from jobglass import EnqueueRequest, JobContext, JobGlass, Retry


def make_app(database_url: str) -> JobGlass:
    app = JobGlass(database_url)

    @app.job(name="send-invoice", queue="billing")
    async def send_invoice(ctx: JobContext, invoice_id: int) -> None:
        ctx.log.info(f"sending invoice {invoice_id}")

    return app


async def enqueue_invoices(app: JobGlass, count: int) -> tuple[list[int], int]:
    """(the new runs' ids, how many items were already queued under their job_id)."""
    retry = Retry(attempts=5, backoff="exponential", delay=2.0)  # one object for the batch
    async with app:
        first = await app.enqueue("send-invoice", {"invoice_id": 0}, job_id="invoice-0")
        batch = [
            EnqueueRequest(
                "send-invoice",
                {"invoice_id": i},
                retry=retry,
                job_id=f"invoice-{i}" if i < 3 else None,  # dedupe the first three
            )
            for i in range(count)
        ]
        created = await app.enqueue_many(batch)
        assert created[0].run_id == first.id and not created[0].created
        new_ids = [c.run_id for c in created if c.created]
        last = created[-1].run  # made now, on first read
        assert last.params == {"invoice_id": count - 1} and last.max_attempts == 5
        return new_ids, sum(not c.created for c in created)


def main(count: int = 2_000) -> tuple[list[int], int]:
    with tempfile.TemporaryDirectory() as folder:
        new_ids, known = asyncio.run(enqueue_invoices(make_app(f"sqlite:///{folder}/j.db"), count))
    print(f"{len(new_ids)} runs queued, {known} already queued under their job_id", file=sys.stderr)
    return new_ids, known


if __name__ == "__main__":
    main()
