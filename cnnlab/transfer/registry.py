"""The runs of each owner (a browser's token): starting one, finding it again after a
browser refresh (a new Streamlit session, the same owner token), and letting it go when the
job runner evicts its jobs (TTL, the owner's last session ending, the server-wide cap)."""

from __future__ import annotations

import threading

from cnnlab.train.manager import JobManager
from cnnlab.transfer.config import TransferConfig
from cnnlab.transfer.features import FeatureCache
from cnnlab.transfer.image_folder import ImageFolder, Split
from cnnlab.transfer.model import BaseWeights
from cnnlab.transfer.run import TransferRun

_RUNS_LOCK = threading.Lock()
_RUNS: dict[str, TransferRun] = {}
_HOOKED: set[int] = set()       # managers whose evictions free transfer runs


def _free_evicted(manager: JobManager, owner: str) -> None:
    """The runner dropped jobs of `owner` (TTL, session end, server cap): a run whose jobs
    are all gone is forgotten too, with its Inception model, pixels and features."""
    with _RUNS_LOCK:
        run = _RUNS.get(owner)
        if run is not None and all(manager.get(owner, job.id) is None for job in run.jobs()):
            del _RUNS[owner]
            run.free()


def _hook(manager: JobManager) -> None:
    if id(manager) not in _HOOKED and hasattr(manager, "on_evict"):
        _HOOKED.add(id(manager))
        manager.on_evict(lambda owner, _jobs: _free_evicted(manager, owner))


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
    _hook(manager)
    run = TransferRun(dataset, split, config, weights, cache)
    run.submit(manager, owner)
    if previous is not None and previous.finished:
        previous.forget(manager, owner)
    remember_run(owner, run)
    return run
