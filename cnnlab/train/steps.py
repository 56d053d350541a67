"""The Train page as a lecture: five steps, each drawing one part of the page (issue 11).

1 the configuration (network and data), 2 the live curve (the run in view), 3 the first
layer's filters, 4 the confusion matrix and the worst mistakes, 5 your own digit. Presenter
mode always walks through them; `train?step=3` opens step 3 in any mode. Steps 3-5 look
inside a finished run: without one they say so in one line (`run_notice`).

Pure Python: the step list, its titles and the notices. The page draws.
"""

from __future__ import annotations

from cnnlab.walk import Walk, numbered

STEPS = numbered((
    ("config", "The network and the data"),
    ("live", "Training, live: the loss falls batch by batch"),
    ("filters", "What the first layer learned: its filters"),
    ("confusion", "The confusion matrix and the worst mistakes"),
    ("digit", "Your digit: draw one, the network reads it"),
))
FIRST, LAST = 1, len(STEPS)
LIVE = next(s.number for s in STEPS if s.part == "live")     # where Train leads
PARAM = "step"                  # the URL's query parameter
STATE_KEY = "train_step"        # session_state: the step picker's key (None: the whole page)


WALK = Walk(STEPS)
step, title, number_of = WALK.step, WALK.title, WALK.number_of


def run_notice(state: str | None, watching: bool = False) -> str:
    """One line for a step that needs a finished run: what there is instead. `state` is the
    latest run's JobState value (None: no run), `watching`: someone else's run."""
    if state in ("queued", "running", "stopping"):
        return ("The run is still training: its results appear here once it ends (step 2 "
                "shows it live).")
    if state == "failed":
        return "The last run failed: train again in step 2 to look inside a network."
    if watching:
        return "The run you are watching has no trained network to look inside yet."
    return "No finished run yet: train one in step 2, then come back to look inside it."
