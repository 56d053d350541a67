"""Which backend runs this process's training jobs, picked once from the environment.

    manager = shared_manager()      # the pages: one manager per server process
    manager = manager_from_env()    # the CLI: refuses in one line when the cluster is gone

- `CNNLAB_RAY_ADDRESS` unset: `cnnlab.train.manager.JobManager`, threads of this process (the
  default; nothing else changes).
- set (`local`, `auto`, `HOST:PORT`, `ray://HOST:PORT`): `cnnlab.train.ray_backend.
  RayJobManager`, every job on the Ray cluster. If it cannot be reached, one clear message
  (`ClusterUnreachable`), and threads only when `CNNLAB_RAY_FALLBACK=threads` says so.

Both managers have the same interface, so pages and the CLI do not know which they have.
Ray is imported only when it is asked for.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from cnnlab.train import manager as threads
from cnnlab.train.ray_cluster import ClusterUnreachable, fallback_to_threads, ray_address, warn

RETRY_S = 10.0      # a server whose cluster was unreachable tries again after this long


def manager_from_env(max_concurrent: int | None = None) -> Any:
    """A new manager for the configured backend (`max_concurrent` is the thread backend's
    limit; the cluster's resources set Ray's). Raises ClusterUnreachable unless told to
    fall back to threads."""
    ray_manager = _ray_manager()
    return ray_manager if ray_manager is not None else threads.JobManager(max_concurrent)


def _ray_manager() -> Any:
    """The Ray manager, or None for threads (not asked for, or the asked-for fallback)."""
    address = ray_address()
    if address is None:
        return None
    from cnnlab.train.ray_backend import RayJobManager

    try:
        return RayJobManager(address)
    except ClusterUnreachable as exc:
        if not fallback_to_threads():
            raise
        warn(f"{exc} Training in threads instead (CNNLAB_RAY_FALLBACK=threads).")
        return None


def backend_name(manager: Any) -> str:
    """"ray" or "threads"."""
    return getattr(manager, "backend", "threads")


def worker_of(job: Any) -> dict:
    """Where the job trains: the Ray worker's node and process, or this process."""
    worker = getattr(job, "worker", None)
    return dict(worker) if worker else {"node_id": None, "pid": os.getpid()}


class UnreachableCluster:
    """The manager of a server whose cluster cannot be reached: every page keeps working,
    shows no runs, and Train answers with the reason (a JobError, as for any refusal)."""

    backend = "ray"
    max_concurrent = 0

    def __init__(self, message: str) -> None:
        self.message = message
        self.since = time.monotonic()

    def submit(self, owner: str, job: Any) -> Any:
        raise ClusterUnreachable(self.message)

    def get(self, owner: str, job_id: str) -> None:
        return None

    def jobs_of(self, owner: str) -> list:
        return []

    def active(self, owner: str) -> None:
        return None

    def latest(self, owner: str) -> None:
        return None

    def stop(self, owner: str, job_id: str | None = None) -> bool:
        return False

    def forget(self, owner: str, job_id: str) -> None:
        return None

    def counts(self) -> dict[str, int]:
        return {"running": 0, "queued": 0, "max_concurrent": 0}

    def shutdown(self, timeout: float = 10.0) -> None:
        return None


_SHARED: Any = None
_SHARED_LOCK = threading.Lock()


def shared_manager() -> Any:
    """The one manager of this server process, for every page that trains. With threads it
    is `threads.shared_manager()`; an unreachable cluster is retried every RETRY_S seconds."""
    global _SHARED
    if ray_address() is None:
        return threads.shared_manager()
    with _SHARED_LOCK:
        stale = isinstance(_SHARED, UnreachableCluster) and \
            time.monotonic() - _SHARED.since > RETRY_S
        if _SHARED is None or stale:
            try:
                _SHARED = _ray_manager() or threads.shared_manager()
            except ClusterUnreachable as exc:
                if _SHARED is None:
                    warn(str(exc))            # once, in the server's log
                _SHARED = UnreachableCluster(str(exc))
        return _SHARED
