"""The explanation lab on Inception v3 (random test weights, offline) and on a Transfer
model (InceptionV3 nested as its base): Grad-CAM unchanged, Grad-CAM++ in closed form,
the blocks of the sanity cascade, the caller's model untouched."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.vision import gradcam, images
from cnnlab.vision.explain import ExplainOptions, access_for, cams, explain
from cnnlab.vision.explain.maps import normalize
from cnnlab.vision.explain.sanity import top_blocks

pytestmark = pytest.mark.slow  # Inception v3 on a CPU


@pytest.fixture(scope="module")
def model(inception_classifier):
    return inception_classifier.model


@pytest.fixture(scope="module")
def cat():
    return images.inception_input(images.sample_photo("chelsea"))


def test_grad_cam_is_unchanged_and_grad_cam_plus_plus_has_its_closed_form(model, cat):
    """Head: global average pooling of mixed10 (8 x 8 x 2048), then a softmax Dense W:
    d y^c / d A^k_ij = W_kc / 64 everywhere, so Grad-CAM++'s weights reduce to
    ReLU(W_kc) / (2 + W_kc mean(A^k))."""
    import keras

    access = access_for(model)
    assert access.layer == "mixed10"
    maps = keras.Model(model.inputs, model.get_layer("mixed10").output)([cat[None]]).numpy()[0]
    kernel = model.get_layer("predictions").get_weights()[0]
    c = int(model(cat[None], training=False).numpy()[0].argmax())
    lab = cams.grad_cam(access, cat, c)
    np.testing.assert_array_equal(lab.raw, gradcam.grad_cam(model, cat, c).heatmap)
    assert lab.map.shape == (299, 299)
    plus = cams.grad_cam_plus_plus(access, cat, c)
    w = kernel[:, c].astype(np.float64)
    expected = np.maximum(maps @ (np.maximum(w, 0) / (2 + w * maps.mean(axis=(0, 1)))), 0)
    np.testing.assert_allclose(normalize(plus.raw), normalize(expected), atol=1e-4)
    assert not np.allclose(normalize(plus.raw), lab.raw, atol=1e-2)  # a different map


def test_inception_blocks_top_first(model):
    names = [b.name for b in top_blocks(model)]
    assert names[:4] == ["predictions", "mixed10", "mixed9", "mixed8"] and names[-1] == "mixed0"
    assert len(names) == 12  # the classifier and the 11 mixed blocks (mixed9_1 ... are inside)


def test_explain_a_transfer_model_with_its_nested_base(transfer_style_model):
    model = transfer_style_model
    x = images.inception_input(images.sample_photo("coffee"), size=150)
    before = [w.copy() for w in model.get_weights()]
    report = explain(model, x, methods=["gradcam", "gradcam++", "gradients"], sanity=True,
                     options=ExplainOptions(sanity_depth=2, faithfulness_steps=8))
    assert report.layer == "mixed10"
    for m in report.methods.values():
        assert m.map.shape == (150, 150)
        assert [b for b, _ in m.randomized_similarity] == ["head", "mixed10"]
    np.testing.assert_array_equal(report.methods["gradcam"].map,
                                  cams.grad_cam(access_for(model), x, report.class_index).map)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
