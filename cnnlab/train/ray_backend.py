"""The second backend of the job runner: every training job runs on a Ray cluster.

`RayJobManager` has `JobManager`'s public interface and `RayJob` has `TrainingJob`'s, so
the pages and the CLI do not change (cnnlab.train.backend picks one from the environment).
What lives where:

- the cluster: the run registry (`cnnlab.train.ray_hub.RunHub`, one named actor for every
  web server), the training itself (`cnnlab.train.ray_worker`, a task on whichever node has
  the CPUs/GPUs it asks for) and its results (object store);
- this web server: `RayJob` proxies holding only what a page draws: the latest snapshot,
  polled from the hub whenever a page reads it (every 0.5 s while it draws a run; one
  call of about a millisecond, carrying only the new batch points), the points so far, and, when a page asks for them, the model (`job.model`: the .keras bytes
  from the object store, loaded once) and the build's `context` (`job.setup.context`).

A refresh reattaches by owner, on this server or any other: the registry is the cluster's.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import ray

from cnnlab.train.jobs import ACTIVE, FINISHED, JobError, JobSnapshot, JobState, TrainingJob
from cnnlab.train.ray_cluster import (
    ClusterUnreachable,
    connect,
    forwarded_env,
    job_resources,
    ray_address,
)
from cnnlab.train.ray_hub import HUB_NAME, WORKER_LOST, hub

CALL_TIMEOUT_S = 10.0     # a hub that does not answer leaves the last snapshot on the page
WAIT_POLL_S = 0.05


@dataclass
class RemoteSetup:
    """`TrainingJob.setup` of a run that trained elsewhere: what stays after training (its
    training arrays are gone, as with the thread backend)."""

    info: dict
    context: dict
    x: Any = None
    y: Any = None
    validation_data: Any = None
    fit_kwargs: dict = field(default_factory=dict)


def _first_snapshot(run_id: str, meta: dict) -> JobSnapshot:
    return JobSnapshot(
        id=run_id, label=meta["label"], state=JobState.QUEUED, error=None, queue_position=None,
        epoch=0, epochs=0, batch=0, steps_per_epoch=None, progress=0.0, eta_s=None,
        images_per_second=None, elapsed_s=0.0, batches=(), epochs_log=(), result={}, info={},
        config=dict(meta["config"]), seed=meta["seed"])


class RayJob:
    """A run on the cluster, as this server sees it: TrainingJob's public interface."""

    def __init__(self, hub_actor, view: dict) -> None:
        self._hub = hub_actor
        self.id: str = view["id"]
        self.owner: str = view["owner"]
        self.label: str = view["label"]
        self.seed: int | None = view["seed"]
        self.config: dict = dict(view["config"])
        self.dtype_policy: str = view.get("dtype_policy", "float32")
        self.extras: dict[str, Any] = {}      # as TrainingJob.extras (cnnlab.train.runs)
        self.worker: dict | None = None       # node_id, pid of the process that trains it
        self.stage: tuple[str, float] | None = None   # the build's status(), if it has one
        self._lock = threading.RLock()
        self._stop_requested = False
        self._snap = _first_snapshot(self.id, view)
        self._points: deque = deque(maxlen=int(view.get("max_batch_points", 20_000)))
        self._since = 0
        self._final: list | None = None       # ObjectRefs: snapshot, model bytes, context
        self._complete = False                # the final snapshot is here: no more polling
        self._model: Any = None
        self._setup: RemoteSetup | None = None
        self._apply(view)

    # ---- TrainingJob's public interface ------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        self._refresh()
        with self._lock:
            return self._snap

    @property
    def state(self) -> JobState:
        return self.snapshot().state

    @property
    def error(self) -> str | None:
        return self.snapshot().error

    @property
    def result(self) -> dict:
        return dict(self.snapshot().result)

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop_requested

    @property
    def is_alive(self) -> bool:
        return not self.snapshot().finished

    def stop(self) -> None:
        """Ask the run to stop (after its batch, once the worker hears it: every 0.25 s)."""
        with self._lock:
            self._stop_requested = True
        self._call(self._hub.stop.remote(self.owner, self.id))
        self._refresh()

    def cancel(self) -> None:
        self.stop()

    def set_queue_position(self, position: int | None) -> None:
        """The hub numbers the cluster's queue: nothing to set here."""

    def start(self, on_finish: Callable[[Any], None]) -> None:
        raise JobError("a Ray run starts when its manager submits it")

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._refresh()
            if self._snap.finished:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_POLL_S)

    @property
    def model(self) -> Any:
        """The trained keras.Model (None before training ended, or if it failed): its .keras
        file from the object store, loaded here once, when a page first asks."""
        with self._lock:
            if self._model is None:
                data = self._final_object(1)
                if data is not None:
                    from cnnlab.train.export import load_model_bytes

                    self._model = load_model_bytes(data)
            return self._model

    @property
    def setup(self) -> RemoteSetup | None:
        with self._lock:
            if self._setup is None and self.snapshot().finished:
                context = self._final_object(2)
                if context is None and self._final is None and not self._complete:
                    return None      # ended, its results not here yet (a busy cluster): later
                self._setup = RemoteSetup(info=dict(self._snap.info), context=context or {})
            return self._setup

    # ---- polling the hub ----------------------------------------------------------------------
    def _call(self, ref) -> Any:
        """A hub call; a hub that is gone ends the run "failed: worker lost"."""
        try:
            return ray.get(ref, timeout=CALL_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            return None
        except ray.exceptions.RayActorError:
            with self._lock:
                if not self._snap.finished:
                    self._snap = replace(self._snap, state=JobState.FAILED,
                                         error=f"{WORKER_LOST} (the run registry is gone)")
                self._complete = True
            return None

    def _refresh(self) -> None:
        with self._lock:
            if self._complete:
                return
            view = self._call(self._hub.poll.remote(self.id, self._since))
            if view is not None:
                self._apply(view)
            elif not self._complete and self._snap.finished:
                self._complete = True          # forgotten by the hub: keep what we have

    def _apply(self, view: dict) -> None:
        self.worker = view["worker"] or self.worker
        self.stage = view["stage"] or self.stage
        self._stop_requested = self._stop_requested or view["stop"]
        for point in view["points"]:
            self._points.append(point)
            self._since = point.step
        fields = dict(view["fields"]) or {}
        fields.update(state=JobState(view["state"]), error=view["error"])
        self._snap = replace(self._snap, **fields, batches=tuple(self._points),
                             queue_position=view["queue_position"])
        if view["final"] is not None and self._snap.finished:
            self._final = view["final"]
            final: JobSnapshot = ray.get(self._final[0], timeout=CALL_TIMEOUT_S)
            self._snap = replace(final, id=self.id, queue_position=None,
                                 state=JobState(view["state"]), error=view["error"])
            self._points.clear()
            self._complete = True

    def _final_object(self, index: int) -> Any:
        """One of the run's results (model bytes, context), once it has ended."""
        if not self.snapshot().finished:
            return None
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while self._final is None and time.monotonic() < deadline:
            if self._complete:            # ended without results (worker lost, forgotten)
                return None
            time.sleep(WAIT_POLL_S)
            self._refresh()
        if self._final is None:
            return None
        try:
            return ray.get(self._final[index], timeout=60)
        except ray.exceptions.RayError:
            return None                   # its node is gone: the results with it


class RayJobManager:
    """JobManager's interface over the cluster's run registry (see the module docstring).

    Queueing is the cluster's: each run asks for `resources` (CNNLAB_RAY_CPUS/GPUS) and
    waits until a node has them; `max_concurrent` is how many runs fit at once.
    """

    backend = "ray"

    def __init__(self, address: str | None = None,
                 resources: dict[str, float] | None = None, registry: str = HUB_NAME) -> None:
        self.address = address or ray_address() or "local"
        self.registry = registry
        self.resources = resources or job_resources()
        connect(self.address)
        try:
            self._hub = hub(registry)
        except Exception as exc:  # noqa: BLE001 - the cluster refused the registry actor
            raise ClusterUnreachable(f"the Ray cluster at {self.address!r} cannot host "
                                     f"cnnlab's run registry: {exc}") from None
        self._lock = threading.RLock()
        self._proxies: dict[str, RayJob] = {}
        self._submitted: list[RayJob] = []

    # ---- JobManager's interface ---------------------------------------------------------------
    def submit(self, owner: str, job: TrainingJob) -> RayJob:
        """Run `job` on the cluster for `owner`; returns its proxy (use it, not `job`)."""
        from ray import cloudpickle

        if not owner:
            raise JobError("a job needs an owner token")
        run_id = f"job-{uuid.uuid4().hex[:10]}"
        meta = {"label": job.label, "seed": job.seed, "config": dict(job.config),
                "dtype_policy": job.dtype_policy, "max_batch_points": 20_000}
        try:
            spec = cloudpickle.dumps({**meta, "build": job.build})
        except Exception as exc:  # noqa: BLE001 - what cannot travel cannot train there
            raise JobError(f"this job cannot be sent to the cluster: {exc}") from None
        options = {**self.resources, "runtime_env": {"env_vars": forwarded_env()}}
        refused = self._call(self._hub.submit.remote(owner, run_id, meta, spec, options))
        if refused:
            raise JobError(refused)
        view = self._call(self._hub.poll.remote(run_id, 0))
        proxy = self._proxy(view)
        with self._lock:
            self._submitted.append(proxy)
        return proxy

    def get(self, owner: str, job_id: str) -> RayJob | None:
        view = self._read(self._hub.poll.remote(job_id, 0), None)
        if view is None or view["owner"] != owner:
            return None
        return self._proxy(view)

    def find(self, job_id: str) -> RayJob | None:
        """The run with this id, whoever owns it (a shared link watches it; only its owner
        may stop it: the registry checks)."""
        view = self._read(self._hub.poll.remote(job_id, 0), None)
        return None if view is None else self._proxy(view)

    def jobs_of(self, owner: str) -> list[RayJob]:
        """The owner's runs, oldest first (from the cluster's registry)."""
        return [self._proxy(view) for view in self._read(self._hub.runs_of.remote(owner), [])]

    def active(self, owner: str) -> RayJob | None:
        for job in self.jobs_of(owner):
            if job.state in ACTIVE:
                return job
        return None

    def latest(self, owner: str) -> RayJob | None:
        runs = self.jobs_of(owner)
        return runs[-1] if runs else None

    def stop(self, owner: str, job_id: str | None = None) -> bool:
        job = self.get(owner, job_id) if job_id else self.active(owner)
        if job is None:
            return False
        job.stop()
        return True

    def forget(self, owner: str, job_id: str) -> None:
        self._read(self._hub.forget.remote(owner, job_id), None)
        with self._lock:
            job = self._proxies.get(job_id)
            if job is not None and job.state in FINISHED:
                del self._proxies[job_id]

    def evict(self, now: float | None = None) -> int:
        """Nothing to do here: the registry keeps MAX_RUNS_PER_OWNER runs per owner. (No
        `release_owner` either: one server cannot know that the owner's last session, on any
        server, has ended.)"""
        return 0

    @property
    def max_concurrent(self) -> int:
        """How many runs the cluster can train at once with each run's request."""
        total = ray.cluster_resources()
        fits = [total.get(key, 0.0) / need for key, need in
                (("CPU", self.resources["num_cpus"]), ("GPU", self.resources["num_gpus"]))
                if need > 0]
        return int(min(fits)) if fits else 0

    def counts(self) -> dict[str, int]:
        counts = self._read(self._hub.counts.remote(), {"running": 0, "queued": 0})
        return {**counts, "max_concurrent": self.max_concurrent}

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the runs submitted through this manager, wait, and forget them (tests; a
        server leaving the cluster for good)."""
        with self._lock:
            submitted, self._submitted = list(self._submitted), []
        for job in submitted:
            if not job.snapshot().finished:
                job.stop()
        for job in submitted:
            job.wait(timeout)
            self.forget(job.owner, job.id)

    # ---- helpers --------------------------------------------------------------------------
    def _call(self, ref) -> Any:
        try:
            return ray.get(ref, timeout=CALL_TIMEOUT_S)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise JobError(f"the cluster's run registry does not answer ({type(exc).__name__})"
                           ) from None

    def _read(self, ref, default: Any) -> Any:
        """A read for a page: a registry that does not answer shows nothing, never a crash."""
        try:
            return self._call(ref)
        except JobError:
            return default

    def _proxy(self, view: dict) -> RayJob:
        """One proxy per run in this server, so a page's extras (its test report) are kept."""
        with self._lock:
            job = self._proxies.get(view["id"])
            if job is None:
                job = self._proxies[view["id"]] = RayJob(self._hub, view)
            return job
