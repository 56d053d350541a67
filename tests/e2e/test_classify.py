"""The Classify page in headless Chromium, served with the test weights file: upload a
photo and see the chart and the Grad-CAM; upload a broken file and see its message."""

from __future__ import annotations

import pytest

from cnnlab.vision import images, inception
from tests.e2e.conftest import (
    assert_no_exception,
    open_page,
    screenshot_whole_page,
    start_app_server,
    wait_for_app_run,
)


@pytest.fixture(scope="module")
def classify_url(inception_weights):
    with start_app_server(env={inception.ENV_WEIGHTS: str(inception_weights)}) as url:
        yield url


def _upload(page, files: list[tuple[str, bytes, str]]) -> None:
    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone']").first.click()
    chooser.value.set_files(files=[{"name": n, "mimeType": m, "buffer": b} for n, b, m in files])
    page.wait_for_timeout(500)
    wait_for_app_run(page, timeout=120_000)


def test_upload_photo_then_broken_file(classify_url, page):
    open_page(page, classify_url)  # the entry runs st.navigation first
    open_page(page, classify_url, "classify")
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Classify").first.is_visible()
    assert page.get_by_text("20 MB per file").first.is_visible()

    _upload(page, [("chelsea.jpg", images.sample_photo_bytes("chelsea"), "image/jpeg")])
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=120_000)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="chelsea.jpg").first.is_visible()
    # the chart's bars are the top-5 classes, probability labels included
    assert page.locator("[data-testid='stPlotlyChart'] .bars .point").count() == 5
    assert page.locator("[data-testid='stImage'] img").count() == 2  # network view + Grad-CAM
    assert page.get_by_text("ms to preprocess, predict").first.is_visible()
    screenshot_whole_page(page, "classify-photo.png", max_height=6000)

    broken = images.sample_photo_bytes("coffee", "PNG")[:3000]
    _upload(page, [("broken.png", broken, "image/png")])
    alert = page.locator("[data-testid='stAlertContentError']")
    alert.first.wait_for(timeout=60_000)
    assert "broken.png: truncated or corrupt image data" in \
        alert.first.inner_text().replace("\u2060", "")   # plain() keeps autolinks off
    assert_no_exception(page)
    # the good photo is still classified next to the bad file's message
    assert page.locator("[data-testid='stPlotlyChart']").count() == 1
    screenshot_whole_page(page, "classify-broken.png", max_height=6000)
