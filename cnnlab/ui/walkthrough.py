"""Step-by-step pages: Back and Next buttons, a step picker, and the keys a presentation
clicker sends (→, space and PageDown forward; ← and PageUp back).

The keys go through the maintained component `streamlit-shortcuts` (it binds a key to a
button by the button's Streamlit key, `.st-key-<key> button`). Its listener lives in the
browser tab until it is cleared, and it swallows the keys it binds, so `release_keys` clears
it on pages (and views) that draw no step buttons: app.py calls it on every run.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

NEXT, BACK = "step_next", "step_back"          # the buttons' keys (the shortcuts find them)
NEXT_KEYS = ["arrowright", " ", "pagedown"]    # " ": the space bar (KeyboardEvent.key)
BACK_KEYS = ["arrowleft", "pageup"]
_BOUND = "_walkthrough_keys_page"              # session_state: the page whose keys are bound


def _go(key: str, number: int) -> None:
    st.session_state[key] = number


def nav_ui(key: str, first: int, last: int, title: Callable[[int], str], page: str) -> int:
    """Back, the step picker and Next, with their keys bound; returns the step to draw.
    `key` holds the step number (the picker's widget key; the URL binds it)."""
    number = int(st.session_state.get(key) or first)
    number = min(max(number, first), last)
    st.session_state[key] = number
    back, picker, forward, keys = st.columns([1, 5, 1, 0.01], vertical_alignment="center")
    back.button("Back", key=BACK, icon=":material/arrow_back:", width="stretch",
                disabled=number == first, on_click=_go, args=(key, max(first, number - 1)))
    picker.selectbox("Step", range(first, last + 1), key=key, label_visibility="collapsed",
                     format_func=lambda n: f"Step {n} of {last}: {title(n)}")
    forward.button("Next", key=NEXT, icon=":material/arrow_forward:", width="stretch",
                   type="primary", disabled=number == last,
                   on_click=_go, args=(key, min(last, number + 1)))
    with keys:
        bind_keys(page)
    return int(st.session_state[key])


def bind_keys(page: str) -> None:
    """Bind →/space/PageDown to Next and ←/PageUp to Back in this browser tab."""
    from streamlit_shortcuts import add_shortcuts

    add_shortcuts(**{NEXT: NEXT_KEYS, BACK: BACK_KEYS})
    st.session_state[_BOUND] = page


def release_keys(keep: str | None = None) -> None:
    """Unbind the step keys unless the page `keep` bound them (nothing to do when unbound)."""
    bound = st.session_state.get(_BOUND)
    if bound is None or bound == keep:
        return
    from streamlit_shortcuts import clear_shortcuts

    clear_shortcuts()
    st.session_state.pop(_BOUND, None)
