"""The calculator in a real browser: open a bookmarked preset, switch preset, change a
value and see the totals change, type a bad cell and see one error, never a traceback; a
hostile shared link (issue 15) renders nothing and fetches nothing off the server."""

from __future__ import annotations

import re

from tests import ROOT
from tests.e2e.conftest import assert_no_exception, open_page, wait_for_app_run

SHOTS = ROOT / "artifacts" / "e2e"
WORD_JOINER = "\u2060"


def metric_value(page, label: str) -> str:
    metric = page.locator("[data-testid='stMetric']", has_text=label).first
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def wait_for_metric(page, label: str, value: str) -> None:
    page.locator("[data-testid='stMetric']", has_text=label) \
        .filter(has_text=value).first.wait_for()
    wait_for_app_run(page)


def screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside the app, so grow the window for the shot."""
    page.set_viewport_size({"width": 1400, "height": 4200})
    wait_for_app_run(page)
    page.screenshot(path=str(SHOTS / name))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_calculator_in_the_browser(app_url, page):
    # A bookmarked link opens the same view.
    open_page(page, app_url, "calculator?preset=VGG16&gpu=8&dtype=mixed_float16")
    assert_no_exception(page)
    assert metric_value(page, "Parameters") == "138,357,544"
    screenshot(page, "calculator-vgg16.png")

    # Pick a preset: the seed exercise's numbers.
    page.locator("[data-testid='stSelectbox']", has_text="Preset").click()
    page.get_by_role("option", name="seed exercise").click()
    wait_for_metric(page, "Parameters", "903,400")
    assert metric_value(page, "Predict one instance") == "8.11 MB"  # 16-bit maps
    assert metric_value(page, "Train one batch of 50") == "313.45 MB"  # mixed_float16 kept
    assert page.locator("[data-testid='stPlotlyChart']").count() == 2
    assert_no_exception(page)
    screenshot(page, "calculator.png")

    # Change a value: the totals and the URL follow.
    batch = page.get_by_label("Batch size")
    batch.fill("10")
    batch.press("Enter")
    wait_for_metric(page, "Train one batch of 10", "MB")
    assert metric_value(page, "Train one batch of 10") == "74.25 MB"
    assert re.search(r"[?&]batch=10(&|$)", page.url), page.url
    assert_no_exception(page)

    # A bad cell: one error beside the table, no traceback. Glide data grid rows are 35 px:
    # click the "name" cell of row 2, walk right to "kernel", edit it. Only once the batch
    # change's run is over: a grid drawn again under the click lost it once (the editor
    # never opened, in one full `make test` at 2 workers; alone it passed).
    wait_for_app_run(page)
    box = page.locator("[data-testid='stDataFrame'] canvas").first.bounding_box()
    page.mouse.click(box["x"] + 60, box["y"] + 35 * 2 + 17)  # below the 35 px header
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # opens the cell editor, a textarea over the grid
    editor = page.locator("textarea.gdg-input")
    editor.wait_for()
    editor.fill("3y")
    editor.press("Enter")
    error = page.locator("[data-testid='stAlertContentError']").first
    error.wait_for()
    wait_for_app_run(page)
    # Shown through cnnlab.ui.safe.plain: invisible word joiners before colons.
    assert "layer 2 (conv2): kernel must be N or NxM of positive integers, got '3y'" in \
        error.inner_text().replace(WORD_JOINER, "")
    assert_no_exception(page)
    screenshot(page, "calculator-bad-cell.png")


def test_a_hostile_link_renders_nothing_and_fetches_nothing_outside(app_url, page):
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((app_url, "data:", "blob:"))
            else outside.append(r.url))
    open_page(page, app_url, "calculator?layer=![x](https:127.0.0.1:8599):8&input=8x8x3")
    assert_no_exception(page)
    error = page.locator("[data-testid='stAlertContentError']")
    assert error.count() == 1
    assert ("The link's configuration is not valid: layer 1 (![x](https:127.0.0.1:8599):8): "
            "unknown layer kind '![x](https'") in error.inner_text().replace(WORD_JOINER, "")
    main = page.locator("[data-testid='stMain']")
    assert main.locator("img[src*='8599']").count() == 0
    assert error.locator("img, a, .katex").count() == 0
    assert metric_value(page, "Parameters") == "903,400"  # the default opened instead
    page.wait_for_timeout(500)
    # Nothing the link carried is fetched. (The app's page icon, fetched from Google's font
    # server, is issue 15's "offline" item, not this link's doing.)
    assert [url for url in outside if "8599" in url or "127.0.0.1" in url] == []
