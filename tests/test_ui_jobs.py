"""The pages' side of training jobs: owner tokens, and the progress line both pages draw."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cnnlab.train.jobs import JobSnapshot, JobState
from cnnlab.train.meter import BatchPoint
from cnnlab.ui.job_progress import (
    TRAIN_WORDING,
    TRANSFER_WORDING,
    format_seconds,
    progress_view,
)
from cnnlab.ui.owner import OWNER_COOKIE, RunView, browser_owner, run_in_view, valid_token

PREPARING = (0.25, "computing bottleneck features")


def test_owner_token_survives_a_refresh_and_a_page_switch():
    session = {}
    owner = browser_owner({}, session, "train")
    token = owner.rsplit(":", 1)[0]
    assert owner == f"{token}:train" and len(token) >= 16 and valid_token(token)
    # A refresh: a new session; the browser sends the cookie the page wrote.
    cookies = {OWNER_COOKIE: token}
    assert browser_owner(cookies, {}, "train") == owner
    # A page switch: the session remembers (the cookie may not be back yet).
    assert browser_owner({}, session, "transfer") == f"{token}:transfer"
    # Another browser gets another token; a cookie that is not one of ours is ignored.
    assert browser_owner({}, {}, "train") != owner
    forged = browser_owner({OWNER_COOKIE: "x"}, {}, "train")
    assert forged != "x:train" and valid_token(forged.rsplit(":", 1)[0])


class Run:
    def __init__(self, run_id: str, owner: str, state: JobState = JobState.DONE) -> None:
        self.id, self.owner, self.state = run_id, owner, state


class Runs:
    """The part of a job manager `run_in_view` uses."""

    def __init__(self, *runs: Run) -> None:
        self.runs = list(runs)

    def active(self, owner):
        return next((r for r in self.runs if r.owner == owner and not r.state.finished), None)

    def latest(self, owner):
        return next((r for r in reversed(self.runs) if r.owner == owner), None)

    def find(self, run_id):
        return next((r for r in self.runs if r.id == run_id), None)


def test_a_shared_link_lets_others_watch_and_only_the_owner_control():
    """The URL names only the run (`?run=ID`): its owner (the cookie's token) controls it,
    anyone else watches it read-only; a link to a run the server let go says so."""
    mine, old = Run("job-2-ab12cd34", "me:train"), Run("job-1-00ff00ff", "me:train")
    theirs = Run("job-3-9e8d7c6b", "them:train", JobState.RUNNING)
    runs = Runs(old, mine, theirs)
    assert run_in_view(runs, "me:train", None) == RunView(mine)           # no link: my latest
    assert run_in_view(runs, "me:train", mine.id) == RunView(mine)        # my link, refreshed
    assert run_in_view(runs, "me:train", old.id) == RunView(mine)         # an older one of mine
    watched = run_in_view(runs, "me:train", theirs.id)                     # their link
    assert watched == RunView(theirs, own=False) and watched.watching
    assert run_in_view(runs, "them:train", theirs.id) == RunView(theirs)  # they keep control
    gone = run_in_view(runs, "me:train", "job-9-deadbeef")
    assert gone == RunView(mine, missing="job-9-deadbeef") and not gone.watching
    # A newcomer with someone's link and no runs of their own: watching, Train free.
    assert run_in_view(runs, "new:train", theirs.id).watching
    assert run_in_view(Runs(), "new:train", None) == RunView(None)
    # A backend that cannot look runs up by id (no `find`): the link shows nothing foreign.
    class NoFind(Runs):
        find = None
    assert not run_in_view(NoFind(theirs), "me:train", theirs.id).watching


def test_run_ids_are_unguessable():
    """A link names a run by its id: ids of runs started one after another share no
    guessable pattern beyond their counter."""
    from cnnlab.train.jobs import TrainingJob

    a, b = TrainingJob(lambda: None), TrainingJob(lambda: None)
    assert a.id != b.id and len(a.id.rsplit("-", 1)[1]) == 8
    assert a.id.rsplit("-", 1)[1] != b.id.rsplit("-", 1)[1]


def snapshot(state: JobState, **changes) -> JobSnapshot:
    point = BatchPoint(1, 2, 5, 0.5, 0.5, {}, 1.0)
    snap = JobSnapshot("job-1", "run", state, None, None, 2, 10, 5, 57, 0.3, 95.4, 1234.4,
                       72.4, (point,), (), {}, {}, {}, 0)
    return replace(snap, **changes)


def test_train_words_its_progress():
    view = progress_view(snapshot(JobState.RUNNING), TRAIN_WORDING, (0.0, "preparing"))
    assert view.training and view.fraction == 0.3
    assert view.text == ("training · epoch 2/10 · batch 5/57 · 1,234 images/s · "
                         "elapsed 1:12 · ETA 1:35")
    done = progress_view(snapshot(JobState.DONE, images_per_second=None, steps_per_epoch=None),
                         TRAIN_WORDING, (0.0, "preparing"))
    assert done.text == "finished · epoch 2/10 · batch 5/… · … images/s · elapsed 1:12"
    # Preparing lasts until the model and data are built (the epochs are known).
    prep = progress_view(snapshot(JobState.RUNNING, epochs=0), TRAIN_WORDING, (0.0, "preparing"))
    assert (prep.kind, prep.fraction, prep.text) == ("preparing", 0.0, "preparing")
    assert progress_view(snapshot(JobState.RUNNING, batches=()), TRAIN_WORDING,
                         (0.0, "preparing")).training


def test_transfer_words_its_progress():
    view = progress_view(snapshot(JobState.STOPPING), TRANSFER_WORDING, PREPARING)
    assert view.text == "stopping · epoch 2/10 · batch 5/57 · 1,234 examples/s · 72.4 s"
    early = progress_view(snapshot(JobState.RUNNING, images_per_second=None), TRANSFER_WORDING,
                          PREPARING)
    assert early.text == "running · epoch 2/10 · batch 5/57 ·  · 72.4 s"
    # Preparing (the base computing features) lasts until the first batch.
    prep = progress_view(snapshot(JobState.RUNNING, batches=()), TRANSFER_WORDING, PREPARING)
    assert (prep.kind, prep.fraction, prep.text) == ("preparing", 0.25, PREPARING[1])


@pytest.mark.parametrize(("wording", "queued"), [
    (TRAIN_WORDING, "Queued: position 3 in line. Training starts when a slot frees up."),
    (TRANSFER_WORDING, "Queued: position 3; it starts when a slot frees up."),
])
def test_queued_and_failed(wording, queued):
    view = progress_view(snapshot(JobState.QUEUED, queue_position=3), wording, PREPARING)
    assert (view.kind, view.text) == ("queued", queued)
    view = progress_view(snapshot(JobState.FAILED, error="ValueError: bad"), wording, PREPARING)
    assert (view.kind, view.text) == ("failed", "Training failed: ValueError: bad")
    assert not view.training


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 0, 59.6, 61, 3600)] == ["…", "0:00", "1:00",
                                                                       "1:01", "60:00"]
