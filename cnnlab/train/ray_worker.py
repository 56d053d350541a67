"""One training run inside a Ray worker: today's `TrainingJob`, in the worker's process.

`train_in_worker` is the Ray task the run hub (cnnlab.train.ray_hub) launches with the run's
resource request (CPUs, GPUs). In the worker it rebuilds the job from its spec (the build
callable, seed, dtype policy: what `TrainingJob` takes), starts it, and every 0.25 s pushes
what changed (the snapshot's fields and the new batch points) to the hub, whose answer says
whether to stop. So Stop reaches the training within a quarter of a second plus a batch,
pages (redrawn every 0.5 s) get new points at each redraw, and the same seed gives the same
curve as in the server's threads: it is the same code.

When training ends it returns four objects into the cluster's object store, fetched only
when a page asks: a summary (state, error), the final snapshot (the whole curve), the
trained model as a .keras file, and the build's `context` (e.g. the test set).

A build that is a bound method of an object with `status() -> (text, fraction)` (a
`TransferRun`: "decoding 120 images", "bottleneck features: 64/120") has that streamed too,
for the page to show while the build prepares (`RayJob.stage`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import ray

from cnnlab.train.jobs import JobSnapshot, JobState, TrainingJob

# Pages redraw every 0.5 s; a push is one call to the hub, which serves every running run
# (about 1,400 calls/s on a loaded 2-core machine, see the README's "Scaling out").
PUSH_INTERVAL_S = 0.25
ENDED = (JobState.DONE, JobState.STOPPED)


def snapshot_fields(snap: JobSnapshot) -> dict[str, Any]:
    """A snapshot without its identity, queue position and batch points (sent apart)."""
    return {f.name: getattr(snap, f.name) for f in dataclasses.fields(snap)
            if f.name not in ("id", "queue_position", "batches")}


def _new_points(snap: JobSnapshot, after_step: int) -> list:
    points = []
    for point in reversed(snap.batches):
        if point.step <= after_step:
            break
        points.append(point)
    return points[::-1]


def job_from_spec(spec: dict) -> TrainingJob:
    return TrainingJob(spec["build"], seed=spec["seed"], dtype_policy=spec["dtype_policy"],
                       label=spec["label"], config=spec["config"],
                       max_batch_points=spec["max_batch_points"])


@ray.remote
def train_in_worker(hub, run_id: str, spec_bytes: bytes) -> tuple:
    """Train one run here; see the module docstring."""
    from ray import cloudpickle

    from cnnlab.train.export import model_bytes

    spec = cloudpickle.loads(spec_bytes)
    job = job_from_spec(spec)
    stage = getattr(getattr(spec["build"], "__self__", None), "status", None)
    worker = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    if ray.get(hub.push.remote(run_id, {"worker": worker})):
        job.stop()                            # stopped while it waited for this worker
    job.start(lambda _job: None)
    sent = 0
    while True:
        finished = job.wait(PUSH_INTERVAL_S)
        snap = job.snapshot()
        points = _new_points(snap, sent)
        if points:
            sent = points[-1].step
        update = {"fields": snapshot_fields(snap), "points": points}
        if callable(stage):
            update["stage"] = tuple(stage())
        if ray.get(hub.push.remote(run_id, update)):
            job.stop()
        if finished:
            break
    # The state is out (the hub has it); the results follow.
    model = model_bytes(job.model) if job.model is not None and snap.state in ENDED else None
    context = dict(job.setup.context) if job.setup is not None else {}
    return {"state": str(snap.state), "error": snap.error}, snap, model, context
