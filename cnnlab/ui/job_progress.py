"""A training job's progress as the pages show it: queued, failed, preparing, or a bar with a
line of numbers. One drawing for the Train and Transfer pages, each in its own words.

    view = progress_view(job.snapshot(), TRAIN_WORDING, preparing=(0.0, "preparing…"))
    progress_ui(view)        # st.info / st.error / st.progress

`progress_view` is pure (tests read its text); `progress_ui` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.train.jobs import JobSnapshot, JobState

# The Train page names what a state means to the user.
_STATE_WORDS = {JobState.RUNNING: "training", JobState.STOPPING: "stopping",
                JobState.STOPPED: "stopped", JobState.DONE: "finished"}
_TRAINING = (JobState.RUNNING, JobState.STOPPING)


@dataclass(frozen=True)
class ProgressWording:
    """How a page words a job's progress."""

    queued: str                 # what follows "Queued: position N"
    unit: str                   # what the rate counts: "images", "examples"
    # True: worded states ("training", "finished"), "elapsed m:ss" and an ETA while training.
    # False: the bare state, seconds, and no rate until it is known.
    clock: bool = True
    # Preparing lasts until the first batch (True) or until the model and data are built.
    until_first_batch: bool = False


TRAIN_WORDING = ProgressWording(queued=" in line. Training starts when a slot frees up.",
                                unit="images")
TRANSFER_WORDING = ProgressWording(queued="; it starts when a slot frees up.", unit="examples",
                                   clock=False, until_first_batch=True)


@dataclass(frozen=True)
class ProgressView:
    kind: str              # "queued" | "failed" | "preparing" | "training"
    text: str
    fraction: float = 0.0  # of the progress bar ("preparing" and "training")

    @property
    def training(self) -> bool:
        """Training has begun (or ended): the numbers are real."""
        return self.kind == "training"


def format_seconds(seconds: float | None) -> str:
    """m:ss, or "…" when unknown."""
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_view(snap: JobSnapshot, wording: ProgressWording,
                  preparing: tuple[float, str]) -> ProgressView:
    """What to show for `snap`. `preparing`: the bar's fraction and text before training."""
    if snap.state == JobState.QUEUED:
        return ProgressView("queued", f"Queued: position {snap.queue_position}{wording.queued}")
    if snap.state == JobState.FAILED:
        return ProgressView("failed", f"Training failed: {snap.error}")
    started = snap.batches if wording.until_first_batch else snap.epochs
    if snap.state in _TRAINING and not started:
        return ProgressView("preparing", preparing[1], preparing[0])
    rate = (f"{snap.images_per_second:,.0f} {wording.unit}/s" if snap.images_per_second
            else f"… {wording.unit}/s" if wording.clock else "")
    state = _STATE_WORDS[snap.state] if wording.clock else snap.state
    text = (f"{state} · epoch {snap.epoch}/{snap.epochs} · batch {snap.batch}/"
            f"{snap.steps_per_epoch or '…'} · {rate} · ")
    if not wording.clock:
        text += f"{snap.elapsed_s:.1f} s"
    else:
        text += f"elapsed {format_seconds(snap.elapsed_s)}"
        if snap.state in _TRAINING:
            text += f" · ETA {format_seconds(snap.eta_s)}"
    return ProgressView("training", text, snap.progress)


def progress_ui(view: ProgressView) -> None:
    """Draw a `progress_view`."""
    import streamlit as st

    if view.kind == "queued":
        st.info(view.text, icon=":material/hourglass_top:")
    elif view.kind == "failed":
        st.error(view.text, icon=":material/error:")
    else:
        st.progress(view.fraction, text=view.text)
