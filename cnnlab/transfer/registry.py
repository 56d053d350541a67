"""The runs of each owner (a browser's token): starting one, and finding it again after a
browser refresh (a new Streamlit session, the same owner token in the URL)."""

from __future__ import annotations

import threading

from cnnlab.train.jobs import JobManager
from cnnlab.transfer.config import TransferConfig
from cnnlab.transfer.features import FeatureCache
from cnnlab.transfer.image_folder import ImageFolder, Split
from cnnlab.transfer.model import BaseWeights
from cnnlab.transfer.run import TransferRun

_RUNS_LOCK = threading.Lock()
_RUNS: dict[str, TransferRun] = {}


def remember_run(owner: str, run: TransferRun) -> None:
    """Keep the owner's latest run (one per owner; the job manager keeps the jobs)."""
    with _RUNS_LOCK:
        _RUNS[owner] = run


def run_of(owner: str) -> TransferRun | None:
    with _RUNS_LOCK:
        return _RUNS.get(owner)


def start_run(manager: JobManager, owner: str, dataset: ImageFolder, split: Split,
              config: TransferConfig, weights: BaseWeights, cache: FeatureCache,
              previous: TransferRun | None = None) -> TransferRun:
    """Submit a new run for `owner` and remember it as theirs.

    One run per owner is shown: a finished `previous` run is forgotten by the runner (its
    models and images can go); an unfinished one is left alone. Raises ConfigError for an
    unusable config and JobError when the runner refuses the job; nothing changes then.
    """
    run = TransferRun(dataset, split, config, weights, cache)
    run.submit(manager, owner)
    if previous is not None and previous.finished:
        previous.forget(manager, owner)
    remember_run(owner, run)
    return run
