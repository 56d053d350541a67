"""Untrusted text shown as text: file names, class names, layer text, URL values, and the
error messages that quote them. Pure Python (no Streamlit), so the decoder and the CLI use
it too.

What would otherwise interpret such text:

- Streamlit's Markdown, behind `st.markdown`, `st.caption`, `st.title`/`header`/`subheader`
  and the bodies of `st.error`/`st.warning`/`st.info`/`st.success` (all of them Markdown in
  Streamlit 1.67): CommonMark + GFM (images `![x](url)` that the visitor's browser fetches,
  links, bare-URL autolinks, tables), KaTeX between `$` signs, and Streamlit's own
  `:red[...]`, `:material/icon:` and `:emoji:` shortcodes.
- Plotly labels (titles, ticks, legends, hover text): a subset of HTML (`<b>`, `<i>`,
  `<br>`, `<a href>`, `<sup>`, `<span style>`) plus HTML entities.
- A terminal or a log: a newline, a carriage return, an ANSI escape or a right-to-left
  override can split or disguise a one-line message.

So: `plain(text)` for anything Markdown renders, `plotly_label(text)` for Plotly,
`quoted(name)` and `one_line(text)` for one-line plain-text messages (stderr, logs, the
messages the other two then escape), `error_line(what, exc)` for an unexpected error told
in one line without a server path.
"""

from __future__ import annotations

import html
import re
import string

# CommonMark: "Any ASCII punctuation character may be backslash-escaped", and an escaped
# one is always literal text. Every Markdown, GFM, KaTeX and Streamlit construct needs at
# least one of them (`!` `[` `(` `<` `$` `:` `*` `_` `` ` `` `#` `|` `~` `.` of an
# autolink...), so escaping all of them leaves nothing to interpret.
_MARKDOWN_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}
ELLIPSIS = "…"
# GFM autolink literals (`https://…`, `www.…`, `name@host.tld`) are found in the text
# *after* escapes are resolved (mdast-util-gfm-autolink-literal rewrites text nodes), so
# a backslash escape does not stop them; a WORD JOINER (U+2060, invisible, zero width) before every `:`
# and `@` and inside `www.` does. Checked in Chromium against Streamlit 1.67.
_WORD_JOINER = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?=[:@])|(?i:(?<=www)(?=\.))")
# A server path inside an error message: two or more /-separated (or \-separated) parts,
# e.g. '/tmp/cnnlab-x1y2/cats/0.png' or 'C:\Users\a\b'. Only its last part is kept.
_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"]+){2,}[/\\]?")
_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\] ")


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line: every character that is not printable (newline, tab, carriage
    return, ESC, bidi overrides, line/paragraph separators) written as its Python escape
    (`\\n`, `\\x1b`, `\\u202e`); cut to `limit` characters with an ellipsis."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + ELLIPSIS
    return text


def quoted(name: object, limit: int = 120) -> str:
    """A file or class name for a one-line message: as it is when it is plainly printable,
    otherwise Python's repr of it (quotes and escapes show exactly what the name holds)."""
    name = str(name)
    if name and name.isprintable() and name == name.strip():
        shown = name
    else:
        shown = repr(name)
    if len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + ELLIPSIS
    return shown


def plain(text: object, limit: int = 300) -> str:
    """Markdown source that Streamlit shows as `one_line(text)`, nothing rendered: no image,
    link, autolink, KaTeX, HTML, emphasis, heading, list, table or shortcode. (Invisible
    word joiners break would-be autolinks; see `_AUTOLINK_STARTS`.)"""
    text = _AUTOLINK_STARTS.sub(_WORD_JOINER, one_line(text, limit))
    return text.translate(_MARKDOWN_ESCAPES)


def plotly_label(text: object, limit: int = 300) -> str:
    """A Plotly label that shows exactly `one_line(text)`: `<`, `>` and `&` as HTML entities,
    so `<b>`, `<br>` or `<a href>` in a class name are shown, not obeyed (Plotly splits its
    tags first and converts entities in the text between them); `$` as a numeric entity, so
    a label is never taken for MathJax. (Plotly knows few named entities: no `&quot;`.)"""
    return html.escape(one_line(text, limit), quote=False).replace("$", "&#36;")


def without_paths(text: object) -> str:
    """`text` with every server path cut to its last part and `[Errno N]` prefixes dropped:
    'No such file or directory: '/tmp/x/cats/0.png'' -> "No such file or directory: '0.png'"."""
    text = _ERRNO.sub("", str(text))
    return _PATH.sub(lambda m: m.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1], text)


def error_line(what: str, exc: BaseException, limit: int = 300) -> str:
    """An unexpected error as one line for a reader: what failed, the exception's kind and
    its message, without a traceback or a server path (the log keeps those)."""
    message = without_paths(exc) if str(exc) else ""
    kind = type(exc).__name__
    return one_line(f"{what} failed ({kind}{': ' + message if message else ''})", limit)
