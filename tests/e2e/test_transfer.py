"""Transfer page in a real browser: upload a zip of class folders, train one epoch in fast
mode, see the live curve and the test accuracy."""

from __future__ import annotations

import re

from cnnlab.transfer.archive import demo_archive
from tests.e2e.conftest import assert_no_exception, open_page, wait_for_app_run


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` (typing opens and filters the list)."""
    wait_for_app_run(page)
    page.locator("[data-testid='stSelectbox']", has_text=label).click()
    page.keyboard.type(option)
    page.locator("[role='option']").get_by_text(option, exact=True).click()
    wait_for_app_run(page)


def test_upload_train_fast_see_curve_and_accuracy(app_url, page):
    open_page(page, app_url, "transfer")
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Transfer learning").is_visible()

    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone']").click()
    chooser.value.set_files(files=[{"name": "pets.zip", "mimeType": "application/zip",
                                    "buffer": demo_archive(per_class=8, size=80, seed=3)}])
    page.get_by_text("Skipped files").wait_for(timeout=60_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    metrics = page.locator("[data-testid='stMetric']")
    assert metrics.filter(has_text="Classes").inner_text().split()[-1] == "3"
    assert page.get_by_text("Class 'cat' has only 8 images").is_visible()

    page.get_by_role("heading", name="1. Your classes").scroll_into_view_if_needed()
    page.screenshot(path="artifacts/e2e/transfer-classes.png")
    # The augmentation preview: the original and five augmented versions per class.
    page.locator("[data-testid='stCheckbox']", has_text="Preview augmented samples").click()
    preview = page.locator("[data-testid='stImage']", has_text="augmented versions")
    preview.wait_for(timeout=60_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    page.get_by_role("heading", name="3. Augmentation").scroll_into_view_if_needed()
    page.screenshot(path="artifacts/e2e/transfer-augmentation.png")

    choose(page, "Image size", "75")
    choose(page, "Batch size", "8")
    epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
    epochs.fill("1")
    epochs.press("Enter")
    wait_for_app_run(page)
    page.screenshot(path="artifacts/e2e/transfer-data.png", full_page=True)

    page.locator("[data-testid='stBaseButton-primary']", has_text="Train").click()
    accuracy = page.locator("[data-testid='stMetric']", has_text="Test accuracy")
    accuracy.wait_for(timeout=150_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    value = accuracy.locator("[data-testid='stMetricValue']").inner_text()
    assert re.fullmatch(r"\d{1,3}\.\d%", value), value
    # The live curve (the Train page's chart) was drawn for the run's epoch.
    assert page.locator("[data-testid='stPlotlyChart']").filter(has_text="Loss").count() >= 1
    assert page.get_by_text("faster").first.is_visible()
    # Streamlit scrolls inside its main container: one screenshot per part of the page.
    for name, heading in (("train", "5. Train"), ("results", "6. How well does it classify?"),
                          ("keep", "7. Keep it")):
        page.get_by_role("heading", name=heading).scroll_into_view_if_needed()
        page.screenshot(path=f"artifacts/e2e/transfer-{name}.png")
