"""Presenter mode in headless Chromium at 1920x1080 (a projector's resolution): every page's
visible text is at least 24 px, every figure's at least 18 px, nothing raises, the sidebar
is collapsed, presenter mode survives a page switch, and the clicker's keys step through
Architectures. Screenshots: artifacts/e2e/present-<page>.png (what the projector shows)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS, assert_no_exception, open_page, wait_for_app_run

PROJECTOR = {"width": 1920, "height": 1080}
PAGES = ["", "architectures", "calculator", "train", "classify", "transfer"]

# The smallest computed font size of a visible text node in the main area (text inside
# figures is SVG, measured separately; a dataframe draws on a canvas).
SMALLEST_TEXT = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  let smallest = null;
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (!text || !el || el.closest('svg, canvas')) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width < 2 || box.height < 2) continue;
    const size = parseFloat(style.fontSize);
    if (!smallest || size < smallest.size) {
      const owner = el.closest('[data-testid]');
      smallest = {size, text: text.slice(0, 60), tag: el.tagName,
                  testid: owner ? owner.dataset.testid : null};
    }
  }
  return smallest;
}
"""
SMALLEST_FIGURE_TEXT = """
() => Math.min(Infinity, ...[...document.querySelectorAll(
  '[data-testid="stPlotlyChart"] svg text')]
  .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
  .map(t => parseFloat(getComputedStyle(t).fontSize)))
"""


@pytest.fixture
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    yield page
    context.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)   # the figures' last relayout
    page.screenshot(path=str(ARTIFACTS / name))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_readable_from_the_back_row(app_url, projector, path):
    open_page(projector, app_url)                   # the app's navigation runs first
    open_page(projector, app_url, f"{path}?present=1")
    assert_no_exception(projector)
    _shot(projector, f"present-{path or 'home'}.png")
    smallest = projector.evaluate(SMALLEST_TEXT)
    assert smallest is not None and smallest["size"] >= 24, smallest
    figure_text = projector.evaluate(SMALLEST_FIGURE_TEXT)
    assert figure_text >= 18, figure_text                     # Infinity: no figure
    assert projector.locator("[data-testid='stSidebar'][data-collapsed='true']").count() == 1
    assert "present=1" in projector.url


def test_presenter_mode_is_kept_across_page_switches_until_switched_off(app_url, projector):
    open_page(projector, app_url, "?present=1")
    projector.locator("[data-testid='stPageLink'] a", has_text="Calculator").first.click()
    projector.wait_for_url(re.compile(r"/calculator\?.*present=1"), timeout=30_000)
    wait_for_app_run(projector)
    assert_no_exception(projector)
    assert projector.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"
    # the sidebar's toggle switches it off: normal type, no present=1
    projector.locator("[data-testid='stExpandSidebarButton']").click()
    projector.locator("[data-testid='stSidebar'] [data-testid='stCheckbox'] label",
                      has_text="Presenter mode").click()
    projector.wait_for_function("getComputedStyle(document.documentElement).fontSize === '16px'",
                                timeout=30_000)
    wait_for_app_run(projector)
    assert "present=1" not in projector.url


def test_the_clickers_keys_step_through_architectures(app_url, projector):
    open_walk(projector, app_url, "architectures?present=1&step=1", "Four networks")
    press_through(projector, (("ArrowRight", 2, "LeNet-5 (1998)"),
                              ("Space", 3, "AlexNet (2012)"),
                              ("PageDown", 4, "GoogLeNet (2014)"),
                              ("ArrowLeft", 3, "AlexNet (2012)"),
                              ("PageUp", 2, "LeNet-5 (1998)")))
    assert_no_exception(projector)
    _shot(projector, "present-architectures-step2.png")


def open_walk(projector, app_url: str, path: str, heading: str) -> None:
    """Open the app, then `path` (a walk's first step): no exception, its heading shown, and
    a moment for the shortcuts' component to bind the keys."""
    open_page(projector, app_url)
    open_page(projector, app_url, path)
    assert_no_exception(projector)
    assert projector.get_by_role("heading", name=heading).first.is_visible()
    projector.wait_for_timeout(500)


def press_through(projector, presses) -> None:
    """Press each (key, step, heading): the URL's step follows and the step's heading shows."""
    for key, step, heading in presses:
        projector.keyboard.press(key)
        projector.wait_for_url(re.compile(rf"[?&]step={step}(&|$)"), timeout=30_000)
        wait_for_app_run(projector)
        assert projector.get_by_role("heading", name=heading).first.is_visible(), key


def test_the_clickers_keys_step_through_train(app_url, projector):
    open_walk(projector, app_url, "train?present=1&step=1", "The network and the data")
    press_through(projector, (("ArrowRight", 2, "Training, live"),
                              ("PageDown", 3, "What the first layer learned"),
                              ("ArrowLeft", 2, "Training, live"),
                              ("ArrowRight", 3, "What the first layer learned")))
    assert projector.get_by_text("No finished run yet").first.is_visible()   # no run: one line
    assert_no_exception(projector)
    _shot(projector, "present-train-step3.png")


def test_the_clickers_keys_step_through_classify(app_url, projector):
    open_walk(projector, app_url, "classify?present=1&step=1&samples=chelsea", "The photo, and the square")
    assert projector.get_by_text("the square is the centre crop").first.is_visible()
    press_through(projector, (("ArrowRight", 2, "What the network says"),))
    assert projector.get_by_text("No model yet").first.is_visible()   # no weights: one line
    assert "samples=chelsea" in projector.url
    assert_no_exception(projector)
