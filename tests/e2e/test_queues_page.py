"""The Queues page in a real browser: the last hour's throughput chart counts runs by the
minute they finished (whenever they were created), live; the live workers and heartbeats."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from e2e_stack import Pages, Stack

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BAR = re.compile(r"^\d\d:\d\d: (\d+) completed, (\d+) failed$")


def bar_totals(page: Any) -> tuple[int, int]:
    """Completed and failed summed over the chart's bars (each bar's <title>)."""
    ok = bad = 0
    for title in page.locator(".chart g title").all_text_contents():
        match = BAR.match(title)
        assert match, title
        ok, bad = ok + int(match.group(1)), bad + int(match.group(2))
    return ok, bad


def test_the_chart_counts_finished_runs_per_minute_live(stack: Stack, pages: Pages) -> None:
    runs = [
        stack.enqueue("stepper", steps=2, pause_ms=10),
        stack.enqueue("stepper", steps=2, pause_ms=10),
        stack.enqueue("fails-once"),
    ]
    for run in runs:
        stack.wait_status(run["id"], "SUCCESS", "FAILED")
    # created two hours ago (a long wait, or a retry): it finished now, so it counts now
    with sqlite3.connect(stack.db) as db:
        db.execute("UPDATE runs SET created_at = created_at - 7200 WHERE id = ?", (runs[0]["id"],))
    stack.enqueue("stepper", {"queue": "parked"})  # never runs: never counted

    page = pages.open(hash_="#/queues")
    note = page.locator(".chart-note")
    expect(note).to_have_text("3 runs finished in the last hour: 2 completed, 1 failed.")
    expect(page.locator(".chart g")).to_have_count(60)
    assert bar_totals(page) == (2, 1)
    expect(page.locator(".chart-y span").first).to_have_text(re.compile(r"^[1-3]$"))

    # live: a run that ends while the page is open is counted without a reload
    page.evaluate("window.__sameDocument = true")
    stack.wait_status(stack.enqueue("fails-once")["id"], "FAILED")
    expect(note).to_have_text("4 runs finished in the last hour: 2 completed, 2 failed.")
    assert bar_totals(page) == (2, 2)
    stack.wait_status(stack.enqueue("stepper", steps=2, pause_ms=10)["id"], "SUCCESS")
    expect(note).to_have_text("5 runs finished in the last hour: 3 completed, 2 failed.")
    assert page.evaluate("window.__sameDocument") is True

    # one queue at a time
    page.select_option("#chart-queue", "parked")
    expect(note).to_have_text("0 runs finished in the last hour on parked: 0 completed, 0 failed.")
    assert bar_totals(page) == (0, 0)
    page.select_option("#chart-queue", "default")
    expect(note).to_have_text("5 runs finished in the last hour on default: 3 completed, 2 failed.")

    # the per-queue counts agree (queue stats arrive every 2 s: wait for them)
    cells = page.locator("table.data").first.locator("tr", has_text="default").locator("td")
    expect(cells.nth(5)).to_have_text("3")  # Completed
    expect(cells.nth(6)).to_have_text("2")  # Failed


def test_live_workers_are_listed_with_their_heartbeat(stack: Stack, pages: Pages) -> None:
    assert stack.worker is not None
    page = pages.open(hash_="#/queues")
    workers = page.locator("section", has=page.get_by_role("heading", name="Workers"))
    row = workers.locator("tbody tr", has_text=str(stack.worker.pid))
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text("default")  # queues
    expect(cells.nth(4)).to_have_text("0 / 8")  # running / concurrency
    heartbeat = cells.nth(6)
    expect(heartbeat).to_have_text(re.compile(r"^(just now|\d+s ago)$"))
    expect(heartbeat).not_to_have_class("stale")
    first = heartbeat.text_content()
    expect(heartbeat).not_to_have_text(first or "")  # its age ticks (and renews) live
    expect(heartbeat).to_have_text(re.compile(r"^(just now|\d+s ago)$"))

    run = stack.enqueue("stepper", steps=80, pause_ms=100)  # 8 s; the list is read every 5 s
    expect(cells.nth(4)).to_have_text("1 / 8", timeout=15_000)  # the worker is busy
    stack.wait_status(run["id"], "SUCCESS")
    expect(cells.nth(4)).to_have_text("0 / 8", timeout=15_000)
