"""When the Architectures page shows its first content in a real browser (headless Chromium).

Starts `streamlit run app.py` on a free port, opens Home once (its st.navigation registers
the pages), then opens /architectures 3 times and measures, from navigation start: the title
visible, the overview table visible, and the script finished. Baseline: Home's title, timed
the same way in the same server. TensorFlow is never imported by opening the page (the
server's log would show its start-up lines; tests/test_page_architectures.py checks it).

Last line: ms=<median time until the Architectures title is visible>.
"""

from __future__ import annotations

import statistics
import time

from cnnlab.serving import (
    CHROMIUM,
    CHROMIUM_ARGS,
    open_page,
    start_app_server,
    wait_for_app_run,
)


def timed_open(page, url: str, title: str, table: bool) -> tuple[float, float, float]:
    start = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    t_title = time.perf_counter() - start
    if table:
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=120_000)
    t_table = time.perf_counter() - start
    wait_for_app_run(page, timeout=120_000)
    return 1000 * t_title, 1000 * t_table, 1000 * (time.perf_counter() - start)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with start_app_server() as server, sync_playwright() as pw:
        url = server.url
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_page(page, url)
        home = [timed_open(page, url, "cnnlab", False) for _ in range(3)]
        arch = [timed_open(page, f"{url}/architectures", "Architectures", True) for _ in range(3)]
        browser.close()
    for name, runs in (("home", home), ("architectures", arch)):
        for i, (title, table, done) in enumerate(runs):
            print(f"{name} run {i}: title {title:.0f} ms, table {table:.0f} ms, "
                  f"script finished {done:.0f} ms")
    h = statistics.median(r[0] for r in home)
    a = statistics.median(r[0] for r in arch)
    print(f"title visible: home {h:.0f} ms (baseline), architectures {a:.0f} ms "
          f"(ratio {a / h:.2f}); the first architectures run is a cold server process")
    print(f"ms={a:.0f}")


if __name__ == "__main__":
    main()
