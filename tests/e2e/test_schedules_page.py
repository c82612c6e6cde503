"""The Schedules page in a real browser, with a `jobglass scheduler` process firing
`e2e-tick` (every 3 s): next and last fire, the last run, pause, resume and trigger now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_stack import Pages, Stack

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLOCK = re.compile(r"\d\d:\d\d:\d\d")
NAME = "e2e-tick"


@pytest.fixture(scope="module")
def scheduled(stack: Stack) -> Iterator[Stack]:
    stack.start_scheduler()
    yield stack


def schedule(stack: Stack) -> dict[str, Any]:
    found: dict[str, Any] = next(
        s for s in stack.get("/schedules")["schedules"] if s["name"] == NAME
    )
    return found


def test_fires_pause_resume_and_trigger_now(scheduled: Stack, pages: Pages) -> None:
    stack = scheduled
    page = pages.open(hash_="#/schedules")
    row = page.locator("tbody tr", has_text=NAME)
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text("tick")
    expect(cells.nth(2)).to_contain_text("every 3s")
    expect(cells.nth(3)).to_have_text("ACTIVE")
    expect(cells.nth(4)).to_contain_text(CLOCK)  # next fire: a time, and how soon
    expect(cells.nth(4).locator(".muted")).to_have_text(re.compile(r"^(in \d+(ms|s)|just now)$"))
    # the scheduler fires: last fire and the run it started appear without a reload
    expect(cells.nth(5)).to_contain_text(CLOCK, timeout=20_000)
    expect(cells.nth(5).locator(".muted")).to_have_text(re.compile(r"ago$|^just now$"))
    last_run = cells.nth(6).get_by_role("link")
    expect(last_run).to_have_text(re.compile(r"^#\d+$"))
    expect(cells.nth(6).locator(".badge")).to_have_text(re.compile("QUEUED|RUNNING|SUCCESS"))
    fired = stack.run(last_run.text_content().lstrip("#"))  # type: ignore[union-attr]
    assert fired["jobName"] == "tick" and fired["scheduleName"] == NAME
    assert fired["trigger"] == "SCHEDULE"

    row.get_by_role("button", name="Pause").click()
    expect(cells.nth(3)).to_have_text("PAUSED")
    expect(cells.nth(4)).to_have_text("—")  # no next fire while paused
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.locator(".notice")).to_have_text(f"{NAME} paused.")
    assert schedule(stack)["paused"] is True

    row.get_by_role("button", name="Resume").click()
    expect(cells.nth(3)).to_have_text("ACTIVE")
    expect(cells.nth(4)).to_contain_text(CLOCK)
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    assert schedule(stack)["paused"] is False

    row.get_by_role("button", name="Trigger now").click()
    notice = page.locator(".notice")
    expect(notice).to_contain_text(f"Triggered {NAME}: run #")
    link = notice.get_by_role("link")
    run_id = (link.text_content() or "").removeprefix("run #")
    triggered = stack.run(run_id)
    assert triggered["trigger"] == "MANUAL" and triggered["scheduleName"] == NAME
    link.click()
    expect(page).to_have_url(re.compile(rf"#/runs/{run_id}$"))
    expect(page.locator(".page-head .badge")).to_have_text("SUCCESS")


def test_a_viewer_sees_the_schedules_without_their_buttons(scheduled: Stack, pages: Pages) -> None:
    page = pages.open(scheduled.viewer_token, "#/schedules")
    row = page.locator("tbody tr", has_text=NAME)
    expect(row.locator("td").nth(3)).to_have_text(re.compile("ACTIVE|PAUSED"))
    expect(page.locator("#role")).to_contain_text("viewer")
    expect(page.get_by_role("button", name=re.compile("Pause|Resume|Trigger now"))).to_have_count(0)
