from tests.e2e.conftest import assert_no_exception, open_page


def test_home_opens_and_links_every_page(app_url, page):
    open_page(page, app_url)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="cnnlab").first.is_visible()
    for title in ("Architectures", "Calculator", "Train", "Classify", "Transfer"):
        assert page.locator("[data-testid='stPageLink']", has_text=title).count() >= 1
    page.screenshot(path="artifacts/e2e/home.png", full_page=True)


def test_deep_link_on_a_fresh_server_uses_the_app_navigation(page):
    """A bookmarked page opened first on a new server goes through app.py's navigation
    (titled pages, wide layout), not Streamlit's legacy pages/ listing."""
    from tests.e2e.conftest import start_app_server

    with start_app_server() as url:
        open_page(page, url, "calculator?preset=LeNet-5")
        assert_no_exception(page)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Home" in nav and "app" not in nav.split()
        assert "preset=LeNet-5" in page.url
        assert page.get_by_role("heading", name="Calculator").first.is_visible()
