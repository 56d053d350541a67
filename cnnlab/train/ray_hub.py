"""The run registry of a Ray cluster: one named, detached actor that every web server shares.

`RunHub` (actor "runs" in namespace "cnnlab", pinned to the head node) knows every run: its
owner, its state, its queue position, the metrics its worker streams while it trains, and
the results it left in the object store. A web server holds none of that: it submits runs
here and polls them (cnnlab.train.ray_backend). So a run started through server A is found,
watched and stopped through server B, and a server can restart without losing a run.

The hub launches each run as a Ray task (`cnnlab.train.ray_worker.train_in_worker`) that
asks the cluster for its CPUs/GPUs only while it trains; a run waits in the cluster's queue
(state "queued", with its position here) until a node has them. The hub owns the task's
results, so they outlive the server that asked for the run. When the task's process or node
dies, the run ends "failed: worker lost".

It is an async actor: its calls are short and run one at a time on its event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any

import ray

from cnnlab.train.jobs import ACTIVE, FINISHED, JobState
from cnnlab.train.manager import MAX_RUNS_PER_OWNER
from cnnlab.train.meter import BatchPoint
from cnnlab.train.ray_cluster import NAMESPACE
from cnnlab.train.ray_worker import train_in_worker

HUB_NAME = "runs"
WORKER_LOST = "worker lost"


@dataclass
class _Run:
    id: str
    owner: str
    meta: dict                               # label, seed, config, dtype_policy
    order: int                               # submission order (queue positions)
    max_points: int
    state: JobState = JobState.QUEUED
    error: str | None = None
    stop: bool = False
    worker: dict | None = None               # node_id, pid of the task's process
    stage: tuple | None = None               # the build's own status (text, fraction), if any
    fields: dict = field(default_factory=dict)      # the latest JobSnapshot fields
    points: list[BatchPoint] = field(default_factory=list)
    task: Any = None                         # the summary ObjectRef of the training task
    final: list | None = None                # ObjectRefs: final snapshot, model bytes, context

    def view(self, since_step: int, queue_position: int | None) -> dict:
        start = bisect.bisect_right(self.points, since_step, key=lambda p: p.step)
        return {"id": self.id, "owner": self.owner, **self.meta, "state": self.state,
                "error": self.error, "queue_position": queue_position,
                "stop": self.stop, "worker": self.worker, "stage": self.stage,
                "fields": self.fields,
                "points": self.points[start:], "final": self.final}


class RunHub:
    """Every run of the cluster, by owner. See the module docstring."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._owners: dict[str, list[str]] = {}
        self._order = itertools.count()
        self._watchers: set[asyncio.Task] = set()

    # ---- web servers --------------------------------------------------------------------------
    async def submit(self, owner: str, run_id: str, meta: dict, spec: bytes,
                     options: dict) -> str | None:
        """Start a run (or queue it, until a node has its resources). Returns None, or the
        one-line reason it is refused."""
        runs = self._owners.setdefault(owner, [])
        for other in runs:
            if self._runs[other].state in ACTIVE:
                return f"you already have a training {self._runs[other].state}; stop it first"
        run = _Run(run_id, owner, dict(meta), next(self._order),
                   int(meta.get("max_batch_points", 20_000)))
        self._runs[run_id] = run
        runs.append(run_id)
        # Forget the oldest finished runs beyond the cap (their results leave the object store).
        finished = [r for r in runs if self._runs[r].state in FINISHED]
        for old in finished[: max(0, len(runs) - MAX_RUNS_PER_OWNER)]:
            runs.remove(old)
            self._runs.pop(old, None)
        me = ray.get_runtime_context().current_actor
        refs = train_in_worker.options(num_returns=4, max_retries=0, **options).remote(
            me, run_id, spec)
        run.task = refs[0]
        watcher = asyncio.get_running_loop().create_task(self._watch(run, refs))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return None

    def poll(self, run_id: str, since_step: int = 0) -> dict | None:
        """The run as its owner's page draws it, with the batch points after `since_step`."""
        run = self._runs.get(run_id)
        return None if run is None else run.view(since_step, self._queue_position(run))

    def runs_of(self, owner: str) -> list[dict]:
        """The owner's runs, oldest first (without their batch points)."""
        return [self._runs[r].view(1 << 62, self._queue_position(self._runs[r]))
                for r in self._owners.get(owner, [])]

    def stop(self, owner: str, run_id: str) -> bool:
        """Stop a run (only its owner can): a queued one never starts; a running one stops
        after its current batch."""
        run = self._runs.get(run_id)
        if run is None or run.owner != owner or run.state in FINISHED:
            return False
        run.stop = True
        if run.state == JobState.QUEUED:
            # Still waiting for resources: the task is taken out of the cluster's queue.
            run.state = JobState.STOPPED
            ray.cancel(run.task)
        elif run.state == JobState.RUNNING:
            run.state = JobState.STOPPING
        return True

    def forget(self, owner: str, run_id: str) -> None:
        """Drop a finished run: its results leave the object store."""
        run = self._runs.get(run_id)
        if run is not None and run.owner == owner and run.state in FINISHED:
            self._owners[owner].remove(run_id)
            del self._runs[run_id]

    def counts(self) -> dict[str, int]:
        states = [r.state for r in self._runs.values()]
        return {"running": sum(s in (JobState.RUNNING, JobState.STOPPING) for s in states),
                "queued": states.count(JobState.QUEUED)}

    # ---- the training task ------------------------------------------------------------------
    def push(self, run_id: str, update: dict) -> bool:
        """What the worker streams (every 0.25 s): its process, the snapshot's fields, the new
        batch points. Returns whether the run should stop."""
        run = self._runs.get(run_id)
        if run is None:
            return True                      # forgotten meanwhile: nobody is watching
        if "worker" in update:
            run.worker = update["worker"]
        if "stage" in update:
            run.stage = update["stage"]
        if run.state in FINISHED:
            return True                      # cancelled while queued, or already ended
        if "fields" in update:
            run.fields = update["fields"]
            state = JobState(run.fields["state"])
            if run.stop and state == JobState.RUNNING:
                state = JobState.STOPPING
            run.state, run.error = state, run.fields.get("error")
        elif run.state == JobState.QUEUED and not run.stop:
            run.state = JobState.RUNNING
        if update.get("points"):
            run.points.extend(update["points"])
            del run.points[: max(0, len(run.points) - run.max_points)]
        return run.stop

    async def _watch(self, run: _Run, refs: list) -> None:
        """Wait for the task to end: its summary says how; an error says its worker died."""
        try:
            summary = await refs[0]
        except ray.exceptions.TaskCancelledError:
            run.state = JobState.STOPPED
            return
        except Exception as exc:  # noqa: BLE001 - WorkerCrashedError, NodeDiedError, ...
            if run.state not in FINISHED:
                run.state = JobState.FAILED
                run.error = f"{WORKER_LOST} ({type(exc).__name__})"
            return
        run.state, run.error = JobState(summary["state"]), summary["error"]
        run.final = list(refs[1:])
        run.points = []                      # the final snapshot holds the whole curve

    def _queue_position(self, run: _Run) -> int | None:
        if run.state != JobState.QUEUED:
            return None
        return 1 + sum(1 for r in self._runs.values()
                       if r.state == JobState.QUEUED and r.order < run.order)


def hub(name: str = HUB_NAME) -> Any:
    """This cluster's RunHub actor, created by the first server that asks (on the head node).
    Another `name` is another registry: runs in one never see the other's (tests)."""
    actor = ray.remote(RunHub)
    return actor.options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_concurrency=1000, resources={"node:__internal_head__": 0.001},
    ).remote()
