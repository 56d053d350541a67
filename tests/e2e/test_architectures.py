"""The Architectures page in headless Chromium: it opens, and each experiment runs once."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import (
    ARTIFACTS,
    assert_no_exception,
    open_page,
    screenshot_whole_page,
    wait_for_app_run,
)


def test_architectures_page_and_experiments(app_url, page):
    # The app's entry (st.navigation) must run once first: on a fresh server a direct
    # /architectures request would otherwise get Streamlit's legacy pages/ mode.
    open_page(page, app_url)
    open_page(page, app_url, "architectures")
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Architectures").first.is_visible()
    # the overview table and the block diagram are drawn from the calculator, before any run
    assert page.locator("[data-testid='stDataFrame']").count() >= 2
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2
    metrics = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    assert "163,696" in metrics  # inception 3a with bottlenecks
    screenshot_whole_page(page, "architectures-top.png")

    for number in (1, 2, 3):
        button = page.get_by_role("button", name=f"Run experiment {number}")
        button.scroll_into_view_if_needed()
        button.click()
        # the experiment replaces its button once it has run (TensorFlow loads on the first)
        button.wait_for(state="detached", timeout=90_000)
        wait_for_app_run(page, timeout=90_000)
        assert_no_exception(page)
    metrics = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    assert "r = 1.000" in metrics  # conv maps move with the photo
    assert "0" in metrics          # max pooling has no parameters
    assert any(m.startswith("max |diff|") for m in metrics)
    page.locator("[data-testid='stPlotlyChart']").last.scroll_into_view_if_needed()
    screenshot_whole_page(page, "architectures-experiments.png")
    assert Path(ARTIFACTS / "architectures-experiments.png").exists()
