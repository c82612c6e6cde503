"""The Job Manager in a real browser against a real server and a real worker process.

Seed 002, "Testing Your Integration": enqueue from the admin UI, watch stage, progress and
logs change live, several admins see the same updates; plus cancel/retry, roles, escaping
and recovery after the server restarts mid-run.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest
from e2e_jobs import XSS
from e2e_stack import VIEWER_KEY, Pages, Stack

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI=true, and says why
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_URL = re.compile(r"#/runs/(\d+)$")


def progress_of(page: Any, scope: str = ".progress-large") -> int:
    """The `current` of the `current / total` label (0 when there is none yet)."""
    text = page.locator(f"{scope} .progress-label").first.text_content() or ""
    match = re.match(r"([\d,]+)", text)
    return int(match.group(1).replace(",", "")) if match else 0


def wait_progress(page: Any, minimum: int, timeout: float = 20, scope: str = ".progress-large"):
    deadline = time.monotonic() + timeout
    while (value := progress_of(page, scope)) < minimum:
        assert time.monotonic() < deadline, f"progress stuck at {value}, expected >= {minimum}"
        time.sleep(0.1)
    return value


def visible_steps(page: Any) -> list[int]:
    texts = page.locator(".log-row .log-msg").all_text_contents()
    return [int(m.group(1)) for t in texts if (m := re.fullmatch(r"Step (\d+) done", t))]


def test_enqueue_from_the_form_and_watch_it_live(
    stack: Stack, pages: Pages, screenshot: Any
) -> None:
    page = pages.open(hash_="#/enqueue")
    expect(page.locator("#e-job")).to_be_visible()
    assert "token=" not in page.url, "?token= must leave the address bar after sign-in"
    assert page.evaluate("sessionStorage.getItem('jobglass.token')") == stack.admin_token

    page.select_option("#e-job", "stepper")
    page.fill("#p-steps", "60")
    page.fill("#p-pause_ms", "120")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Enqueue").click()
    expect(page).to_have_url(RUN_URL)
    run_id = RUN_URL.search(page.url).group(1)  # type: ignore[union-attr]

    expect(page.locator(".stage-line")).to_have_text("Crunching numbers")
    expect(page.locator(".progress-large .progress-label")).to_contain_text("/ 60")
    first = wait_progress(page, 3)
    page.wait_for_function("document.querySelectorAll('.log-row').length > 3")
    steps_before = max(visible_steps(page), default=0)
    wait_progress(page, first + 10)
    expect(page.locator(".timeline li")).to_have_count(2)  # Preparing, Crunching numbers
    page.wait_for_function(
        "n => [...document.querySelectorAll('.log-row .log-msg')]"
        ".some(e => /^Step (\\d+) done$/.test(e.textContent) && +RegExp.$1 > n)",
        arg=steps_before + 5,
    )
    expect(page.locator(".stats-row")).to_contain_text("items/s")
    expect(page.locator(".stats-row")).to_contain_text("left")
    screenshot(page, "run-detail", full_page=True)

    expect(page.locator(".page-head .badge")).to_have_text("SUCCESS", timeout=30_000)
    expect(page.locator(".summary-line")).to_contain_text("Crunched: 60")
    expect(page.locator(".outcome.crunched .v")).to_have_text("60")
    expect(page.locator(".progress-large .progress-label")).to_contain_text("60 / 60")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert stack.run(run_id)["status"] == "SUCCESS"


def test_the_enqueue_form_applies_queue_priority_delay_and_job_id(
    stack: Stack, pages: Pages
) -> None:
    page = pages.open()
    page.get_by_role("link", name="Enqueue a job").click()  # admins get the button
    expect(page.locator("#e-job")).to_be_visible()
    expect(page.locator(".viewer-note")).to_be_hidden()
    page.select_option("#e-job", "stepper")
    expect(page.locator("#e-queue")).to_have_value("default")  # the job's own, prefilled
    page.fill("#p-steps", "3")
    page.fill("#e-queue", "parked")  # no worker serves it: the run waits, as set
    page.fill("#e-priority", "7")
    page.fill("#e-delay", "3600")
    page.fill("#e-jobid", "form-job-1")
    page.get_by_role("button", name="Enqueue").click()
    expect(page).to_have_url(RUN_URL)
    run_id = RUN_URL.search(page.url).group(1)  # type: ignore[union-attr]
    expect(page.locator(".page-head .badge")).to_have_text("QUEUED")

    run = stack.run(run_id)
    assert run["queue"] == "parked" and run["priority"] == 7 and run["jobId"] == "form-job-1"
    assert run["metadata"]["params"] == {"steps": 3}  # only what was changed is sent
    delay = datetime.fromisoformat(run["runAt"]) - datetime.fromisoformat(run["createdAt"])
    assert 3590 <= delay.total_seconds() <= 3610, delay
    facts = page.locator("dl.facts")
    for text in ("parked", "form-job-1", "Run at"):
        expect(facts).to_contain_text(text)

    # the same job id again: the live run comes back instead of a second one
    page.goto(stack.url("#/enqueue?job=stepper"))
    expect(page.locator("#e-job")).to_have_value("stepper")
    page.fill("#e-queue", "parked")
    page.fill("#e-jobid", "form-job-1")
    page.get_by_role("button", name="Enqueue").click()
    expect(page).to_have_url(re.compile(rf"#/runs/{run_id}$"))
    assert stack.post(f"/jobs/{run_id}/cancel").status_code == 200


def test_two_admins_see_the_same_updates(stack: Stack, pages: Pages, screenshot: Any) -> None:
    first, second = pages.open(), pages.open()
    for page in (first, second):
        expect(page.locator(".table-foot")).to_contain_text("runs shown")
    run = stack.enqueue("stepper", steps=30, pause_ms=100)
    rows = [p.locator(f"tr[data-run-id='{run['id']}']") for p in (first, second)]
    for row in rows:  # appears without a reload, then moves live
        expect(row).to_be_visible()
        expect(row.locator(".progress-label")).to_contain_text("/ 30")
    for page in (first, second):
        wait_progress(page, 5, scope=f"tr[data-run-id='{run['id']}']")
    foot = first.locator(".table-foot").bounding_box()  # the table, not the empty page below
    screenshot(first, "runs-table", clip={"x": 0, "y": 0, "width": 1400,
                                          "height": foot["y"] + foot["height"] + 24})  # fmt: skip
    for row in rows:
        expect(row.locator(".badge")).to_have_text("SUCCESS", timeout=30_000)
        expect(row.locator(".progress-label")).to_contain_text("30 / 30")

    run = stack.enqueue("stepper", steps=40, pause_ms=100)
    for page in (first, second):
        page.goto(stack.url(f"#/runs/{run['id']}"))
        expect(page.locator(".stage-line")).to_have_text("Crunching numbers")
    seen = [wait_progress(p, 10) for p in (first, second)]
    assert all(v < 40 for v in seen), "both pages saw the run while it was still moving"
    for page in (first, second):
        expect(page.locator(".page-head .badge")).to_have_text("SUCCESS", timeout=30_000)
        expect(page.locator(".summary-line")).to_contain_text("Crunched: 40")
    steps = [sorted(set(visible_steps(p))) for p in (first, second)]
    assert steps[0] == steps[1] and steps[0][-1] == 40


def test_cancel_and_retry_from_the_page(stack: Stack, pages: Pages) -> None:
    long_run = stack.enqueue("stepper", steps=500, pause_ms=100)
    page = pages.open(hash_=f"#/runs/{long_run['id']}")
    expect(page.locator(".stage-line")).to_have_text("Crunching numbers")
    wait_progress(page, 2)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".page-head .badge")).to_have_text("CANCELLED", timeout=15_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    assert stack.run(long_run["id"])["status"] == "CANCELLED"

    failing = stack.enqueue("fails-once")
    stack.wait_status(failing["id"], "FAILED")
    page.goto(stack.url(f"#/runs/{failing['id']}"))
    expect(page.locator(".page-head .badge")).to_have_text("FAILED")
    expect(page.locator("details.attempt")).to_contain_text("first attempt always fails")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".page-head .badge")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator(".log-row .log-msg", has_text="Worked on attempt 2")).to_be_visible()
    assert stack.run(failing["id"])["attempt"] == 2


def test_a_viewer_sees_no_admin_buttons_and_the_api_refuses_anyway(
    stack: Stack, pages: Pages
) -> None:
    failed = stack.enqueue("fails-once")
    stack.wait_status(failed["id"], "FAILED")
    page = pages.open(stack.viewer_token, f"#/runs/{failed['id']}")
    expect(page.locator(".page-head .badge")).to_have_text("FAILED")
    expect(page.locator("#role")).to_contain_text("viewer")
    for name in ("Retry", "Cancel", "Delete"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    page.goto(stack.url("#/enqueue"))
    expect(page.locator("#e-job")).to_be_visible()  # the form is there to read
    expect(page.get_by_role("button", name="Enqueue")).to_have_count(0)
    expect(page.locator(".viewer-note")).to_have_text("Read-only: viewer. Only admins can enqueue.")
    page.goto(stack.url("#/runs"))
    expect(page.locator(f"tr[data-run-id='{failed['id']}']")).to_be_visible()
    expect(page.get_by_role("link", name="Enqueue a job")).to_have_count(0)
    expect(page.locator("main").get_by_role("button")).to_have_text(["Clear filters"])

    viewer = stack.viewer_token
    assert stack.post(f"/jobs/{failed['id']}/retry", token=viewer).status_code == 403
    assert stack.post(f"/jobs/{failed['id']}/cancel", token=viewer).status_code == 403
    body = {"jobName": "stepper", "params": {}}
    assert stack.post("/jobs", body, token=viewer).status_code == 403
    deleted = stack.http.delete(f"/api/admin/jobs/{failed['id']}", headers=stack.headers(viewer))
    assert deleted.status_code == 403
    assert stack.run(failed["id"])["status"] == "FAILED"


def test_sign_in_with_an_api_key_and_out_again(stack: Stack, pages: Pages) -> None:
    page = pages.open("", "#/queues")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.fill("#token", "not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Not accepted")
    page.fill("#token", VIEWER_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queues", level=1)).to_be_visible()
    expect(page.locator("#role")).to_contain_text("viewer")
    expect(page.locator("#conn-text")).to_have_text("Live")
    expect(page.locator("text=default").first).to_be_visible()  # the worker's queue
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobglass.token')") is None


def test_markup_in_logs_params_stages_and_errors_is_shown_as_text(
    stack: Stack, pages: Pages
) -> None:
    run = stack.enqueue("xss", note=XSS)
    stack.wait_status(run["id"], "FAILED")
    page = pages.open(hash_=f"#/runs/{run['id']}")
    message = page.locator(".log-row .log-msg", has_text=re.compile(r"^<img"))
    expect(message.first).to_have_text(XSS)
    message.first.click()
    expect(page.locator(".log-detail pre")).to_contain_text(
        '"html": "<img src=x onerror=alert(1)>"'
    )
    expect(page.locator(".stage-line")).to_have_text(f"Stage {XSS}")
    expect(page.locator("details.attempt summary")).to_contain_text(f"boom {XSS}")
    expect(page.locator("pre.code").first).to_contain_text(XSS)
    page.goto(stack.url(f"#/runs?q={run['id']}"))
    page.goto(stack.url("#/runs?job=xss"))
    expect(page.locator(f"tr[data-run-id='{run['id']}'] td.stage")).to_have_text(f"Stage {XSS}")
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0
    assert pages.dialogs == []


def test_the_page_recovers_after_the_server_restarts_mid_run(stack: Stack, pages: Pages) -> None:
    run = stack.enqueue("stepper", steps=120, pause_ms=100)
    page = pages.open(hash_=f"#/runs/{run['id']}")
    expect(page.locator("#conn-text")).to_have_text("Live")
    before = wait_progress(page, 10)

    stack.kill_server()
    expect(page.locator("#conn-text")).to_have_text("Reconnecting…", timeout=15_000)
    time.sleep(1.5)  # the worker goes on; lines written now reach the page only by replay
    stack.start_server()
    expect(page.locator("#conn-text")).to_have_text("Live", timeout=20_000)
    wait_progress(page, before + 20)
    expect(page.locator(".page-head .badge")).to_have_text("SUCCESS", timeout=40_000)
    expect(page.locator(".progress-large .progress-label")).to_contain_text("120 / 120")

    lines = page.evaluate("jobglass.page.logLines().map(l => [l.seq, l.message])")
    seqs = [seq for seq, _ in lines]
    assert seqs == list(range(1, len(seqs) + 1)), "gap or duplicate in the log after restart"
    steps = [m for _, m in lines if m.startswith("Step ")]
    assert steps == [f"Step {i} done" for i in range(1, 121)]
