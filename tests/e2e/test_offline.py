"""Offline means offline: no page makes the browser fetch anything from outside the server."""

from __future__ import annotations

from urllib.parse import urlparse

from tests.e2e.conftest import assert_no_exception, open_page

PAGES = ["", "architectures", "calculator", "train", "classify", "transfer"]


def test_no_page_requests_anything_outside_the_server(app_url, browser):
    origin = urlparse(app_url).netloc
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        for path in PAGES:
            open_page(page, app_url, path)
            assert_no_exception(page)
            page.wait_for_timeout(500)  # late requests: favicon, fonts, images
    finally:
        context.close()
    outside = sorted({url for url in requested
                      if urlparse(url).scheme in ("http", "https", "ws", "wss")
                      and urlparse(url).netloc != origin})
    assert len(requested) > 20, "the pages made no requests at all: the check saw nothing"
    assert outside == []
