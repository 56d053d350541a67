"""The job manager: every training job of one server process, queued, owned and let go.

`JobManager` runs `CNNLAB_MAX_JOBS` jobs at a time in threads (FIFO queue, positions shown),
keeps each owner's runs for "compare runs", and lets them go again: `CNNLAB_RUN_TTL`
seconds after a run ended (default one hour), when the owner's last browser session ends,
or when the server keeps more than `CNNLAB_MAX_KEPT_RUNS`. `shared_manager()` is this
process's one manager; `cnnlab.train.backend` picks it or the Ray backend's.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from cnnlab.train.jobs import ACTIVE, FINISHED, JobError, TrainingJob

DEFAULT_MAX_JOBS = 2
# Owners keep their finished runs (for "compare runs"); older ones beyond this are dropped.
MAX_RUNS_PER_OWNER = 20


def _env_number(name: str, default: float) -> float:
    """A positive number from the environment, else `default` (a bad value is ignored)."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def max_jobs_from_env() -> int:
    """CNNLAB_MAX_JOBS: how many jobs may train at once in this server (default 2)."""
    raw = os.environ.get("CNNLAB_MAX_JOBS", "").strip()
    if not raw:
        return DEFAULT_MAX_JOBS
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_JOBS
    return max(value, 1)


class JobManager:
    """All jobs of one server process: a concurrency limit, a FIFO queue, owners' runs.

    `owner` is an opaque per-browser token (kept in the URL's query string by the pages, so
    a refresh reattaches). An owner sees only its own jobs and has at most one active job.
    """

    def __init__(self, max_concurrent: int | None = None, *, ttl_s: float | None = None,
                 max_kept: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_concurrent = max_concurrent if max_concurrent is not None else max_jobs_from_env()
        # Memory that comes back (issue 10): a finished run is dropped TTL seconds after it
        # ended, when its owner's last session ends, or when the server keeps too many.
        self.ttl_s = ttl_s if ttl_s is not None else _env_number("CNNLAB_RUN_TTL", 3600.0)
        self.max_kept = max_kept if max_kept is not None else int(
            _env_number("CNNLAB_MAX_KEPT_RUNS", 200))
        self._clock = clock
        self._lock = threading.RLock()
        self._running: list[TrainingJob] = []
        self._queue: deque[TrainingJob] = deque()
        self._by_owner: dict[str, list[TrainingJob]] = {}
        self._finished_at: dict[str, float] = {}      # job id -> when it ended
        self._released: set[str] = set()              # owners whose sessions all ended
        self._evict_hooks: list[Callable[[str, list[TrainingJob]], None]] = []
        self._sweeper: threading.Thread | None = None  # see sweep_every()
        self._closing = threading.Event()

    def submit(self, owner: str, job: TrainingJob) -> TrainingJob:
        """Start `job` for `owner` now, or queue it. Refuses a second active job per owner."""
        if not owner:
            raise JobError("a job needs an owner token")
        with self._lock:
            current = self.active(owner)
            if current is not None:
                raise JobError(f"you already have a training {current.state}; stop it first")
            job.owner = owner
            self._released.discard(owner)
            runs = self._by_owner.setdefault(owner, [])
            runs.append(job)
            # Forget the oldest finished runs beyond the cap (their models are freed).
            finished = [j for j in runs if j.state in FINISHED]
            for old in finished[: max(0, len(runs) - MAX_RUNS_PER_OWNER)]:
                runs.remove(old)
            if len(self._running) < self.max_concurrent:
                self._running.append(job)
                start = True
            else:
                self._queue.append(job)
                start = False
                self._renumber()
        if start:
            job.start(self._finished)
        self.evict()
        return job

    def get(self, owner: str, job_id: str) -> TrainingJob | None:
        with self._lock:
            for job in self._by_owner.get(owner, []):
                if job.id == job_id:
                    return job
        return None

    def find(self, job_id: str) -> TrainingJob | None:
        """The run with this id, whoever owns it: a shared link lets others watch it (the
        page shows it read-only; only `owner` may stop it)."""
        with self._lock:
            for runs in self._by_owner.values():
                for job in runs:
                    if job.id == job_id:
                        return job
        return None

    def jobs_of(self, owner: str) -> list[TrainingJob]:
        """The owner's runs, oldest first."""
        self.evict()
        with self._lock:
            return list(self._by_owner.get(owner, []))

    def active(self, owner: str) -> TrainingJob | None:
        """The owner's queued or running job, if any (what a page reattaches to)."""
        with self._lock:
            for job in self._by_owner.get(owner, []):
                if job.state in ACTIVE:
                    return job
        return None

    def latest(self, owner: str) -> TrainingJob | None:
        with self._lock:
            runs = self._by_owner.get(owner, [])
            return runs[-1] if runs else None

    def stop(self, owner: str, job_id: str | None = None) -> bool:
        """Stop the owner's job (the active one by default). Only the owner can stop it."""
        job = self.get(owner, job_id) if job_id else self.active(owner)
        if job is None:
            return False
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                self._renumber()
                job.cancel()
                return True
        job.stop()
        return True

    def forget(self, owner: str, job_id: str) -> None:
        """Drop a finished run (and its model) from the owner's list."""
        with self._lock:
            runs = self._by_owner.get(owner, [])
            self._drop(owner, [job for job in runs if job.id == job_id and job.state in FINISHED])

    # ---- memory that comes back ------------------------------------------------------------
    def on_evict(self, hook: Callable[[str, list[TrainingJob]], None]) -> None:
        """Call `hook(owner, jobs)` whenever finished jobs are dropped (e.g. the Transfer
        registry frees a run's Inception model, pixels and features)."""
        with self._lock:
            self._evict_hooks.append(hook)

    def release_owner(self, owner: str) -> None:
        """The owner's last browser session ended: drop its finished runs now, and its
        active run when it finishes."""
        with self._lock:
            self._released.add(owner)
            self._drop(owner, [j for j in self._by_owner.get(owner, []) if j.state in FINISHED])

    def retain_owner(self, owner: str) -> None:
        """A session of the owner is open (again): keep its runs after all."""
        with self._lock:
            self._released.discard(owner)

    def evict(self, now: float | None = None) -> int:
        """Drop finished runs past the TTL, then the oldest beyond the server-wide cap.
        Returns how many were dropped."""
        now = self._clock() if now is None else now
        dropped = 0
        with self._lock:
            for owner, runs in list(self._by_owner.items()):
                old = [j for j in runs if j.state in FINISHED
                       and now - self._finished_at.get(j.id, now) >= self.ttl_s]
                dropped += self._drop(owner, old)
            finished = sorted((self._finished_at.get(j.id, now), owner, j)
                              for owner, runs in self._by_owner.items() for j in runs
                              if j.state in FINISHED)
            for _, owner, job in finished[: max(0, len(finished) - self.max_kept)]:
                dropped += self._drop(owner, [job])
        return dropped

    def sweep_every(self, interval_s: float | None = None) -> None:
        """Evict in a daemon thread every `interval_s` seconds (default: a quarter of the TTL,
        at most a minute), so runs are let go on time on a server nobody is clicking on (a
        class that has left). Idempotent; `shutdown()` ends the thread."""
        interval = interval_s or min(max(self.ttl_s / 4, 0.5), 60.0)
        with self._lock:
            if self._sweeper is not None:
                return
            self._sweeper = threading.Thread(target=self._sweep, args=(interval,),
                                             name="cnnlab-run-sweeper", daemon=True)
        self._sweeper.start()

    def _sweep(self, interval: float) -> None:
        while not self._closing.wait(interval):
            try:
                self.evict()
            except Exception:  # noqa: BLE001 - the sweeper outlives any one bad run
                pass

    def kept(self) -> int:
        """Runs held by the server (finished and active)."""
        with self._lock:
            return sum(len(runs) for runs in self._by_owner.values())

    def _drop(self, owner: str, jobs: list[TrainingJob]) -> int:
        """Forget `jobs` (all finished) of `owner`; their models, data and extras go."""
        if not jobs:
            return 0
        runs = self._by_owner.get(owner, [])
        for job in jobs:
            if job in runs:
                runs.remove(job)
            self._finished_at.pop(job.id, None)
            job.free()
        if not runs:
            self._by_owner.pop(owner, None)
        for hook in list(self._evict_hooks):
            hook(owner, jobs)
        return len(jobs)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue),
                    "max_concurrent": self.max_concurrent}

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything (tests, server exit) and wait for the threads."""
        self._closing.set()
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
            running = list(self._running)
        for job in queued:
            job.cancel()
        for job in running:
            job.stop()
        for job in running:
            job.wait(timeout)

    def _renumber(self) -> None:
        for i, queued in enumerate(self._queue, start=1):
            queued.set_queue_position(i)

    def _finished(self, job: TrainingJob) -> None:
        to_start: list[TrainingJob] = []
        with self._lock:
            self._finished_at[job.id] = self._clock()
            if job in self._running:
                self._running.remove(job)
            owner = getattr(job, "owner", None)
            if owner in self._released:     # nobody is left to look at it
                self._drop(owner, [job])
            while self._queue and len(self._running) < self.max_concurrent:
                nxt = self._queue.popleft()
                self._running.append(nxt)
                to_start.append(nxt)
            self._renumber()
        for nxt in to_start:
            nxt.start(self._finished)


_SHARED: JobManager | None = None
_SHARED_LOCK = threading.Lock()


def shared_manager() -> JobManager:
    """The one JobManager of this server process: every page that trains submits here, so
    CNNLAB_MAX_JOBS limits all training together."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = JobManager()
            # Runs past the TTL go even if nobody clicks (their memory is collected by the
            # hook every page's `cnnlab.ui.owner.hold_owner` adds).
            _SHARED.sweep_every()
        return _SHARED
