"""Deep links on a fresh server.

Streamlit keeps a process-wide flag, `PagesManager.uses_pages_directory`, that starts True
when a `pages/` folder sits beside the entry script and turns False the first time a run
calls `st.navigation`. Until then a request for `/calculator` runs `pages/calculator.py`
alone, with Streamlit's legacy file-name sidebar and without app.py. So the first visitor of
a fresh server who opens a bookmarked page (the Calculator's URL carries its configuration)
would see the wrong app. Each page calls `ensure_app_navigation()` first: in that legacy run
it clears the flag and reruns, and the rerun goes through app.py's `st.navigation` to the
same page, query string kept.
"""

from __future__ import annotations


def ensure_app_navigation() -> None:
    """Rerun through app.py when Streamlit ran this page as a legacy `pages/` script."""
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
