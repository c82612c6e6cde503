"""The Logs page in a real browser: application logs and audit events written by a
`JobGlass` app on the stack's database, listed newest first, filtered, and escaped."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from e2e_jobs import XSS
from e2e_stack import Pages, Stack

from jobglass import JobGlass

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def write_records(stack: Stack) -> None:
    """On a loop of its own thread: Playwright's sync API owns this thread's loop."""

    async def write() -> None:
        async with JobGlass(database_url=f"sqlite:///{stack.db}") as app:
            log = app.log.add_user("u-logs").with_context(area="e2e")
            log.add_correlation("corr-a").info("Users list accessed", {"page": 1})
            log.add_correlation("corr-a").warning("Slow upstream", {"durationMs": 1200})
            log.add_correlation("corr-b").error(XSS, {"html": XSS})
            log.add_correlation("corr-b").audit("post.created", "posts", {"postTitle": "Hi"})
            await app.log.flush()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result()


def messages(page: Any) -> list[str]:
    return page.locator(".logs-table tbody tr.clickable td.applog-msg").all_text_contents()


def test_browse_filter_and_escape_app_logs_and_audit(stack: Stack, pages: Pages) -> None:
    write_records(stack)
    page = pages.open(hash_="#/logs")
    expect(page.locator("nav a[data-route=logs]")).to_have_attribute("aria-current", "page")
    rows = page.locator(".logs-table tbody tr.clickable")
    expect(rows.filter(has_text="Users list accessed")).to_have_count(1)
    # newest first; the HTML-looking message is text, not an element
    assert messages(page)[:3] == [XSS, "Slow upstream", "Users list accessed"]
    assert page.locator(".logs-table img").count() == 0
    expect(rows.first.locator(".lvl")).to_have_text("error")

    # the correlation id links to the runs that share it
    link = rows.filter(has_text="Slow upstream").locator("a")
    expect(link).to_have_text("corr-a")
    assert link.get_attribute("href") == "#/runs?correlationId=corr-a"

    # click (or Enter) shows the full record with its context
    rows.filter(has_text="Users list accessed").click()
    expect(page.locator("tr.applog-context pre")).to_contain_text('"page": 1')
    expect(page.locator("tr.applog-context pre")).to_contain_text('"area": "e2e"')
    rows.filter(has_text="Users list accessed").click()
    expect(page.locator("tr.applog-context")).to_have_count(0)
    rows.filter(has_text="Slow upstream").focus()
    page.keyboard.press("Enter")
    expect(page.locator("tr.applog-context pre")).to_contain_text('"durationMs": 1200')

    # filtering by correlation id narrows the list, and lives in the hash
    page.fill("#lf-correlation", "corr-a")
    expect(rows).to_have_count(2)
    assert sorted(messages(page)) == ["Slow upstream", "Users list accessed"]
    assert "correlationId=corr-a" in page.url
    page.select_option("#lf-level", "warning")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Slow upstream")

    # audit events: the level filter goes away, the correlation filter stays
    page.get_by_role("button", name="Audit events").click()
    expect(page.locator("#lf-level")).to_be_hidden()
    expect(page.locator("text=No audit events match")).to_be_visible()
    page.fill("#lf-correlation", "")
    audit = rows.filter(has_text="post.created")
    expect(audit).to_have_count(1)
    expect(audit).to_contain_text("posts")
    expect(audit).to_contain_text("u-logs")
    assert "kind=audit" in page.url
    page.fill("#lf-action", "post.deleted")
    expect(rows).to_have_count(0)
    page.fill("#lf-action", "post.created")
    expect(rows).to_have_count(1)
    rows.first.click()
    expect(page.locator("tr.applog-context pre")).to_contain_text('"postTitle": "Hi"')

    # a reload of the bookmarked hash restores the view
    page.reload()
    expect(page.get_by_role("button", name="Audit events")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#lf-action")).to_have_value("post.created")
    expect(rows).to_have_count(1)
    assert not pages.dialogs, f"a dialog opened: {pages.dialogs}"


def test_load_older_pages_back_with_the_cursor(stack: Stack, pages: Pages) -> None:
    async def write() -> None:
        async with JobGlass(database_url=f"sqlite:///{stack.db}") as app:
            log = app.log.add_correlation("corr-many")
            for n in range(130):
                log.info(f"Line {n}")
            await app.log.flush()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result()
    page = pages.open(hash_="#/logs?correlationId=corr-many")
    rows = page.locator(".logs-table tbody tr.clickable")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text("Line 129")
    page.get_by_role("button", name="Load older").click()
    expect(rows).to_have_count(130)
    expect(rows.last).to_contain_text("Line 0")
    expect(page.get_by_role("button", name="Load older")).to_be_hidden()
