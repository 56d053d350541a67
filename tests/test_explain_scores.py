"""Deletion / insertion where the answer is known, the sanity cascade's bookkeeping, and
the report a page draws from, on tiny Keras models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab.vision.explain import ExplainOptions, access_for, explain
from cnnlab.vision.explain.faithfulness import deletion_insertion
from cnnlab.vision.explain.sanity import spearman, top_blocks
from tests.test_explain_methods import small_cnn

REGION = [(1, 0), (1, 1), (2, 0), (2, 1)]  # the 4 pixels (of 16) the toy model counts


@pytest.fixture(scope="module")
def region_model():
    """Output 0 = the fraction of REGION's pixels still at 1 (a linear layer, no softmax)."""
    import keras

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    kernel = np.zeros((16, 2), np.float32)
    for row, col in REGION:
        kernel[row * 4 + col, 0] = 1 / len(REGION)
    model.layers[-1].set_weights([kernel, np.zeros(2, np.float32)])
    return model


def indicator() -> np.ndarray:
    m = np.zeros((4, 4), np.float32)
    for row, col in REGION:
        m[row, col] = 1.0
    return m


@pytest.mark.parametrize("steps", [16, 4])
def test_deletion_and_insertion_areas_of_the_perfect_and_the_reversed_map(region_model, steps):
    """N = 16 pixels, r = 4 count. Removing them first takes the output from 1 to 0 over
    the first r/N of the axis: area r/(2N) = 0.125; inserting them first: 1 - 0.125. The
    reversed map leaves them to the end: deletion 0.75 + 0.125, insertion 0.125."""
    access = access_for(region_model)
    x = np.ones((4, 4, 1), np.float32)
    good = deletion_insertion(access, x, indicator(), 0, steps=steps, insertion_start="fill")
    bad = deletion_insertion(access, x, 1 - indicator(), 0, steps=steps, insertion_start="fill")
    assert good.deletion_auc == pytest.approx(0.125, abs=1e-6)
    assert good.insertion_auc == pytest.approx(0.875, abs=1e-6)
    assert bad.deletion_auc == pytest.approx(0.875, abs=1e-6)
    assert bad.insertion_auc == pytest.approx(0.125, abs=1e-6)
    np.testing.assert_allclose(good.fractions, np.linspace(0, 1, steps + 1))
    assert good.deletion[0] == pytest.approx(1) and good.deletion[-1] == pytest.approx(0)
    assert good.insertion[0] == pytest.approx(0) and good.insertion[-1] == pytest.approx(1)


def test_insertion_from_a_blurred_canvas(region_model):
    """A constant image blurs to itself: inserting pixels changes nothing, the area is 1."""
    access = access_for(region_model)
    curves = deletion_insertion(access, np.ones((4, 4, 1), np.float32), indicator(), 0, steps=4)
    np.testing.assert_allclose(curves.insertion, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="map must be"):
        deletion_insertion(access, np.ones((4, 4, 1), np.float32), np.ones((3, 4)), 0)


def test_spearman_is_rank_correlation_and_zero_for_a_constant_map():
    a = np.array([[0.1, 0.5], [0.3, 0.9]])
    assert spearman(a, a ** 3) == pytest.approx(1.0)       # same order, other values
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros_like(a)) == 0.0           # a blank map ranks nothing


def test_explain_report_has_everything_a_page_draws():
    from PIL import Image

    model = small_cnn(shape=(12, 12, 3), filters=6, classes=3, seed=2)
    x = np.random.default_rng(9).uniform(-1, 1, (12, 12, 3)).astype(np.float32)
    probs = model(x[None], training=False).numpy()[0]
    before = [w.copy() for w in model.get_weights()]
    seen = []
    report = explain(model, x, sanity=True, progress=lambda f, text: seen.append(f),
                     options=ExplainOptions(faithfulness_steps=8))
    assert report.class_index == int(probs.argmax())
    assert report.output == pytest.approx(float(probs.max()), abs=1e-6)
    assert list(report.methods) == ["gradcam", "gradcam++", "scorecam", "gradients", "smoothgrad",
                                    "integrated_gradients", "occlusion"]
    for m in report.methods.values():
        assert m.map.shape == (12, 12) and m.seconds > 0
        assert 0 <= m.deletion_auc <= 1 and 0 <= m.insertion_auc <= 1
        assert [b for b, _ in m.randomized_similarity] == ["head", "conv"]  # top block first
        assert all(-1 <= r <= 1 for _, r in m.randomized_similarity)
        assert m.verdict().startswith(("passes", "fails"))
    # The caller's model is untouched by the cascade.
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert seen == sorted(seen) and seen[-1] == 1.0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["class"] == report.class_index
    assert data["methods"]["scorecam"]["map_shape"] == [12, 12]
    assert len(data["methods"]["gradcam"]["randomized_similarity"]) == 2
    assert data["methods"]["integrated_gradients"]["completeness_gap"] <= 0.01
    assert len(report.rows()) == 7
    view = Image.new("RGB", (120, 120), "white")
    assert report.overlay("occlusion", view).size == (120, 120)
    steps = report.randomized_overlays("gradcam", view)
    assert [(b, r) for b, r, _ in steps] == report.methods["gradcam"].randomized_similarity
    assert all(image.size == (120, 120) for _, _, image in steps)
    chosen = explain(model, x, class_index=int(probs.argmin()), methods=["gradcam"])
    assert chosen.class_index == int(probs.argmin()) and list(chosen.methods) == ["gradcam"]
    with pytest.raises(ValueError, match="unknown method"):
        explain(model, x, methods=["lime"])


def test_blocks_of_the_mnist_network_top_first():
    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    blocks = top_blocks(training.build_model(training_config.TrainConfig()))
    assert [b.name for b in blocks] == ["output", "dense1", "conv2", "conv1"]
