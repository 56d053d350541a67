"""Issue 15 in a real browser: names a user chose (file names, class folders) reach the page
as text. No image from an outside address, no link, no KaTeX, no HTML from user text, and no
request leaves the server's origin."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlparse

from tests.e2e.conftest import assert_no_exception, open_page, wait_for_app_run
from tests.test_transfer import jpeg

IMAGE_LINK = "![x](https:127.0.0.1:8599)"
CLASSES = ["<b>bold", "$x^2$", "[a](http:evil)"]  # a folder name has no "/"


def watch_requests(page) -> list[str]:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    return requested


def assert_text_only(page, app_url: str, requested: list[str]) -> None:
    main = page.locator("[data-testid='stMain']")
    assert main.locator(".katex").count() == 0, "user text rendered as KaTeX"
    for img in main.locator("img").all():
        src = img.get_attribute("src") or ""
        assert not src.startswith(("http://127.0.0.1:8599", "https:")) and src != "x", src
    for link in main.locator("a").all():
        href = link.get_attribute("href") or ""
        assert "evil" not in href and "8599" not in href, href
    origin = urlparse(app_url).netloc
    outside = {u for u in requested if urlparse(u).scheme in ("http", "https")
               and urlparse(u).netloc != origin}
    assert outside == set()


def test_classify_file_names_are_text(app_url, page):
    requested = watch_requests(page)
    open_page(page, app_url, "classify")
    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone']").first.click()
    chooser.value.set_files(files=[
        {"name": f"{IMAGE_LINK}.png", "mimeType": "image/png", "buffer": b"not an image"},
        {"name": "<img src=x onerror=alert(1)>.png", "mimeType": "image/png", "buffer": b"no"},
        {"name": "$x^2$ [a](http:evil).png", "mimeType": "image/png", "buffer": b"no"},
    ])
    page.locator("[data-testid='stAlertContentError']").nth(2).wait_for(timeout=60_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert any(IMAGE_LINK in e.replace("\u2060", "") for e in errors), errors
    assert any("<img src=x onerror=alert(1)>" in e for e in errors), errors
    assert_text_only(page, app_url, requested)


def test_transfer_class_folder_names_are_text(app_url, page):
    requested = watch_requests(page)
    open_page(page, app_url, "transfer")
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for name in CLASSES:
            for i in range(3):
                zf.writestr(f"{name}/{i}.jpg", jpeg())
    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone']").click()
    chooser.value.set_files(files=[{"name": f"{IMAGE_LINK}.zip", "mimeType": "application/zip",
                                    "buffer": data.getvalue()}])
    page.get_by_text("Skipped files").wait_for(timeout=60_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    warnings = " ".join(page.locator("[data-testid='stAlertContentWarning']").all_inner_texts())
    for name in CLASSES:
        assert name in warnings.replace("\u2060", ""), (name, warnings)
    ticks = " ".join(page.locator(".js-plotly-plot .xtick text").evaluate_all(
        "elements => elements.map(e => e.textContent)"))
    # Plotly turns <b> into a bold tspan, whose text would lose the tag: the tag shown as
    # typed means the name stayed text.
    assert "<b>bold" in ticks, ticks
    assert_text_only(page, app_url, requested)


def test_an_image_over_the_uploaders_limit_gets_one_line_not_an_http_error(app_url, page):
    """Row 4: Classify's uploader states 20 MB and refuses a larger file in the browser, with
    one line in the uploader; nothing is sent (no HTTP 413), the page raises nothing."""
    uploads: list[int] = []
    page.on("response", lambda r: uploads.append(r.status) if "/upload_file/" in r.url else None)
    open_page(page, app_url, "classify")
    assert "up to 20 MB per file" in page.locator("[data-testid='stMain']").inner_text()
    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone']").first.click()
    chooser.value.set_files(files=[{"name": "huge.png", "mimeType": "image/png",
                                    "buffer": b"\x89PNG\r\n\x1a\n" + bytes(21 * 2**20)}])
    uploader = page.locator("[data-testid='stFileUploader']").first
    uploader.get_by_text("File must be 20.0MB or smaller.").wait_for(timeout=30_000)
    wait_for_app_run(page)
    assert_no_exception(page)
    assert uploads == []  # refused before sending: no 413 for the user to read
    assert "AxiosError" not in page.locator("[data-testid='stMain']").inner_text()
