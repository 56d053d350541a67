"""The Train page's replay of a recorded run (cnnlab.train.recording), and the download of
a finished live run as a recording.

`train?replay=NAME` opens a recording shipped in cnnlab/data/recordings; an uploaded one
stays open for the browser tab's session. The replay plays at 1x (as fast as the run
trained) to 50x, or follows the batch scrubber: the curves up to that batch, and the first
layer's filters, the validation confusion matrix and a few test images' predictions as
they were after the latest epoch before it. Pure numpy + plotly: nothing here imports
TensorFlow.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import streamlit as st

from cnnlab.train import charts
from cnnlab.train import recording as recordings
from cnnlab.train.recording import Recording, RecordingError, Replay
from cnnlab.ui import present
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.safe import one_line, plain

PARAM = "replay"                         # ?replay=NAME
SPEEDS = (1, 2, 5, 10, 20, 50)           # x the recorded training's own pace
TICK_S = 0.5                             # the replay redraws twice a second while playing
_UPLOAD = "replay_upload"                # session_state: (name, bytes) of an opened upload
_PLAYING, _POS, _WALL = "replay_playing", "replay_pos_s", "replay_wall"
_URL_CHANGE = "replay_url_change"       # session_state: the ?replay= a click asked for ("": none)
STEP_KEY, SPEED_KEY = "replay_step", "replay_speed"


@st.cache_resource(show_spinner=False, max_entries=16)
def _shipped(name: str) -> Recording:
    return recordings.load_shipped(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def _replay_of(digest: str, _recording: Recording) -> Replay:
    return Replay(_recording)


def opened() -> tuple[str, Replay] | None:
    """The recording this page replays: ?replay=NAME, or the one uploaded in this session."""
    # The URL changes a click asked for, made here in the script run (a query-string change
    # made in a button callback can reach the browser before the run starts, and be lost).
    pending = st.session_state.pop(_URL_CHANGE, None)
    if pending == "":
        st.query_params.pop(PARAM, None)
    elif pending:
        st.query_params[PARAM] = pending
    name = st.query_params.get(PARAM)
    if name:
        try:
            recording = _shipped(name)
        except RecordingError as exc:
            st.warning(plain(f"Ignored in the link: replay={one_line(name, 40)} ({exc}). "
                             f"Shipped recordings: {', '.join(recordings.shipped_names())}."),
                       icon=":material/link_off:")
            return None
        return name, _replay_of(f"shipped:{name}", recording)
    upload = st.session_state.get(_UPLOAD)
    if upload:
        name, data = upload
        digest = hashlib.sha256(data).hexdigest()
        return name, _replay_of(digest, recordings.read_recording(data))
    return None


def replay_ui(offer: bool = True) -> bool:
    """The Train page's replay section: a recorded run replayed (`?replay=NAME` or an
    uploaded file) in place of live training, or else (with `offer`) the picker that opens
    one. True when a replay is shown."""
    with one_line_errors("Replaying the recording"):
        shown = opened()
        if shown is None:
            if offer:
                picker_ui()
            return False
        replay_view(*shown)
    return True


def _open_shipped(name: str) -> None:
    st.session_state[_URL_CHANGE] = name
    _reset()


def _close() -> None:
    st.session_state[_URL_CHANGE] = ""
    st.session_state.pop(_UPLOAD, None)
    _reset()


def _reset() -> None:
    for key in (_PLAYING, _POS, _WALL, STEP_KEY):
        st.session_state.pop(key, None)


def picker_ui() -> None:
    """Open a shipped recording, or upload one (folded away: the live run comes first)."""
    with st.expander("Replay a recorded run (no training, no TensorFlow)",
                     icon=":material/replay:"):
        names = recordings.shipped_names()
        st.caption("Runs recorded with `python -m cnnlab train ... --record FILE` on real data "
                   "play back at 1x-50x with a scrubber: for a lecture with no time to train.")
        for name in names:
            summary = _shipped(name).summary(name)
            acc = summary["test_accuracy"]
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.markdown(plain(f"{name}: {summary['label']}; "
                                f"{summary['train_images']:,} training images, "
                                + (f"test accuracy {acc:.1%}" if acc is not None else "")))
            right.button("Replay", key=f"replay_open_{name}", on_click=_open_shipped,
                         args=(name,), icon=":material/play_circle:", width="stretch")
        limit_mb = recordings.MAX_FILE_BYTES // 2**20
        upload = st.file_uploader(f"…or open a recording (.npz, up to {limit_mb} MB)",
                                  type=["npz"], key="replay_file", max_upload_size=limit_mb)
        if upload is not None and st.button("Replay this file", key="replay_open_upload",
                                            icon=":material/play_circle:"):
            data = upload.getvalue()
            try:
                recordings.read_recording(data)
            except RecordingError as exc:
                st.error(plain(f"{one_line(upload.name, 80)}: {exc}"), icon=":material/error:")
                return
            _reset()
            st.session_state[_UPLOAD] = (upload.name, data)
            st.rerun()


def _toggle_play(replay: Replay) -> None:
    state = st.session_state
    if state.get(_PLAYING):
        state[_PLAYING] = False
        return
    step = int(state.get(STEP_KEY, 1))
    if step >= replay.steps:
        step = 1
    state[STEP_KEY] = step
    state[_POS], state[_WALL] = replay.time_of(step), time.monotonic()
    state[_PLAYING] = True


def _scrubbed(replay: Replay) -> None:
    state = st.session_state
    state[_POS] = replay.time_of(int(state.get(STEP_KEY, 1)))
    state[_WALL] = time.monotonic()


def replay_view(name: str, replay: Replay) -> None:
    """The whole replay: what was recorded, the controls and the panel that follows them."""
    rec = replay.recording
    meta, machine = rec.meta, rec.meta.get("machine", {})
    st.subheader(plain(f"Replay: {rec.label or name}"))
    st.caption(plain(
        f"Recorded run {name}: {rec.source}; {meta['dataset'].get('train_images') or 0:,} "
        f"training, {meta['dataset'].get('validation_images') or 0:,} validation, "
        f"{meta['dataset'].get('test_images') or 0:,} test images. Trained "
        f"{meta.get('created', '?')} on {machine.get('cpu', '?')} ({machine.get('cores', '?')} "
        f"cores, TensorFlow {machine.get('tensorflow', '?')}) in "
        f"{meta['run'].get('train_seconds') or 0:,.0f} s. Command: {rec.command or 'the Train page'}.",
        limit=1200))
    playing = bool(st.session_state.get(_PLAYING))
    controls = st.columns([1, 3, 1], vertical_alignment="bottom")
    controls[0].button("Pause" if playing else "Play", key="replay_play", type="primary",
                       icon=":material/pause:" if playing else ":material/play_arrow:",
                       on_click=_toggle_play, args=(replay,), width="stretch")
    st.session_state.setdefault(SPEED_KEY, 10)
    controls[1].select_slider("Speed", SPEEDS, key=SPEED_KEY, format_func=lambda s: f"{s}x",
                              help="1x plays as fast as the run trained; 50x fifty times faster.")
    controls[2].button("Close the replay", key="replay_close", on_click=_close,
                       icon=":material/close:", width="stretch")
    st.fragment(run_every=TICK_S if playing else None)(_panel)(replay)


def _advance(replay: Replay) -> None:
    """While playing: move the scrubber on by the wall time since the last tick x speed."""
    state = st.session_state
    if not state.get(_PLAYING):
        return
    now = time.monotonic()
    pos = state.get(_POS, 0.0) + (now - state.get(_WALL, now)) * float(state.get(SPEED_KEY, 10))
    state[_POS], state[_WALL] = pos, now
    state[STEP_KEY] = replay.step_at(pos)
    if state[STEP_KEY] >= replay.steps:
        state[_PLAYING] = False


def _panel(replay: Replay) -> None:
    with one_line_errors("Replaying the recording"):   # a fragment rerun runs only this
        _draw_panel(replay)


def _draw_panel(replay: Replay) -> None:
    was_playing = bool(st.session_state.get(_PLAYING))
    _advance(replay)
    st.session_state.setdefault(STEP_KEY, 1)
    step = st.slider("Batch", 1, replay.steps, key=STEP_KEY, on_change=_scrubbed,
                     args=(replay,), help="Scrub through the run: every chart below follows.")
    rec, names = replay.recording, replay.recording.class_names
    epoch, batch = replay.position(step)
    shown = replay.snapshot_epoch(step)
    after = "before training" if shown == 0 else f"after epoch {shown}"
    st.caption(f"Epoch {epoch} of {rec.meta['config'].get('epochs', rec.epochs)}, batch {batch}; "
               f"{replay.time_of(step):,.1f} s into the recorded training. Filters, confusion "
               f"matrix and predictions: {after}.")
    present.chart(charts.live_figure(replay.curves(step)), width="stretch", key="replay_chart")
    left, right = st.columns(2)
    with left:
        filters = replay.filters(step)
        if rec.meta.get("filters_kind") == "dense1":
            st.markdown(f"**The first {len(filters)} hidden units' weights** ({after}): a dense "
                        "unit sees all 784 pixels at once, so its weights form a 28x28 image.")
            figure = charts.image_grid_figure(filters, "unit", cols=8, colorscale="RdBu_r",
                                              symmetric=True, width_px=560)
        else:
            st.markdown(f"**First-layer filters** ({after}; red positive, blue negative).")
            figure = charts.filters_figure(filters)
        present.chart(figure, width="stretch", key="replay_filters")
    with right:
        confusion = replay.val_confusion(step)
        total = max(int(confusion.sum()), 1)
        st.markdown(f"**Validation confusion matrix** ({after}): "
                    f"{np.trace(confusion) / total:.1%} of {total:,} images right.")
        present.chart(charts.confusion_figure(confusion, names), width="stretch",
                      key="replay_confusion")
    _samples_ui(replay, step, names)
    if step >= replay.steps and rec.test_accuracy is not None:
        st.success(f"Test accuracy {rec.test_accuracy:.2%} on "
                   f"{rec.meta['run'].get('test_images') or 0:,} test images.",
                   icon=":material/check_circle:")
    if was_playing and not st.session_state.get(_PLAYING):
        st.rerun()      # the end: redraw the page to stop the timer and show Play again


def _samples_ui(replay: Replay, step: int, names: list[str]) -> None:
    a = replay.recording.arrays
    probs = replay.sample_probs(step)
    cols = st.columns(len(probs)) if len(probs) else []
    for col, image, label, p in zip(cols, a["sample_images"], a["sample_labels"], probs,
                                    strict=False):
        guess = int(np.argmax(p))
        mark = "✓" if guess == int(label) else "✗"
        col.image(image, width="stretch", clamp=True,
                  caption=f"{mark} {one_line(names[guess], 30)} {float(p[guess]):.0%}")


def download_ui(job, report) -> None:
    """A finished live run offered as a recording the replay opens (kept with the run)."""
    if "recording" not in job.extras:
        try:
            recording = recordings.recording_from_job(job, getattr(report, "confusion", None))
        except RecordingError:
            return          # a run without snapshots (e.g. stopped before its first epoch)
        job.extras["recording"] = recordings.recording_bytes(recording)
    st.download_button("Download the run as a recording (.npz)", job.extras["recording"],
                       file_name=f"cnnlab-{job.id}.npz", icon=":material/download:",
                       mime="application/octet-stream", key="download_recording",
                       help="Replay it later on this page (Replay a recorded run), at 1x-50x, "
                            "without training. Or record from a terminal: "
                            "python -m cnnlab train ... --record FILE.npz")
