"""bench/load.py's client: the app served as `make run` serves it, and browser tabs that speak
Streamlit's websocket protocol (BackMsg/ForwardMsg over /_stcore/stream) without a browser.

    with serve() as server:                        # streamlit run app.py on a free loopback port
        session = Session(server.url)
        await session.connect()
        run = await session.run("calculator")      # one script run: its elements, exceptions, time
        run = await session.run(widgets={"epochs": ("double_value", 3)}, trigger="train")

`open_at_once` (N sessions open a page together), `first_and_reruns` (new-session and rerun
latency) and `press_train` (a student sets Epochs, presses Train and watches the live panel,
polling it as the browser's fragment timer does) are the benchmark's scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.serving import WATCHER_ON, Server, serve_command, start_app_server  # noqa: F401 (re-exported for bench/load.py)

ROOT = Path(__file__).resolve().parents[1]
# Page -> the URL path Streamlit's frontend sends as page_name ("" is the default page).
PAGES = {"home": "", "calculator": "calculator", "architectures": "architectures",
         "train": "train", "classify": "classify", "transfer": "transfer"}


# ---- the server --------------------------------------------------------------------------------

@contextlib.contextmanager
def serve(watcher: bool = False, env: dict[str, str] | None = None,
          timeout: float = 120) -> Iterator[Server]:
    """The app served as `make run` serves it (cnnlab.serving), offline, on a free loopback
    port; stopped on exit. watcher=True: the file watcher on (the default before issue 10)."""
    with start_app_server({"CNNLAB_OFFLINE": "1", **(env or {})}, watcher=watcher,
                          timeout=timeout) as server:
        yield server


# ---- one browser tab, as Streamlit's frontend speaks to the server -------------------------------

@dataclass
class Run:
    seconds: float
    elements: list = field(default_factory=list)      # (type, Element) drawn by this run
    arrived: list[float] = field(default_factory=list)  # perf_counter() of each element
    exceptions: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(t for _, el in self.elements for t in element_texts(el))


def element_texts(el) -> list[str]:
    kind = el.WhichOneof("type")
    attr = {"markdown": "body", "alert": "body", "heading": "body", "progress": "text",
            "button": "label", "number_input": "label", "metric": "label"}.get(kind)
    return [getattr(getattr(el, kind), attr)] if attr else []


class Session:
    """A websocket session: sends BackMsg rerun requests (page, query string, widget values,
    fragment auto-reruns) and reads ForwardMsgs until script_finished, as the frontend does."""

    def __init__(self, url: str) -> None:
        self.ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = None
        self.page_name = self.query_string = self.page_script_hash = ""
        self.widget_ids: dict[str, str] = {}        # user key -> widget id
        self.widget_ids_settling = True             # one more look allowed (see run)
        self.values: dict[str, tuple[str, object]] = {}   # widget key -> (proto field, value)
        self.auto_reruns: dict[str, float] = {}     # fragment id -> interval (s)
        self._cache: dict[str, object] = {}         # ForwardMsg hash -> message, as the browser

    async def connect(self, timeout: float = 30) -> None:
        from websockets.asyncio.client import connect

        self.ws = await asyncio.wait_for(
            connect(self.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=timeout,
                    ping_interval=None),   # browsers send no pings; a busy server answers late
            timeout)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 10)
            self.ws = None

    async def run(self, page: str | None = None, *,
                  widgets: dict[str, tuple[str, object]] | None = None,
                  trigger: str | None = None, fragment_id: str | None = None,
                  timeout: float = 120) -> Run:
        """One script run (or fragment run): `widgets` are kept for later runs, `trigger` is a
        button pressed in this run only. Returns when the run finished (a run the script
        restarts with st.rerun counts as part of it)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if page is not None and page != self.page_name:
            self.page_name, self.page_script_hash = page, ""
        self.values.update(widgets or {})
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name = self.query_string, self.page_name
        state.page_script_hash = self.page_script_hash
        state.cached_message_hashes.extend(self._cache)
        if fragment_id:
            state.fragment_id, state.is_auto_rerun = fragment_id, True
        wanted = dict(self.values, **({trigger: ("trigger_value", True)} if trigger else {}))
        if any(key not in self.widget_ids for key in wanted) and self.widget_ids_settling:
            # The page's first run can end before it drew everything (it reruns itself, e.g.
            # to write the owner's cookie): look once more, as a browser shows the settled page.
            self.widget_ids_settling = False
            values, self.values = self.values, {}
            await self.run(timeout=timeout)
            self.values = values
        for key, (kind, value) in wanted.items():
            if key not in self.widget_ids:
                raise RuntimeError(f"no widget with key {key!r} on page {self.page_name!r}")
            widget = state.widget_states.widgets.add()
            widget.id = self.widget_ids[key]
            setattr(widget, kind, value)
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        await asyncio.wait_for(self._read_until_finished(run := Run(0.0)), timeout)
        run.seconds = time.perf_counter() - start
        return run

    async def _read_until_finished(self, run: Run) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            if msg.HasField("ref_hash"):
                msg = self._cache[msg.ref_hash]
            elif msg.metadata.cacheable:
                self._cache[msg.hash] = msg
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_script_hash = msg.new_session.page_script_hash
                if not msg.metadata.run.fragment_ids:     # a full run: timers restart
                    self.auto_reruns.clear()
            elif kind == "navigation":      # st.navigation names the page that ran
                self.page_script_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = msg.page_info_changed.query_string
            elif kind == "page_not_found":
                raise RuntimeError(f"the server has no page {self.page_name!r}")
            elif kind == "auto_rerun":
                self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fid in msg.stop_auto_rerun.fragment_ids:
                    self.auto_reruns.pop(fid, None)
            elif kind == "session_event" and msg.session_event.HasField(
                    "script_compilation_exception"):
                run.exceptions.append(msg.session_event.script_compilation_exception.message)
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                el_kind = el.WhichOneof("type")
                run.elements.append((el_kind, el))
                run.arrived.append(time.perf_counter())
                widget_id = getattr(getattr(el, el_kind), "id", "") if el_kind else ""
                if isinstance(widget_id, str) and widget_id.startswith("$$ID-"):
                    self.widget_ids[widget_id.rsplit("-", 1)[-1]] = widget_id
                if el_kind == "exception":
                    run.exceptions.append(f"{el.exception.type}: {el.exception.message}")
            elif kind == "script_finished":
                if msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return


