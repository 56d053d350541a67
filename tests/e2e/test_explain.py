"""The explanation lab in headless Chromium.

Classify, offline with the UNTRAINED network (no weights on the server): a sample photo,
"Explain", and every method's map with its time, the untrained warning, and every method's
deletion and insertion curves and areas. Score-CAM runs on the 16 most active channels
(CNNLAB_SCORECAM_CHANNELS=16) and the other methods as quick explanations
(CNNLAB_EXPLAIN_QUICK=1) to keep the test short; the page says both.

Train, offline sample: a 1-epoch run, then a test digit explained with its sanity check
(the whole network re-drawn) and the feature-visualization grid of every first- and
second-layer filter and every class.

Screenshots: artifacts/e2e/explain-*.png.
"""

from __future__ import annotations

import re

import pytest

from cnnlab.vision import inception
from cnnlab.vision.explain import METHODS
from cnnlab.vision.explain.lab import QUICK_OPTIONS
from tests.e2e.conftest import (
    assert_no_exception,
    open_page,
    screenshot_whole_page,
    start_app_server,
    wait_for_app_run,
)
from tests.e2e.train_page import set_small_network

LABELS = list(METHODS.values())
LONG = 600_000     # ms: all methods on Inception v3 on a shared 2-core CPU take minutes


@pytest.fixture(scope="module")
def untrained_url(tmp_path_factory):
    empty_cache = tmp_path_factory.mktemp("keras_home")  # no weights here: offline, untrained
    env = {"KERAS_HOME": str(empty_cache), inception.ENV_WEIGHTS: "",
           "CNNLAB_SCORECAM_CHANNELS": "16", "CNNLAB_EXPLAIN_QUICK": "1", "CNNLAB_OFFLINE": "1"}
    with start_app_server(env=env) as url:
        yield url


def faithfulness_traces(page) -> list[dict]:
    """Name and points (as Plotly drew them: its calcdata) of every trace of the deletion /
    insertion figure."""
    return page.evaluate(
        """() => {
            for (const plot of document.querySelectorAll("[data-testid='stPlotlyChart'] .js-plotly-plot")) {
                const text = (plot.layout.annotations || []).map(a => a.text).join(" ");
                if (text.includes("Deletion")) {
                    return plot.data.map((t, i) => ({name: t.name, x: plot.calcdata[i].length,
                                                     y: plot.calcdata[i].map(p => p.y)}));
                }
            }
            return [];
        }"""
    )


def test_classify_untrained_explains_a_photo_with_every_method(untrained_url, page):
    open_page(page, untrained_url)
    open_page(page, untrained_url, "classify")
    assert_no_exception(page)
    page.get_by_text("Show the pipeline with an UNTRAINED network").click()
    wait_for_app_run(page)
    page.get_by_role("button", name="Chelsea the cat").click()
    page.get_by_role("heading", name="Chelsea the cat (scikit-image)").wait_for(timeout=300_000)
    wait_for_app_run(page, timeout=300_000)
    assert page.locator("[data-testid='stImage'] img").count() == 2  # nothing explained yet
    page.get_by_role("button", name="Explain: all methods").click()
    page.locator("[data-testid='stProgress']").first.wait_for(timeout=60_000)
    page.get_by_text("What each method computes").wait_for(timeout=LONG)
    wait_for_app_run(page, timeout=LONG)
    assert_no_exception(page)
    captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()
    for label in LABELS:
        timed = re.compile(re.escape(label) + r" · (\d+ ms|\d+\.\d s)")
        assert any(timed.fullmatch(c) for c in captions), (label, captions)
    assert page.locator("[data-testid='stImage'] img").count() == 2 + len(LABELS)
    assert page.get_by_text("UNTRAINED network: each map shows how a network with random "
                            "weights").is_visible()
    assert page.get_by_text("Score-CAM used the 16 most active of the layer's 2,048 "
                            "channels").is_visible()
    assert page.get_by_text("Quick explanations (CNNLAB_EXPLAIN_QUICK=1)").is_visible()
    assert page.locator("[data-testid='stDataFrame']").count() == 1
    traces = faithfulness_traces(page)
    assert len(traces) == 2 * len(LABELS)            # a deletion and an insertion curve each
    for label in LABELS:
        named = [t for t in traces if t["name"].startswith(f"{label} (")]
        points = QUICK_OPTIONS["faithfulness_steps"] + 1
        assert len(named) == 2 and all(t["x"] == points for t in named), label
    assert page.get_by_role("button", name="Explain: all methods").is_disabled()
    screenshot_whole_page(page, "explain-classify-untrained.png", max_height=8000)


def test_train_explains_a_digit_and_shows_the_feature_grid(untrained_url, page):
    open_page(page, untrained_url, "train")
    assert_no_exception(page)
    set_small_network(page, epochs=1)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("heading", name="Inside the trained network").wait_for(timeout=300_000)
    wait_for_app_run(page, timeout=120_000)
    assert_no_exception(page)

    page.get_by_role("button", name="Explain", exact=True).click()
    page.get_by_text("What each method computes").wait_for(timeout=LONG)
    wait_for_app_run(page, timeout=LONG)
    page.get_by_role("button", name="Sanity check", exact=True).click()
    page.get_by_text("The top blocks' weights are re-drawn").wait_for(timeout=LONG)
    wait_for_app_run(page, timeout=LONG)
    assert_no_exception(page)
    captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()
    for label in LABELS:
        assert any(c.startswith(f"{label} · ") for c in captions), label
    for block in ("output", "dense1", "conv2", "conv1"):
        assert sum(c.startswith(f"+ {block}: ρ = ") for c in captions) == len(LABELS)

    page.get_by_role("button", name="Visualize the features").click()
    page.get_by_text("steps of gradient ascent per layer").wait_for(timeout=LONG)
    wait_for_app_run(page, timeout=LONG)
    assert_no_exception(page)
    captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()
    assert [c for c in captions if c.startswith("filter ")] == (
        [f"filter {k}" for k in range(4)] + [f"filter {k}" for k in range(8)])
    assert all(str(k) in captions for k in range(10))        # one image per class
    page.get_by_text("filter 7", exact=True).scroll_into_view_if_needed()
    screenshot_whole_page(page, "explain-train.png", max_height=16000)
