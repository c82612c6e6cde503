"""Browser fixtures: Debian's Chromium driven by Playwright, and the server/worker stack.

Without Playwright or Chromium the browser tests skip on a laptop and FAIL under `CI=true`:
in CI they must run. Set JOBGLASS_CHROMIUM to use another Chromium binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Pages, Stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {message}", pytrace=False)
    pytest.skip(f"browser tests skipped: {message}")


def chromium_path() -> str | None:
    configured = os.environ.get("JOBGLASS_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it
    is open, which would break later tests that call `asyncio.run`."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
        return
    path = chromium_path()
    if path is None:
        _unavailable("Chromium not found: `make browser` installs Debian's chromium")
        return
    with sync_playwright() as pw:
        try:
            instance = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except Exception as err:
            _unavailable(f"Chromium at {path} did not start: {err}")
            return
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("e2e"))
    try:
        s.start_server()
        s.start_worker()
        yield s
    finally:
        s.stop()


@pytest.fixture
def pages(browser: Any, stack: Stack) -> Iterator[Pages]:
    p = Pages(browser, stack)
    try:
        yield p
    finally:
        p.close()
    assert not p.errors, f"uncaught errors in the page: {p.errors}"


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    def take(page: Any, name: str, **options: Any) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), **options)
        return path

    return take
