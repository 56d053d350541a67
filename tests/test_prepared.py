"""The warm-up's traced model, kept for the first run of its configuration
(cnnlab.train.prepared): that run starts without tracing and trains exactly what a freshly
built model would (same seed, same curve, batch by batch)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.train import prepared
from cnnlab.train.config import TrainConfig
from cnnlab.train.datasets import Dataset
from cnnlab.train.model import job_for


def data(seed: int, n: int = 320) -> Dataset:
    """Random 28x28 pictures, 10 classes: a test's data, not a dataset anyone sees."""
    rng = np.random.default_rng(seed)
    return Dataset("mnist", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                   np.arange(n) % 10, rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
                   np.arange(40) % 10, "random pixels (a test)", "test",
                   tuple(str(i) for i in range(10)))


def run(config: TrainConfig, dataset: Dataset, extend=None):
    job = job_for(config, dataset, extend=extend)
    job.start(on_finish=lambda _job: None)
    assert job.wait(300) and job.state == "done", job.error
    return job


@pytest.fixture(autouse=True)
def empty_pool():
    prepared.clear()
    yield
    prepared.clear()


def warm_up_like(config: TrainConfig):
    """What the warm-up does: one short run whose model is kept, traced."""
    state: list = []
    job = run(config, data(seed=1), extend=lambda setup: state.extend(
        prepared.optimizer_state(setup.model)))
    prepared.keep(config, job.model, state)
    return job.model


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_the_first_run_trains_the_traced_model_and_its_curve_is_a_fresh_models(dropout):
    config = TrainConfig(epochs=2, batch_size=32, filters=(4, 8), dense_units=16,
                         dropout=dropout, seed=3)
    traced = warm_up_like(config.__class__(**{**config.__dict__, "epochs": 1}))
    assert len(prepared.ready()) == 1
    first = run(config, data(seed=2))
    assert first.model is traced                  # no new model: nothing traced again
    assert prepared.ready() == []                 # taken once
    fresh = run(config, data(seed=2))
    assert fresh.model is not traced
    assert [p.loss for p in first.snapshot().batches] == \
        [p.loss for p in fresh.snapshot().batches]
    assert first.result == fresh.result
    for a, b in zip(first.model.get_weights(), fresh.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_another_configuration_builds_its_own():
    warm_up_like(TrainConfig(epochs=1, batch_size=32, filters=(4, 8), dense_units=16))
    other = run(TrainConfig(epochs=1, batch_size=32, filters=(4, 8), dense_units=16,
                            learning_rate=0.01), data(seed=2))
    assert prepared.ready() != []                 # still waiting for its own configuration
    assert other.snapshot().batches


def test_a_model_never_trained_is_not_kept():
    from cnnlab.train.model import build_model

    config = TrainConfig(filters=(4, 8), dense_units=16)
    prepared.keep(config, build_model(config), [])
    assert prepared.ready() == []
