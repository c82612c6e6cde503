"""The run page's log and timeline in a real browser: DEBUG lines on demand, follow-tail that
pauses when the user scrolls back and resumes, stage durations, the correlation id's links;
and the light and dark themes."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from e2e_stack import Pages, Stack

from jobglass import JobGlass

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AT_BOTTOM = "vp => vp.scrollTop + vp.clientHeight >= vp.scrollHeight - 2"


def messages(page: Any) -> list[str]:
    return page.locator(".log-row .log-msg").all_text_contents()


def test_debug_lines_are_hidden_by_default_and_shown_when_switched_on(
    stack: Stack, pages: Pages
) -> None:
    run = stack.enqueue("chatty", burst=40)
    stack.wait_status(run["id"], "SUCCESS")
    page = pages.open(hash_=f"#/runs/{run['id']}")
    log = page.locator(".log-row .log-msg")
    expect(log.filter(has_text=re.compile(r"^Burst line 40$"))).to_be_visible()
    expect(page.locator(".level-select")).to_have_value("info")
    expect(log.filter(has_text="Debug detail")).to_have_count(0)
    expect(page.locator(".log-row.level-debug")).to_have_count(0)
    levels = page.evaluate("jobglass.page.logLines().map(l => l.level)")
    assert "debug" not in levels and levels.count("info") >= 40

    page.select_option(".level-select", "debug")
    expect(log.filter(has_text=re.compile(r"^Debug detail 40$"))).to_be_visible()
    debug_row = page.locator(".log-row.level-debug").last
    expect(debug_row.locator(".lvl")).to_have_text("DEBUG")
    page.wait_for_function("jobglass.page.logLines().filter(l => l.level === 'debug').length === 8")
    order = page.evaluate("jobglass.page.logLines().map(l => l.message)")
    assert order.index("Debug detail 40") == order.index("Burst line 40") - 1

    page.select_option(".level-select", "info")
    expect(log.filter(has_text=re.compile(r"^Burst line 40$"))).to_be_visible()
    expect(page.locator(".log-row.level-debug")).to_have_count(0)


def test_follow_tail_pauses_when_scrolled_up_and_resumes(stack: Stack, pages: Pages) -> None:
    # 150 lines at once, then one line every 1.5 s while the test scrolls back
    run = stack.enqueue("chatty", burst=150, tail=30, pause_ms=1500)
    try:
        page = pages.open(hash_=f"#/runs/{run['id']}")
        viewport = page.locator(".log-viewport")
        follow = page.locator(".log-toolbar button")
        resume = page.locator(".log-frame .resume")
        expect(page.locator(".log-row .log-msg", has_text="Burst line 150")).to_be_visible()
        expect(follow).to_have_text("Pause")
        expect(follow).to_have_attribute("aria-pressed", "true")
        expect(resume).to_be_hidden()
        page.wait_for_function(f"({AT_BOTTOM})(document.querySelector('.log-viewport'))")

        viewport.hover()
        page.mouse.wheel(0, -1200)  # the user scrolls back: following stops
        expect(follow).to_have_text("Follow")
        expect(follow).to_have_attribute("aria-pressed", "false")
        expect(resume).to_be_visible()
        # new lines are counted, not scrolled to; one line is "line"
        expect(resume).to_have_text("1 new line · Follow")
        expect(resume).to_have_text(re.compile(r"^[2-9] new lines · Follow$"))
        assert not viewport.evaluate(AT_BOTTOM), "the view moved to the tail while paused"
        expect(page.locator(".log-row .log-msg", has_text="Tail line 2")).to_have_count(0)

        resume.click()
        expect(resume).to_be_hidden()
        expect(follow).to_have_text("Pause")
        page.wait_for_function(f"({AT_BOTTOM})(document.querySelector('.log-viewport'))")
        expect(page.locator(".log-row .log-msg", has_text="Tail line 2")).to_be_visible()

        # Pause (the button) stops following too; End resumes from the keyboard
        follow.click()
        expect(resume).to_be_visible()
        expect(resume).to_have_text(re.compile(r"^1 new line · Follow$"))
        viewport.focus()
        page.keyboard.press("End")
        expect(resume).to_be_hidden()
        expect(follow).to_have_text("Pause")
    finally:
        stack.post(f"/jobs/{run['id']}/cancel")


def test_the_stage_timeline_shows_how_long_each_stage_took(stack: Stack, pages: Pages) -> None:
    run = stack.enqueue("stepper", steps=30, pause_ms=100)
    page = pages.open(hash_=f"#/runs/{run['id']}")
    stages = page.locator(".timeline li")
    # live: the current stage counts up
    expect(stages.filter(has_text="Crunching numbers").locator(".dur")).to_have_text(
        re.compile(r"so far$")
    )
    expect(page.locator(".timeline li.current")).to_contain_text("Crunching numbers")
    expect(page.locator(".page-head .badge")).to_have_text("SUCCESS", timeout=30_000)

    expect(stages).to_have_count(3)
    # the last stage ends at the run's end (read once the final status is in)
    expect(stages.nth(2).locator(".dur")).to_have_text(re.compile(r"^\d+ms$"))
    names = page.locator(".timeline li > div > div:first-child").all_text_contents()
    assert names == ["Preparing", "Crunching numbers", "Finalizing"]
    durations = stages.locator(".dur").all_text_contents()
    assert not any("so far" in d for d in durations), durations
    # Preparing sleeps 0.2 s; Crunching 30 x 0.1 s; Finalizing writes one line
    first = re.fullmatch(r"(\d+)(ms|s)", durations[0])  # seconds only on a very busy machine
    assert first, durations
    assert 150 <= int(first.group(1)) * (1 if first.group(2) == "ms" else 1000) < 10_000
    assert re.fullmatch(r"\d+s", durations[1]) and 3 <= int(durations[1][:-1]) < 20, durations
    assert re.fullmatch(r"\d+ms", durations[2]), durations
    expect(stages.nth(0).locator(".muted")).to_contain_text("started ")


def write_app_log(stack: Stack, correlation: str, message: str) -> None:
    async def write() -> None:
        async with JobGlass(database_url=f"sqlite:///{stack.db}") as app:
            app.log.add_correlation(correlation).info(message)
            await app.log.flush()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        pool.submit(asyncio.run, write()).result()


def test_the_correlation_id_links_to_its_runs_and_its_logs(stack: Stack, pages: Pages) -> None:
    corr = "corr-e2e-detail"
    write_app_log(stack, corr, "Request that started the run")
    run = stack.enqueue("stepper", {"correlationId": corr}, steps=2, pause_ms=10)
    other = stack.enqueue("fails-once", {"correlationId": corr})
    stack.wait_status(run["id"], "SUCCESS")
    page = pages.open(hash_=f"#/runs/{run['id']}")
    label = page.locator("dl.facts dt", has_text="Correlation id")
    fact = label.locator("xpath=following-sibling::dd[1]")
    runs_link = fact.get_by_role("link", name=corr)
    logs_link = fact.get_by_role("link", name="logs")
    expect(runs_link).to_have_attribute("href", f"#/runs?correlationId={corr}")
    expect(logs_link).to_have_attribute("href", f"#/logs?correlationId={corr}")

    logs_link.click()
    expect(page.locator("nav a[data-route=logs]")).to_have_attribute("aria-current", "page")
    expect(page.locator("#lf-correlation")).to_have_value(corr)
    rows = page.locator(".logs-table tbody tr.clickable")
    expect(rows.filter(has_text="Request that started the run")).to_have_count(1)
    expect(rows.filter(has_not_text=corr)).to_have_count(0)  # only this correlation id

    page.go_back()
    expect(page.locator(".page-head h1")).to_contain_text(f"Run #{run['id']}")
    page.locator("dl.facts").get_by_role("link", name=corr).click()
    expect(page.locator("#f-correlation")).to_have_value(corr)
    for shared in (run, other):
        expect(page.locator(f"tr[data-run-id='{shared['id']}']")).to_be_visible()
    expect(page.locator("table.runs-table tbody tr")).to_have_count(2)


def background(page: Any) -> tuple[int, ...]:
    color = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return tuple(int(v) for v in re.findall(r"\d+", color)[:3])


def test_the_theme_toggle_switches_light_and_dark(stack: Stack, pages: Pages) -> None:
    page = pages.open(color_scheme="light")
    expect(page.locator(".table-foot")).to_contain_text("runs shown")
    toggle = page.locator("#theme")
    light = background(page)
    expect(toggle).to_have_text("☾ Dark")
    assert sum(light) > 600, f"a light page has a light background, not {light}"

    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_text("☀ Light")
    dark = background(page)
    assert sum(dark) < 150 and dark != light, f"dark background {dark} (light was {light})"
    text = page.evaluate("getComputedStyle(document.body).color")
    assert sum(int(v) for v in re.findall(r"\d+", text)[:3]) > 600, f"dark theme text {text}"

    page.reload()  # the choice is remembered
    expect(page.locator(".table-foot")).to_contain_text("runs shown")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == dark
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background(page) == light

    # without a choice the page follows the system's scheme
    system_dark = pages.open(color_scheme="dark")
    expect(system_dark.locator(".table-foot")).to_contain_text("runs shown")
    assert background(system_dark) == dark
    expect(system_dark.locator("#theme")).to_have_text("☀ Light")
