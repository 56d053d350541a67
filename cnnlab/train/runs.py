"""A user's finished MNIST runs: which ones can be looked inside, the table that compares
them, and what is derived from a run once and kept with it (its test report, its .keras
file) in `TrainingJob.extras`, so a page's reruns do not compute them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

from cnnlab.train.datasets import Dataset
from cnnlab.train.export import model_bytes
from cnnlab.train.inside import analyze_test
from cnnlab.train.jobs import JobState, TrainingJob
from cnnlab.train.metrics import TestReport

ENDED = (JobState.DONE, JobState.STOPPED)   # ran (fully or until Stop): curves and a model


def ended_runs(jobs: Iterable[TrainingJob], with_model: bool = False) -> list[TrainingJob]:
    """The runs that trained to their end or until Stop (failed ones have nothing to show)."""
    return [j for j in jobs if j.state in ENDED and (j.model is not None or not with_model)]


def inspectable(job: TrainingJob | None) -> bool:
    """Whether `job` has a trained model to look inside."""
    return job is not None and job.state in ENDED and job.model is not None


def dataset_of(job: TrainingJob) -> Dataset | None:
    """The dataset the run was tested on (None for a job built without one)."""
    return job.setup.context.get("dataset") if job.setup else None


def report_of(job: TrainingJob,
              computing: AbstractContextManager | None = None) -> TestReport | None:
    """The run's test report, predicted once (inside `computing`, e.g. a spinner) and kept."""
    if "analysis" not in job.extras:
        dataset = dataset_of(job)
        if dataset is None:
            return None
        with computing or nullcontext():
            job.extras["analysis"] = analyze_test(job.model, dataset)
    return job.extras["analysis"]


def keras_file(job: TrainingJob) -> bytes:
    """The trained model as a .keras file, serialised once and kept."""
    if "keras_bytes" not in job.extras:
        job.extras["keras_bytes"] = model_bytes(job.model)
    return job.extras["keras_bytes"]


def compare_rows(jobs: Iterable[TrainingJob]) -> list[dict[str, object]]:
    """One row per run for the "Compare runs" table, numbers formatted as shown."""
    rows = []
    for job in jobs:
        s = job.snapshot()
        last = s.epochs_log[-1] if s.epochs_log else {}
        test = s.result.get("test_accuracy")
        rows.append({"run": job.id, "configuration": s.label, "state": str(s.state),
                     "parameters": f"{s.info.get('params', 0):,}",
                     "epochs": len(s.epochs_log),
                     "val acc.": f"{last['val_accuracy']:.1%}" if "val_accuracy" in last else "",
                     "test acc.": f"{test:.1%}" if test is not None else "",
                     "images/s": f"{s.images_per_second or 0:,.0f}"})
    return rows