async def first_and_reruns(url: str, page: str, firsts: int, reruns: int) -> dict:
    """`firsts` new sessions one after another, then `reruns` reruns in the last one."""
    first, again, exceptions = [], [], []
    for _ in range(firsts):
        session = Session(url)
        try:
            await session.connect()
            run = await session.run(PAGES[page])
            first.append(run.seconds)
            exceptions += run.exceptions
            if len(first) == firsts:
                for _ in range(reruns):
                    run = await session.run()
                    again.append(run.seconds)
                    exceptions += run.exceptions
        finally:
            await session.close()
    return {"first": first, "reruns": again, "exceptions": exceptions}


async def open_at_once(url: str, page: str, n: int, timeout: float = 300) -> dict:
    """n sessions connect and ask for the page at the same moment; seconds until the last
    one's run finished. Failures (timeouts, refused connections) are counted, not raised."""
    sessions = [Session(url) for _ in range(n)]

    async def one(session: Session) -> Run:
        await session.connect(timeout)
        return await session.run(PAGES[page], timeout=timeout)

    start = time.perf_counter()
    try:
        results = await asyncio.gather(*(one(s) for s in sessions), return_exceptions=True)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    runs = [r for r in results if isinstance(r, Run)]
    failures = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, Run)]
    return {"n": n, "seconds": time.perf_counter() - start if runs else float("nan"),
            "served": len(runs), "runs": runs, "failures": failures,
            "exceptions": [e for r in runs for e in r.exceptions]}


