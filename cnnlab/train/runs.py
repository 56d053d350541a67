"""A user's finished MNIST runs: which ones can be looked inside, the table that compares
them, and what is derived from a run once and kept with it (its test report, its .keras
file, its explanations and feature visualization) in `TrainingJob.extras`, so a page's
reruns do not compute them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

from cnnlab.train.datasets import Dataset
from cnnlab.train.export import model_bytes
from cnnlab.train.inside import analyze_test
from cnnlab.train.jobs import JobState, TrainingJob
from cnnlab.train.metrics import TestReport
from cnnlab.vision.explain import (
    ExplainOptions,
    ExplanationReport,
    FeatureVisualization,
    explain,
    visualize_features,
)
from cnnlab.vision.explain.features import default_units
from cnnlab.vision.explain.lab import methods_for
from cnnlab.vision.explain.report import Progress, add_sanity

ENDED = (JobState.DONE, JobState.STOPPED)   # ran (fully or until Stop): curves and a model
KEEP_EXPLANATIONS = 16                      # explained test images kept per run (newest win)
FEATURE_STEPS = 256                         # gradient-ascent steps per feature visualization


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


def explanation_of(job: TrainingJob, index: int, x, class_index: int, options: ExplainOptions,
                   sanity: bool = False, progress: Progress | None = None,
                   compute: bool = True) -> ExplanationReport | None:
    """Every applicable method on test image `index` (input x) for `class_index`, computed
    once per run (with `sanity`, the cascade too, added to the kept report); with
    `compute=False` only what is already kept (None if nothing)."""
    store = job.extras.setdefault("explanations", {})
    key = (int(index), int(class_index), options)
    report = store.get(key)
    if not compute:
        return report
    if report is None:
        report = explain(job.model, x, class_index, methods_for(job.model), sanity=sanity,
                         progress=progress, options=options)
        store[key] = report
        while len(store) > KEEP_EXPLANATIONS:
            store.pop(next(iter(store)))
    elif sanity and report.sanity is None:
        add_sanity(job.model, x, report, options, progress)
    return report


def feature_layers(model) -> list[str]:
    """The units to visualize: the first two conv layers and the classes (the dense net,
    which has no filters: the classes only)."""
    try:
        return default_units(model)
    except ValueError:
        return [model.layers[-1].name]


def features_of(job: TrainingJob, progress: Progress | None = None,
                compute: bool = True) -> FeatureVisualization | None:
    """The run's feature visualization, computed once and kept (None before, with
    `compute=False`)."""
    if "features" not in job.extras and compute:
        job.extras["features"] = visualize_features(job.model, feature_layers(job.model),
                                                    steps=FEATURE_STEPS, progress=progress)
    return job.extras.get("features")
