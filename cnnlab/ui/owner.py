"""Whose training runs these are, and who may only watch them.

A browser's owner token is its credential for its runs (Train, Stop, Use in Classify,
downloads). It lives in a cookie, `cnnlab_owner`, read from the request with
`st.context.cookies` and written once per browser with extra-streamlit-components'
CookieManager, so a refresh (a new Streamlit session) keeps control; and in session_state,
so a page switch, and the first session before its cookie comes back, keep it too. The URL
carries only the run's id (`?run=ID`): a shared link lets others watch the run, read-only,
never control it (issue 10).

    owner = page_owner("train", manager)              # "<token>:train", held by this session
    view = run_in_view(manager, owner, linked_run())  # the run to show, and whose it is
    show_run_in_url(view)

While a session lasts it holds its owner's runs (`hold_owner`); once the owner's last
session has ended (and a refresh had time to come back), the job runner lets them go
(`OwnerSessions`). The job runner (cnnlab.train.manager) knows owners only as opaque names;
`run_in_view` and `OwnerSessions` are pure (tests call them with any manager), the rest talks
to Streamlit.
"""

from __future__ import annotations

import datetime
import re
import secrets
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

OWNER_COOKIE = "cnnlab_owner"   # the browser's owner token (the credential)
RUN_PARAM = "run"               # the URL's query parameter: the run shown (watchable)
LEGACY_OWNER_PARAM = "owner"    # where the token used to live; removed from the URL
COOKIE_DAYS = 30
_OWNER_STATE_KEY = "train_owner"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_owner_token() -> str:
    """An unguessable per-browser token (16 URL-safe characters, 96 random bits)."""
    return secrets.token_urlsafe(12)


def valid_token(value: Any) -> bool:
    """Whether `value` looks like a token we issued (anything else in a cookie is ignored)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def browser_owner(cookies: Mapping[str, str], session_state: MutableMapping,
                  page: str) -> str:
    """This browser's owner name for `page`'s runs ("<token>:<page>"): this session's token,
    else the cookie's (a refresh), else a new one; kept in the session."""
    token = session_state.get(_OWNER_STATE_KEY)
    if not valid_token(token):
        token = cookies.get(OWNER_COOKIE)
    if not valid_token(token):
        token = new_owner_token()
    session_state[_OWNER_STATE_KEY] = token
    return f"{token}:{page}"


def find_run(manager: Any, run_id: str) -> Any | None:
    """The run with this id, whoever owns it (None if the server does not have it)."""
    find = getattr(manager, "find", None)
    return find(run_id) if find is not None else None


@dataclass(frozen=True)
class RunView:
    """What a page shows: `job` (None: nothing yet) and whether this browser owns it.

    `own=False`: someone else's run, opened from a shared link: the chart, the progress and
    the results, read-only; no Stop, no Use in Classify, no downloads. `missing` is the id
    of a linked run the server does not have (ended and let go, or a wrong link)."""

    job: Any | None
    own: bool = True
    missing: str | None = None

    @property
    def watching(self) -> bool:
        return self.job is not None and not self.own


def run_in_view(manager: Any, owner: str, linked: str | None) -> RunView:
    """The run a page shows for `owner` when the URL names `linked`: the linked run when it
    is someone else's (watched), else the owner's active or latest run."""
    mine = manager.active(owner) or manager.latest(owner)
    if not linked or (mine is not None and mine.id == linked):
        return RunView(mine)
    job = find_run(manager, linked)
    if job is None:
        return RunView(mine, missing=linked)
    if getattr(job, "owner", None) == owner:
        return RunView(mine)           # an older run of this browser: show the latest
    return RunView(job, own=False)


class OwnerSessions:
    """The open browser sessions of each owner, so that an owner's runs are let go once its
    last session has ended (issue 10: memory that comes back).

    A refresh closes the old session BEFORE the new one opens, so the owner is released only
    when none of its sessions came back within `grace_s`: `manager.release_owner(owner)`,
    then the models' memory is collected. A session that opens calls
    `manager.retain_owner(owner)` (a backend without these methods keeps its own rules).
    `schedule(delay, fn)` runs `fn` later (a daemon timer; tests pass their own)."""

    def __init__(self, grace_s: float = 30.0,
                 schedule: Callable[[float, Callable[[], None]], None] | None = None) -> None:
        self.grace_s = grace_s
        self._schedule = schedule or _daemon_timer
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def opened(self, manager: Any, owner: str) -> None:
        with self._lock:
            self._open[owner] = self._open.get(owner, 0) + 1
        retain = getattr(manager, "retain_owner", None)
        if retain is not None:
            retain(owner)

    def closed(self, manager: Any, owner: str) -> None:
        with self._lock:
            left = self._open.get(owner, 1) - 1
            if left > 0:
                self._open[owner] = left
                return
            self._open.pop(owner, None)
        # A shortened TTL (a benchmark) shortens the wait too.
        grace = min(self.grace_s, getattr(manager, "ttl_s", self.grace_s))
        self._schedule(grace, lambda: self._release_if_gone(manager, owner))

    def open_sessions(self, owner: str) -> int:
        with self._lock:
            return self._open.get(owner, 0)

    def _release_if_gone(self, manager: Any, owner: str) -> None:
        with self._lock:
            if owner in self._open:
                return                      # it came back (a refresh)
        release = getattr(manager, "release_owner", None)
        if release is not None:
            release(owner)
            from cnnlab.train.streaming import collect_soon

            collect_soon()