# ---- pressing Train, as a student does ---------------------------------------------------------

@dataclass
class TrainOutcome:
    seconds: float = float("nan")         # Train pressed -> the page shows the finished run
    queue_positions: list[int] = field(default_factory=list)
    saw_a_run_before_pressing: bool = False
    test_accuracy: str | None = None
    run_ids: list[str] = field(default_factory=list)   # the runs this session's page lists
    curve: str | None = None              # the live chart's per-batch loss, as JSON
    slots: int | None = None
    error: str | None = None
    exceptions: list[str] = field(default_factory=list)


def read_train_page(run: Run, out: TrainOutcome, pressed: float | None = None) -> None:
    """What a student reads on the Train page after this run; `pressed`: when Train was
    pressed (perf_counter), to time the first appearance of the finished run's result."""
    text = run.text()
    shown = [t for (_, el), t in zip(run.elements, run.arrived, strict=True)
             if any("Test accuracy" in x for x in element_texts(el))]
    if pressed is not None and shown and out.seconds != out.seconds:   # first seen (was NaN)
        out.seconds = shown[0] - pressed
    out.exceptions += run.exceptions
    out.queue_positions += [int(p) for p in re.findall(r"Queued: position (\d+)", text)]
    if m := re.search(r"of (\d+) training slots", text):
        out.slots = int(m.group(1))
    if m := re.search(r"Test accuracy ([\d.]+%) on", text):
        out.test_accuracy = m.group(1)
    if m := re.search(r"Training failed: (.*)", text):
        out.error = m.group(1)
    for kind, el in run.elements:
        if kind == "plotly_chart" and el.plotly_chart.id.endswith("-live_chart"):
            out.curve = json.dumps(json.loads(el.plotly_chart.spec)["data"][0]["y"])
        if kind == "dataframe" and el.dataframe.arrow_data.data:
            import pyarrow as pa

            table = pa.ipc.open_stream(el.dataframe.arrow_data.data).read_all().to_pydict()
            if "run" in table and "configuration" in table:
                out.run_ids = [str(r) for r in table["run"]]


async def press_train(url: str, epochs: int, timeout: float, start_at: float | None = None
                      ) -> TrainOutcome:
    """Open the Train page, set Epochs, press Train (at `start_at`, loop time), and poll the
    live panel as the browser's fragment timer does until the finished run is shown."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = TrainOutcome()
    session = Session(url)
    try:
        await session.connect()
        first = await session.run(PAGES["train"])
        out.saw_a_run_before_pressing = "Press **Train** to start" not in first.text()
        read_train_page(first, out)
        read_train_page(await session.run(widgets={"epochs": ("double_value", epochs)}), out)
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - loop.time()))
        pressed = time.perf_counter()
        run = await session.run(trigger="train", timeout=timeout)
        while True:
            read_train_page(run, out, pressed)
            if out.error or (out.test_accuracy and not session.auto_reruns):
                break
            if not session.auto_reruns:
                out.error = "the page stopped polling before the run finished"
                break
            if loop.time() > deadline:
                out.error = f"not finished within {timeout:.0f} s"
                break
            fid, interval = next(iter(session.auto_reruns.items()))
            await asyncio.sleep(max(0.0, interval - run.seconds))
            run = await session.run(fragment_id=fid, timeout=max(1.0, deadline - loop.time()))
    except Exception as exc:  # noqa: BLE001 - reported per session
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        await session.close()
    return out


async def class_presses_train(url: str, n: int, epochs: int, timeout: float) -> list[TrainOutcome]:
    """n sessions open the Train page, then all press Train within one second."""
    loop = asyncio.get_running_loop()
    start_at = loop.time() + 5.0 + 0.2 * n          # time for every session to open the page
    return list(await asyncio.gather(*(
        press_train(url, epochs, timeout, start_at + i / max(n, 1)) for i in range(n))))
