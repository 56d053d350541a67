"""Helpers for the Train page in the browser, shared by the e2e tests that train."""

from __future__ import annotations

from cnnlab.serving import wait_for_app_run


def live_points(page) -> int:
    """Points in the live loss curve, read from the Plotly figure in the page."""
    return page.evaluate(
        """() => {
            const plot = document.querySelector("[data-testid='stPlotlyChart'] .js-plotly-plot");
            return plot && plot.data ? plot.data[0].x.length : 0;
        }"""
    )


def set_number(page, label: str, value: int) -> None:
    """Type `value` into the number input labelled `label` and wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_app_run(page)


def set_small_network(page, epochs: int) -> None:
    """A small network (4 and 8 conv filters) trained for `epochs` epochs; the Train button
    is the caller's to click."""
    page.get_by_text("Network and optimizer").click()
    set_number(page, "Conv 1 filters", 4)
    set_number(page, "Conv 2 filters", 8)
    set_number(page, "Epochs", epochs)
