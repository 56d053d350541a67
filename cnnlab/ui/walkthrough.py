"""Step-by-step pages: Back and Next buttons, a step picker, and the keys a presentation
clicker sends (→, space and PageDown forward; ← and PageUp back).

The keys go through the maintained component `streamlit-shortcuts` (it binds a key to a
button by the button's Streamlit key, `.st-key-<key> button`). Its listener lives in the
browser tab until it is cleared, and it swallows the keys it binds, so `release_keys` clears
it on pages (and views) that draw no step buttons: app.py calls it on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:  # pragma: no cover
    from cnnlab.ui.url_state import Param, UrlView
    from cnnlab.walk import Walk

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


# ---- a page walked in steps (Train, Classify) -------------------------------------------------
def stepping(param: Param, walk: Walk) -> bool:
    """Whether the page walks through its steps: presenter mode, a step chosen in this
    session, or a good `?step=` in the link (a bad one leaves the whole page)."""
    from cnnlab.ui import present

    return (present.on() or st.session_state.get(param.key) is not None
            or walk.number_of(st.query_params.get(param.name)) is not None)


def walk_ui(view: UrlView, param: Param, walk: Walk, page: str,
            before_heading: Callable[[], None] | None = None) -> int | None:
    """Back, the step picker and Next (keys → ← space PageDown PageUp) and the step's
    heading; returns the step to draw, or None for the whole page (the keys let go).
    Outside presenter mode a button leaves the walk for the whole page."""
    from cnnlab.ui import present

    if not stepping(param, walk):
        release_keys()
        return None
    number = nav_ui(param.key, walk.first, walk.last, walk.title, page)
    view.sync()             # the URL names the step (the first one too)
    if not present.on():
        st.button("Show the whole page", key=f"{page}_all", icon=":material/view_agenda:",
                  type="tertiary", on_click=leave_walk, args=(view, param))
    if before_heading is not None:
        before_heading()
    st.header(walk.title(number))
    return number


def leave_walk(view: UrlView, param: Param) -> None:
    """Back to the whole page: no step in this session nor in the URL."""
    st.session_state[param.key] = None
    view.forget(param.name)
