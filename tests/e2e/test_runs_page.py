"""The runs table's filters in a real browser: the inputs narrow the table, and live updates
keep a filtered view true (runs that leave the filters go, runs that enter them come)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from e2e_stack import Pages, Stack

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def row(page: Any, run: dict[str, Any]) -> Any:
    return page.locator(f"tr[data-run-id='{run['id']}']")


def open_runs(pages: Pages, hash_: str = "#/runs") -> Any:
    page = pages.open(hash_=hash_)
    expect(page.locator("#conn-text")).to_have_text("Live")
    expect(page.locator(".table-foot")).to_contain_text("runs shown")
    return page


def test_the_filter_inputs_narrow_the_table(stack: Stack, pages: Pages) -> None:
    done = stack.enqueue("stepper", steps=2, pause_ms=10)
    failed = stack.enqueue("fails-once")
    needle = stack.enqueue("stepper", {"jobId": "needle-7"}, steps=2, pause_ms=10)
    for run in (done, failed, needle):
        stack.wait_status(run["id"], "SUCCESS", "FAILED")
    page = open_runs(pages)
    for run in (done, failed, needle):
        expect(row(page, run)).to_be_visible()

    page.select_option("#f-status", "FAILED")
    expect(row(page, done)).to_have_count(0)
    expect(row(page, failed)).to_be_visible()
    expect(row(page, failed).locator(".badge")).to_have_text("FAILED")
    assert "status=FAILED" in page.url
    page.select_option("#f-status", "SUCCESS")
    expect(row(page, failed)).to_have_count(0)
    expect(row(page, done)).to_be_visible()
    page.select_option("#f-status", "")

    page.fill("#f-job", "fails-once")
    expect(row(page, done)).to_have_count(0)
    expect(row(page, needle)).to_have_count(0)
    expect(row(page, failed)).to_be_visible()
    assert "job=fails-once" in page.url
    page.fill("#f-job", "")
    expect(row(page, done)).to_be_visible()

    # text: job name, stage, job id or correlation id, any case
    page.fill("#f-q", "NEEDLE")
    expect(row(page, needle)).to_be_visible()
    expect(row(page, done)).to_have_count(0)
    expect(row(page, failed)).to_have_count(0)
    page.fill("#f-q", "tryin")  # fails-once's stage is "Trying"
    expect(row(page, failed)).to_be_visible()
    expect(row(page, needle)).to_have_count(0)
    expect(page.locator("#f-q")).to_have_value("tryin")
    page.reload()  # the filters live in the hash
    expect(page.locator("#f-q")).to_have_value("tryin")
    expect(row(page, failed)).to_be_visible()
    expect(row(page, done)).to_have_count(0)

    page.get_by_role("button", name="Clear filters").click()
    for run in (done, failed, needle):
        expect(row(page, run)).to_be_visible()


def test_a_status_filter_drops_runs_that_leave_it_and_adds_runs_that_enter_it(
    stack: Stack, pages: Pages
) -> None:
    running = open_runs(pages, "#/runs?status=RUNNING")
    run = stack.enqueue("stepper", steps=20, pause_ms=100)
    expect(row(running, run).locator(".badge")).to_have_text("RUNNING")
    expect(row(running, run)).to_have_count(0, timeout=30_000)  # SUCCESS: no longer RUNNING
    assert stack.run(run["id"])["status"] == "SUCCESS"
    expect(running.locator(".notice")).to_have_text("No runs match these filters yet.")

    failed_view = open_runs(pages, "#/runs?status=FAILED")
    succeeded_view = open_runs(pages, "#/runs?status=SUCCESS")
    flaky = stack.enqueue("fails-once")
    expect(row(failed_view, flaky).locator(".badge")).to_have_text("FAILED")
    expect(row(succeeded_view, flaky)).to_have_count(0)
    # retried: it leaves the FAILED view and, once it succeeds, enters the SUCCESS view
    assert stack.post(f"/jobs/{flaky['id']}/retry").status_code == 200
    expect(row(failed_view, flaky)).to_have_count(0)
    expect(row(succeeded_view, flaky).locator(".badge")).to_have_text("SUCCESS")
    assert stack.run(flaky["id"])["attempt"] == 2
    expect(row(failed_view, flaky)).to_have_count(0)


def test_a_text_filter_follows_the_stage_live(stack: Stack, pages: Pages) -> None:
    page = open_runs(pages, "#/runs?q=crunching")
    run = stack.enqueue("stepper", steps=20, pause_ms=100)
    # in while its stage is "Crunching numbers", out again once it is "Finalizing"
    expect(row(page, run).locator("td.stage")).to_have_text("Crunching numbers")
    expect(row(page, run)).to_have_count(0, timeout=30_000)
    final = stack.wait_status(run["id"], "SUCCESS")
    assert final["currentStage"] == "Finalizing"


QUICK = {"steps": 3, "pause_ms": 10}


@pytest.mark.parametrize(
    ("hash_", "matching", "other"),
    [
        ("#/runs?job=fails-once", ("fails-once", {}, {}), ("stepper", {}, QUICK)),
        ("#/runs?queue=parked", ("stepper", {"queue": "parked"}, QUICK), ("stepper", {}, QUICK)),
        (
            "#/runs?tenant=t-9",
            ("stepper", {"tenantId": "t-9"}, QUICK),
            ("stepper", {"tenantId": "t-1"}, QUICK),
        ),
        (
            "#/runs?correlationId=corr-live",
            ("stepper", {"correlationId": "corr-live"}, QUICK),
            ("stepper", {"correlationId": "corr-other"}, QUICK),
        ),
    ],
    ids=["job", "queue", "tenant", "correlation"],
)
def test_new_runs_appear_only_when_they_match(
    stack: Stack, pages: Pages, hash_: str, matching: tuple[Any, ...], other: tuple[Any, ...]
) -> None:
    page = open_runs(pages, hash_)
    outsider = stack.enqueue(other[0], other[1], **other[2])
    insider = stack.enqueue(matching[0], matching[1], **matching[2])
    # events arrive in order: by the time the second run is in, the first was turned away
    expect(row(page, insider)).to_be_visible()
    expect(row(page, outsider)).to_have_count(0)
    stack.wait_status(outsider["id"], "SUCCESS")
    if matching[1].get("queue") != "parked":  # no worker serves `parked`
        stack.wait_status(insider["id"], "SUCCESS", "FAILED")
        expect(row(page, insider).locator(".badge")).to_have_text(re.compile("SUCCESS|FAILED"))
    expect(row(page, outsider)).to_have_count(0)
    page.reload()  # what the server lists agrees with what the page kept
    expect(row(page, insider)).to_be_visible()
    expect(row(page, outsider)).to_have_count(0)
