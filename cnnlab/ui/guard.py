"""No traceback on a page, ever: `one_line_errors(what)` around a page's risky sections.

An unexpected exception inside the block becomes one `st.error` line (what failed, the
exception's kind and message, no server path: `safe.error_line`), shown as plain text, and
the rest of the page goes on. The server log keeps the full traceback. Streamlit's own
control flow (`st.stop()`, `st.rerun()`) is a BaseException and passes through untouched.
`client.showErrorDetails = "none"` in .streamlit/config.toml is the backstop for anything
outside such a block.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import streamlit as st

from cnnlab.ui.safe import error_line, plain

log = logging.getLogger("cnnlab.pages")


@contextlib.contextmanager
def one_line_errors(what: str, icon: str = ":material/error:") -> Iterator[None]:
    """`with one_line_errors("Drawing the confusion matrix"): ...`: any Exception inside is
    logged with its traceback and shown as "<what> failed (Kind: message)"."""
    try:
        yield
    except Exception as exc:  # the page goes on; the log has the traceback
        log.exception("%s failed", what)
        st.error(plain(error_line(what, exc)), icon=icon)
