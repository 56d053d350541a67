"""A recorded run replayed in a real browser: `train?replay=NAME` draws the curve, the batch
scrubber moves the filters and the confusion matrix, Play advances it, and the server that
served it never imported TensorFlow."""

from __future__ import annotations

import time

import pytest

from cnnlab import serving
from tests.e2e.conftest import ARTIFACTS, assert_no_exception, open_page, wait_for_app_run


@pytest.fixture(scope="module")
def server():
    # The warm-up would import TensorFlow in the background: off, to see the replay's own.
    env = {"CNNLAB_OFFLINE": "1", "CNNLAB_WARMUP": "0"}
    with serving.start_app_server(env, log=ARTIFACTS / f"server-replay-{time.time_ns()}.log") as s:
        yield s


def figure(page, key: str) -> dict:
    """The data behind a keyed Plotly chart: its first trace's x and z."""
    return page.evaluate(
        """(key) => {
            const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
            if (!plot || !plot.data) return null;
            const t = plot.data[0];
            return {x: t.x ? Array.from(t.x).length : 0, z: JSON.stringify(t.z || null)};
        }""", key)


def scrubber_value(page) -> int:
    return int(page.locator(".st-key-replay_step input[type='range']").input_value())


def test_replay_scrub_and_play_without_tensorflow(server, page):
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_page(page, server.url, "train?replay=fashion-mnist-cnn")
    assert_no_exception(page)
    page.locator(".st-key-replay_chart .js-plotly-plot").wait_for(timeout=60_000)
    start = {key: figure(page, key) for key in ("replay_chart", "replay_filters",
                                                "replay_confusion")}
    assert start["replay_chart"]["x"] == 1 and scrubber_value(page) == 1
    assert "Debian" in page.get_by_text("Recorded run fashion-mnist-cnn").inner_text()

    thumb = page.locator(".st-key-replay_step input[type='range']")
    thumb.focus()
    thumb.press("End")                     # the scrubber to the last batch
    page.wait_for_function(
        """(n) => { const p = document.querySelector('.st-key-replay_chart .js-plotly-plot');
                    return p && p.data && p.data[0].x.length > n; }""", arg=1, timeout=60_000)
    wait_for_app_run(page)
    end = {key: figure(page, key) for key in start}
    assert end["replay_chart"]["x"] > 1000
    assert end["replay_filters"]["z"] != start["replay_filters"]["z"]
    assert end["replay_confusion"]["z"] != start["replay_confusion"]["z"]
    assert page.get_by_text("Test accuracy", exact=False).count() >= 1
    page.screenshot(path=str(ARTIFACTS / "train-replay-end.png"))

    thumb.focus()
    thumb.press("Home")
    wait_for_app_run(page)
    page.locator(".st-key-replay_play button").click()
    deadline = time.monotonic() + 30
    while scrubber_value(page) < 50:
        assert time.monotonic() < deadline, "the replay did not advance"
        page.wait_for_timeout(250)
    assert_no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "train-replay-playing.png"))
    assert server.tensorflow_loaded() is False


def test_replay_picker_opens_a_shipped_run(server, page):
    open_page(page, server.url, "train")
    page.get_by_text("Replay a recorded run").click()
    page.locator(".st-key-replay_open_mnist-sample-dense button").click()
    page.locator(".st-key-replay_filters .js-plotly-plot").wait_for(timeout=60_000)
    assert "replay=mnist-sample-dense" in page.url
    assert page.get_by_text("hidden units' weights", exact=False).count() == 1
    page.get_by_role("button", name="Close the replay").click()
    # The live page comes back and the link no longer names the recording.
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
    page.wait_for_function("() => !window.location.search.includes('replay=')",
                           timeout=30_000)
    wait_for_app_run(page)
    assert "replay=" not in page.url
    assert server.tensorflow_loaded() is False