def _daemon_timer(delay: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


SESSIONS = OwnerSessions()


class _Lease:
    """One session's hold on one owner's runs (released with the session)."""

    def __init__(self, manager: Any, owner: str) -> None:
        self.manager, self.owner = manager, owner
        SESSIONS.opened(manager, owner)

    def end(self) -> None:
        SESSIONS.closed(self.manager, self.owner)


_lease: Callable[..., _Lease] | None = None
_HOOKED: set[int] = set()      # managers whose evictions collect the models' memory


def _collect_after_evictions(manager: Any) -> None:
    """Runs let go for any reason (TTL, the server's cap, an owner released) leave their
    models to the garbage collector: collect soon after, not whenever it next runs."""
    on_evict = getattr(manager, "on_evict", None)
    if on_evict is None or id(manager) in _HOOKED:
        return
    _HOOKED.add(id(manager))
    from cnnlab.train.streaming import collect_soon

    on_evict(lambda _owner, _jobs: collect_soon())


def hold_owner(manager: Any, owner: str) -> None:
    """Count this Streamlit session as one of `owner`'s while it lasts (a session-scoped
    `st.cache_resource` whose `on_release` runs when the session ends)."""
    global _lease
    _collect_after_evictions(manager)
    if _lease is None:
        import streamlit as st

        @st.cache_resource(scope="session", on_release=_Lease.end, show_spinner=False)
        def lease(owner: str, _manager: Any) -> _Lease:
            return _Lease(_manager, owner)

        _lease = lease
    _lease(owner, manager)


# ---- the Streamlit side ----------------------------------------------------------------------
def request_cookies() -> Mapping[str, str]:
    """The cookies the browser sent when this session opened."""
    import streamlit as st

    return st.context.cookies


def page_owner(page: str, manager: Any = None) -> str:
    """This browser's owner name for `page` (see `browser_owner`); writes the cookie when the
    browser did not send it, drops a token left in the URL by an older version, and holds
    the owner's runs in `manager` while this session lasts (`hold_owner`)."""
    import streamlit as st

    cookies = request_cookies()
    owner = browser_owner(cookies, st.session_state, page)
    if manager is not None:
        hold_owner(manager, owner)
    token = owner.rsplit(":", 1)[0]
    if cookies.get(OWNER_COOKIE) != token:
        remember_in_browser(token)
    if LEGACY_OWNER_PARAM in st.query_params:
        del st.query_params[LEGACY_OWNER_PARAM]
    return owner


def page_runs(page: str, manager: Any) -> tuple[str, RunView]:
    """What a page with runs does first: this browser's owner for `page` (`page_owner`), the
    run it shows (its own latest, or the one a link names: `run_in_view`), and that run's id
    in the URL (`show_run_in_url`)."""
    owner = page_owner(page, manager)
    view = run_in_view(manager, owner, linked_run())
    show_run_in_url(view)
    return owner, view


def remember_in_browser(token: str) -> None:
    """Set the owner cookie in this browser (extra-streamlit-components' CookieManager: an
    invisible component; path /, SameSite=Strict). Drawn on every run of a session whose
    request lacked the cookie; the component writes it once."""
    try:
        import extra_streamlit_components as stx
    except ImportError:      # the session's token still works until the tab is closed
        return
    expires = datetime.datetime.now() + datetime.timedelta(days=COOKIE_DAYS)
    stx.CookieManager(key="cnnlab_cookies").set(OWNER_COOKIE, token, key="cnnlab_owner_set",
                                                expires_at=expires, same_site="strict")


def linked_run() -> str | None:
    """The run id the URL names (`?run=ID`), if any."""
    import streamlit as st

    value = st.query_params.get(RUN_PARAM)
    return value or None


def show_run_in_url(view: RunView) -> None:
    """Put the shown run's id in the URL (a link to share is a link to watch); a link to a
    run the server no longer has is left as it is, so the page can say so."""
    import streamlit as st

    if view.missing is not None:
        return
    if view.job is None:
        if RUN_PARAM in st.query_params:
            del st.query_params[RUN_PARAM]
    elif st.query_params.get(RUN_PARAM) != view.job.id:
        st.query_params[RUN_PARAM] = view.job.id


def watch_own_run(job: Any) -> None:
    """After this browser starts a run (a button callback): show it, not a watched one."""
    import streamlit as st

    st.query_params[RUN_PARAM] = job.id


def stop_watching() -> None:
    """Back to this browser's own runs (a button callback): the URL stops naming another's."""
    import streamlit as st

    if RUN_PARAM in st.query_params:
        del st.query_params[RUN_PARAM]


def watch_notice_ui(view: RunView) -> None:
    """Say whose run the page shows when a link named someone else's, or one that is gone."""
    import streamlit as st

    if view.missing is not None:
        st.warning("The run in this link is not on the server any more (runs are let go some "
                   "time after they end), or the link is wrong.", icon=":material/link_off:")
    elif view.watching:
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.info("**Someone else's run**: you are watching it, read-only. Its chart, progress "
                  "and results update here; your own Train button is free.",
                  icon=":material/visibility:")
        right.button("Show my runs", key="stop_watching", icon=":material/person:",
                     on_click=stop_watching, width="stretch")
