"""Deep links on a fresh server.

Streamlit keeps a process-wide flag, `PagesManager.uses_pages_directory`, that starts True
when a `pages/` folder sits beside the entry script and turns False the first time a run
calls `st.navigation`. Until then a request for `/calculator` runs `pages/calculator.py`
alone, with Streamlit's legacy file-name sidebar and without app.py. So the first visitor of
a fresh server who opens a bookmarked page (the Calculator's URL carries its configuration)
would see the wrong app. (AppTest resets the flag before every run, so its page runs take
the same path.)

Each page calls `ensure_app_navigation()` first. In such a legacy run it runs app.py in
its place, within the same script run: app.py's `st.navigation` takes over (its sidebar and
page config replace the legacy ones) and runs this same page, with the query string and any
widget event of this run (a button click) intact; then the legacy run stops.
"""

from __future__ import annotations

import runpy


def ensure_app_navigation() -> None:
    """Run app.py in place of a page that Streamlit ran as a legacy `pages/` script."""
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if not PagesManager.uses_pages_directory or ctx is None:
        return
    PagesManager.uses_pages_directory = False
    runpy.run_path(str(ctx.pages_manager.main_script_path), run_name="__main__")
    st.stop()
