"""Real-browser tests: headless Debian Chromium (driven by Playwright) against
`streamlit run app.py` started by the tests on a free port.

Each page's suite is one file here, `test_<page>.py`. Use the `app_url` fixture for the
default server, or `start_app_server(env=...)` for a server with extra environment.
Screenshots of failed tests land in artifacts/e2e/.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "artifacts" / "e2e"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_app_server(env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Start `streamlit run app.py` on a free port; yield its URL; stop it afterwards."""
    port = free_port()
    log = (ARTIFACTS / f"server-{port}.log")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited early; see {log}")
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                        if r.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not become healthy; see {log}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    with start_app_server() as url:
        yield url


@pytest.fixture(scope="session")
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


def wait_for_app_run(page, timeout: float = 60_000) -> None:
    """Wait until the script has finished running and no skeleton is left."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=timeout)
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
                           timeout=timeout)


def open_page(page, url: str, path: str = "", timeout: float = 60_000) -> None:
    """Open `url/path` (path as in the address bar, e.g. 'calculator') and wait for the run."""
    page.goto(f"{url}/{path}", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    # The script state attribute appears once the websocket is connected.
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state]", timeout=timeout)
    wait_for_app_run(page, timeout)


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
