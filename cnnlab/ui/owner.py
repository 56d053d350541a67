"""Whose training jobs these are: a per-browser owner token, kept where a page can find it.

The job runner (cnnlab.train.jobs) knows owners only as opaque names; this is where a page
gets one. The token lives in the URL's query string, so a refresh (a new Streamlit session)
reattaches to the running job, and in session_state, so a page switch that drops the query
string keeps it. One token serves every page that trains.
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping

OWNER_PARAM = "owner"          # the URL query parameter that carries the token
_OWNER_STATE_KEY = "train_owner"


def new_owner_token() -> str:
    """An unguessable per-browser token (pages keep it in the URL's query string)."""
    return secrets.token_urlsafe(12)


def browser_owner(query_params: MutableMapping, session_state: MutableMapping,
                  page: str) -> str:
    """This browser's owner name for `page`'s jobs ("<token>:<page>"): the URL's token, else
    this session's, else a new one; written back to both."""
    token = query_params.get(OWNER_PARAM) or session_state.get(_OWNER_STATE_KEY)
    if not token:
        token = new_owner_token()
    session_state[_OWNER_STATE_KEY] = token
    if query_params.get(OWNER_PARAM) != token:
        query_params[OWNER_PARAM] = token
    return f"{token}:{page}"
