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
from cnnlab.ui.owner import OWNER_PARAM, browser_owner

PREPARING = (0.25, "computing bottleneck features")


def test_owner_token_survives_a_refresh_and_a_page_switch():
    url, session = {}, {}
    owner = browser_owner(url, session, "train")
    token = url[OWNER_PARAM]
    assert owner == f"{token}:train" and len(token) >= 16
    # A refresh: a new session, the same URL.
    assert browser_owner(url, {}, "train") == owner
    # A page switch that dropped the query string: the session remembers, the URL gets it back.
    url2 = {}
    assert browser_owner(url2, session, "transfer") == f"{token}:transfer"
    assert url2[OWNER_PARAM] == token
    # Another browser gets another token.
    assert browser_owner({}, {}, "train") != owner


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
