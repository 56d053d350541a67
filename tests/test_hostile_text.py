"""Issue 15, untrusted text is text: `cnnlab.ui.safe` against the attack strings, through
the Markdown Streamlit elements receive (AppTest), a CommonMark renderer, and (e2e) the DOM
of a real Chromium showing a tiny Streamlit script."""

from __future__ import annotations

import html
import re
import string
import textwrap
import unicodedata

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from cnnlab.ui.safe import one_line, plain, plotly_label, quoted

ATTACKS = [
    "![x](https:127.0.0.1:8599)",                  # the shared calculator link
    "![x](https://127.0.0.1:8599/x.png)",
    "[a](javascript:alert(1))",
    "[click](https://example.com \"t\")",
    "$x^2$", "$$\\int_0^1 x\\,dx$$",
    "<img src=x onerror=alert(1)>", "<b>bold</b>", "<i>it</i><br>next",
    "`code` and ```fence```",
    "line one\nline two\r\n# heading",
    "https://example.com/x and www.example.com and a@b.com",
    ":red[red] :material/home: :smile:",
    "# h", "1. item", "- item", "> quote", "a | b\n--|--", "~~strike~~", "**bold** _em_",
    "&lt;b&gt;not a tag&lt;/b&gt; &amp;",
    "\\*still escaped\\*", "photo\u202egnp.exe", "tab\there\x1b[31mred",
]
WORD_JOINER = "\u2060"


def shown_text(markdown_source: str) -> str:
    """The text a CommonMark renderer shows for `markdown_source`; fails on any markup."""
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown_source)
    body = rendered.strip()
    assert body.startswith("<p>") and body.endswith("</p>"), rendered
    inner = body[3:-4]
    assert "<" not in inner, f"markup rendered: {rendered}"  # no <img>, <a>, <em>, <code>...
    return html.unescape(inner).replace(WORD_JOINER, "")


def test_one_line_and_quoted():
    assert one_line("a\nb\r\tc\x1b\u2028d") == "a\\nb\\r\\tc\\x1b\\u2028d"
    assert one_line("x" * 400, limit=10) == "x" * 9 + "…"
    assert quoted("cat.png") == "cat.png" and quoted("chat échaudé.png") == "chat échaudé.png"
    assert quoted("a\nb.png") == "'a\\nb.png'" and quoted(" lead.png") == "' lead.png'"
    assert quoted("") == "''"


@pytest.mark.parametrize("attack", ATTACKS)
def test_plain_leaves_nothing_for_markdown_to_render(attack):
    source = plain(attack)
    assert "\n" not in source and "\r" not in source
    # Every ASCII punctuation character is backslash-escaped (so remark-math, GFM and
    # Streamlit's shortcodes, which all need one, find nothing).
    punctuation = re.escape(string.punctuation)
    assert re.fullmatch(rf"(?:\\[{punctuation}]|[^{punctuation}])*", source)
    # A would-be autolink is broken by a word joiner (GFM finds autolinks after escapes).
    visible = source.replace("\\", "")
    assert not re.search(r"(?i)https?://|www\.|\w@\w", visible)
    assert shown_text(source) == one_line(attack)


@pytest.mark.parametrize("attack", ATTACKS)
def test_plotly_label_shows_tags_as_text(attack):
    label = plotly_label(attack)
    assert "<" not in label and ">" not in label and "$" not in label and "\n" not in label
    assert html.unescape(label) == one_line(attack)


def test_elements_receive_the_escaped_markdown():
    """A tiny page writes every attack through `plain` into every Markdown element."""
    script = textwrap.dedent("""
        import streamlit as st
        from cnnlab.ui.safe import plain
        from tests.test_hostile_text import ATTACKS

        for attack in ATTACKS:
            shown = plain(attack)
            st.markdown(shown)
            st.caption(shown)
            st.error(shown)
            st.warning(shown)
            st.info(shown)
            st.subheader(shown, anchor=False)
    """)
    at = AppTest.from_string(script).run()
    assert not at.exception
    for elements in (at.markdown, at.caption, at.error, at.warning, at.info, at.subheader):
        values = [element.value for element in elements]
        assert len(values) == len(ATTACKS)
        for attack, value in zip(ATTACKS, values, strict=True):
            heading = value.lstrip("#").strip() if elements is at.subheader else value
            assert shown_text(heading) == one_line(attack)


def test_an_uncaught_exception_shows_no_traceback_and_no_path():
    """client.showErrorDetails = "none" (.streamlit/config.toml): a generic line only."""
    at = AppTest.from_string("raise OverflowError('/srv/cnnlab/pages/calculator.py line 9')")
    at.run()
    (error,) = at.exception
    assert error.stack_trace == [] and "/srv" not in error.message
    assert "OverflowError" not in error.message and "redacted" in error.message


@pytest.mark.e2e
def test_nothing_renders_in_a_real_browser(tmp_path):
    """Chromium, Streamlit's own Markdown: no img, no a, no KaTeX, no request off-origin;
    each element shows the attack's one-line text; Plotly shows tags as text."""
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    playwright = pytest.importorskip("playwright.sync_api")
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is missing: apt-get install -y chromium")
    script = tmp_path / "attacks.py"
    script.write_text(textwrap.dedent("""
        import plotly.graph_objects as go
        import streamlit as st
        from cnnlab.ui.safe import plain, plotly_label
        from tests.test_hostile_text import ATTACKS

        for attack in ATTACKS:
            for element in (st.markdown, st.caption, st.error, st.warning):
                element(plain(attack))
            st.subheader(plain(attack), anchor=False)
        labels = [plotly_label(a) for a in ATTACKS[4:9]]
        figure = go.Figure(go.Bar(x=labels, y=list(range(len(labels)))))
        figure.update_layout(title=plotly_label("<b>bold</b> <a href='https://x.y'>l</a>"))
        st.plotly_chart(figure)
    """))
    import subprocess
    import sys
    import time
    import urllib.request

    from tests import ROOT
    from tests.e2e.conftest import free_port

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(origin + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith((origin, "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(origin)
            page.wait_for_selector(".js-plotly-plot .xtick", timeout=60_000)
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            main = page.locator("[data-testid='stMain']")
            containers = main.locator("[data-testid='stMarkdownContainer'], "
                                      "[data-testid='stHeading'] :is(h1, h2, h3)")
            assert containers.count() == 5 * len(ATTACKS)
            assert main.locator("img").count() == 0 and main.locator("a").count() == 0
            assert main.locator(".katex, .katex-display").count() == 0
            for tag in ("strong", "em", "code", "del", "table", "ol", "ul", "blockquote", "h1"):
                assert main.locator(f"[data-testid='stMarkdownContainer'] {tag}").count() == 0, tag
            texts = [unicodedata.normalize("NFC", t).replace(WORD_JOINER, "").strip()
                     for t in containers.all_text_contents()]
            assert texts == [one_line(a) for a in ATTACKS for _ in range(5)]
            ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
            assert ticks == [one_line(a) for a in ATTACKS[4:9]]
            title = page.locator(".js-plotly-plot .gtitle").text_content()
            assert title == "<b>bold</b> <a href='https://x.y'>l</a>"
            assert page.locator(".js-plotly-plot a").count() == 0
            assert outside == []
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
