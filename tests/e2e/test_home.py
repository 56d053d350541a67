from tests.e2e.conftest import assert_no_exception, open_page


def test_home_opens_and_links_every_page(app_url, page):
    open_page(page, app_url)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="cnnlab").first.is_visible()
    for title in ("Architectures", "Calculator", "Train", "Classify", "Transfer"):
        assert page.locator("[data-testid='stPageLink']", has_text=title).count() >= 1
    page.screenshot(path="artifacts/e2e/home.png", full_page=True)
