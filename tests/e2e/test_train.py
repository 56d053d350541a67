"""Train page in a real browser: start a short training on the offline MNIST sample, watch
the live chart gain points, stop it, and see the trained network's views."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import assert_no_exception, open_page, start_app_server, wait_for_app_run
from tests.e2e.train_page import live_points, set_small_network

SHOTS = "artifacts/e2e"


@pytest.fixture(scope="module")
def offline_url():
    # The offline sample, as in an air-gapped lecture hall: no download attempt.
    with start_app_server(env={"CNNLAB_OFFLINE": "1"}) as url:
        yield url


def test_train_watch_points_stop_and_look_inside(offline_url, page):
    open_page(page, offline_url, "train")
    assert_no_exception(page)
    assert "225,034" in page.locator("[data-testid='stMetricValue']").first.inner_text()
    set_small_network(page, epochs=30)
    page.screenshot(path=f"{SHOTS}/train-config.png", full_page=True)

    page.get_by_role("button", name="Train", exact=True).click()
    # The chart appears and gains points while Keras trains (redrawn twice a second).
    # (Generous limits: the first run in a server also imports TensorFlow.)
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
    deadline = time.monotonic() + 120
    while live_points(page) < 2:
        assert time.monotonic() < deadline, "the chart got no points"
        page.wait_for_timeout(200)
    first = live_points(page)
    deadline = time.monotonic() + 30
    while live_points(page) <= first:
        assert time.monotonic() < deadline, "the chart stopped gaining points"
        page.wait_for_timeout(200)
    progress = page.locator("[data-testid='stProgress']").first.inner_text()
    assert "training" in progress and "images/s" in progress and "ETA" in progress
    # The chart is redrawn twice a second, so scroll with the DOM, not a held locator.
    page.evaluate("document.querySelector(\"[data-testid='stPlotlyChart']\").scrollIntoView()")
    page.screenshot(path=f"{SHOTS}/train-live.png")

    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("stopped · epoch").first.wait_for(timeout=30_000)
    page.get_by_role("heading", name="Inside the trained network").wait_for(timeout=60_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    page.get_by_role("heading", name="Inside the trained network").scroll_into_view_if_needed()
    page.screenshot(path=f"{SHOTS}/train-after.png")

    # Confusion matrix: clicking a cell shows those test images.
    page.get_by_role("tab", name="Confusion matrix").click()
    chart = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".heatmaplayer")).last
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    # The diagonal cell (true 3, predicted 3): 10 columns and rows over the plot area.
    page.mouse.click(box["x"] + box["width"] * 3.5 / 10, box["y"] + box["height"] * 3.5 / 10)
    page.get_by_text("test images are 3 and were predicted 3").wait_for(timeout=30_000)
    page.screenshot(path=f"{SHOTS}/train-confusion.png")
    assert_no_exception(page)


def test_a_shared_link_is_watched_and_the_owner_keeps_control(offline_url, page, browser):
    """Issue 10: sharing a run is watching it. The owner's credential is a cookie, the URL
    names only the run: another browser opening the link sees the curve, labelled as
    someone else's run, without Stop; the owner refreshes and still has Stop."""
    open_page(page, offline_url, "train")
    set_small_network(page, epochs=200)  # still training while the watcher looks
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
    page.wait_for_function("location.search.includes('run=job-')", timeout=30_000)
    assert "owner=" not in page.url
    deadline = time.monotonic() + 30
    while not any(c["name"] == "cnnlab_owner" for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the owner cookie was never written"
        page.wait_for_timeout(200)
    link = page.url

    watcher_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        watcher = watcher_context.new_page()
        watcher.goto(link)
        wait_for_app_run(watcher)
        watcher.get_by_text("Someone else's run").first.wait_for(timeout=30_000)
        watcher.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=30_000)
        seen = live_points(watcher)
        deadline = time.monotonic() + 30
        while live_points(watcher) <= seen:          # the watched curve grows
            assert time.monotonic() < deadline, "the watcher's chart got no new points"
            watcher.wait_for_timeout(200)
        # (the page's own buttons: Streamlit's header shows a "Stop" while a script runs)
        main = watcher.get_by_test_id("stMainBlockContainer")
        assert main.get_by_role("button", name="Stop", exact=True).count() == 0
        assert main.get_by_role("button", name="Train", exact=True).is_enabled()
        assert_no_exception(watcher)
        watcher.screenshot(path=f"{SHOTS}/train-watcher.png")
    finally:
        watcher_context.close()

    # The owner refreshes (a new session): the cookie, not the URL, gives control back.
    page.reload()
    wait_for_app_run(page)
    stop = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop",
                                                                   exact=True)
    stop.wait_for(timeout=30_000)
    # Enabled within the wait: once in a full `make test` (2 workers) the first look after
    # the reload found it still disabled; alone it passed every time. Not explained yet.
    expect(stop).to_be_enabled(timeout=30_000)
    assert page.get_by_text("Someone else's run").count() == 0
    stop.click()
    page.get_by_text("stopped · epoch").first.wait_for(timeout=30_000)
    assert_no_exception(page)
