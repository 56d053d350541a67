"""Real-browser tests: headless Debian Chromium (driven by Playwright) against
`streamlit run app.py` started by the tests on a free port.

Each page's suite is one file here, `test_<page>.py`. Use the `app_url` fixture for the
default server, or `start_app_server(env=...)` for a server with extra environment.
Screenshots of failed tests land in artifacts/e2e/.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab import serving
from cnnlab.serving import CHROMIUM, CHROMIUM_ARGS, free_port, open_page, wait_for_app_run  # noqa: F401 (shared with the e2e tests)
from tests import ROOT

ARTIFACTS = ROOT / "artifacts" / "e2e"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@contextlib.contextmanager
def start_app_server(env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Start the app as `make run` does on a free port; yield its URL; stop it afterwards.
    Its log is artifacts/e2e/server-<time>.log."""
    with serving.start_app_server(env, timeout=timeout,
                                  log=ARTIFACTS / f"server-{time.time_ns()}.log") as server:
        yield server.url


# Package scope, not session: the server and Playwright's sync loop end with tests/e2e,
# so the tests after it can run their own asyncio loops (asyncio.run, sync_playwright).
@pytest.fixture(scope="package")
def app_url() -> Iterator[str]:
    with start_app_server() as url:
        yield url


@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def assert_no_exception(page) -> None:
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def screenshot_whole_page(page, name: str, max_height: int = 12000) -> None:
    """Save artifacts/e2e/<name> with the whole page. Streamlit scrolls inside its own
    container, so the viewport is made as tall as the page, then restored. Waits until
    every st.image picture (fetched after the run) has loaded."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("[...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)", timeout=30_000)
    height = page.evaluate(
        "document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, max_height)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size({"width": 1400, "height": 1000})
