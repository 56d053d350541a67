"""Grad-CAM on Inception v3's mixed10, checked against a closed form computed with Keras.

Inception v3's head is global average pooling then a Dense layer, so the gradient of
logit c with respect to A^k_ij is W[k, c] / 64 everywhere: Grad-CAM must equal
ReLU(A @ W[:, c]) normalised (Zhou et al.'s CAM). The maps A come from a Keras sub-model
ending at mixed10, the weights W from the Dense layer: an independent oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.vision import gradcam, images


@pytest.fixture(scope="module")
def model(inception_classifier):
    return inception_classifier.model  # the test weights, loaded once per session


@pytest.fixture(scope="module")
def cat():
    return images.inception_input(images.sample_photo("chelsea"))


@pytest.fixture(scope="module")
def mixed10(model):
    import keras

    return keras.Model(model.input, model.get_layer("mixed10").output)


def cam_oracle(model, mixed10, x, class_index):
    maps = mixed10(x[None], training=False).numpy()[0]  # Keras computes the feature maps
    kernel = model.get_layer("predictions").get_weights()[0]
    cam = np.maximum(maps @ kernel[:, class_index], 0.0)
    return cam / cam.max()


def test_grad_cam_top_class_equals_cam_closed_form(model, mixed10, cat):
    result = gradcam.grad_cam(model, cat)
    probs = model(cat[None], training=False).numpy()[0]
    assert result.class_index == int(probs.argmax())
    assert result.layer == "mixed10" and result.heatmap.shape == (8, 8)
    assert result.heatmap.min() >= 0 and result.heatmap.max() == pytest.approx(1.0)
    np.testing.assert_allclose(result.heatmap, cam_oracle(model, mixed10, cat, result.class_index), atol=1e-4)


def test_grad_cam_for_a_chosen_class_differs_and_matches(model, mixed10, cat):
    probs = model(cat[None], training=False).numpy()[0]
    chosen = int(probs.argsort()[-2])  # the runner-up: the class picker's typical choice
    result = gradcam.grad_cam(model, cat, class_index=chosen)
    assert result.class_index == chosen
    np.testing.assert_allclose(result.heatmap, cam_oracle(model, mixed10, cat, chosen), atol=1e-4)
    top = gradcam.grad_cam(model, cat)
    assert not np.allclose(result.heatmap, top.heatmap)  # a different class, a different map
    with pytest.raises(ValueError, match="class_index"):
        gradcam.grad_cam(model, cat, class_index=1000)


def test_overlay_is_the_view_with_the_map_on_it(model, cat):
    view = images.network_view(images.sample_photo("chelsea"))
    heat = np.zeros((8, 8), np.float32)
    heat[0, 0] = 1.0
    blended = np.asarray(gradcam.overlay(view, heat, alpha=0.5), dtype=int)
    assert blended.shape == (299, 299, 3)
    # Top-left is pushed towards red (hot), bottom-right towards blue (cold).
    base = np.asarray(view, dtype=int)
    assert blended[2, 2, 0] - blended[2, 2, 2] > base[2, 2, 0] - base[2, 2, 2]
    assert blended[296, 296, 2] - blended[296, 296, 0] > base[296, 296, 2] - base[296, 296, 0]
    np.testing.assert_array_equal(gradcam.colorize(np.array([0.0, 1.0]))[[0, 1]],
                                  [[0, 0, 128], [128, 0, 0]])


def test_grad_cam_through_a_nested_base_model(transfer_style_model):
    """Transfer's model nests InceptionV3 (its mixed10 is inside the base) under a
    standardisation layer and a softmax head: logit_c = ((mean_ij A - mu) / sigma) @ W + b,
    so Grad-CAM = ReLU(A @ (W[:, c] / sigma)), normalised."""
    import keras

    from cnnlab.transfer import model as transfer

    model = transfer_style_model
    x = images.inception_input(images.sample_photo("coffee"), size=150)
    probs = model(x[None], training=False).numpy()[0]
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model)
                and any(inner.name == "mixed10" for inner in layer.layers))
    maps = keras.Model(base.input, base.get_layer("mixed10").output)(x[None]).numpy()[0]
    standardize = model.get_layer(transfer.STANDARDIZE_NAME)
    sigma = np.maximum(np.sqrt(np.asarray(standardize.variance).reshape(-1)), keras.config.epsilon())
    kernel = model.get_layer(transfer.HEAD_NAME).get_weights()[0]
    for class_index in (None, int(probs.argmin())):
        result = gradcam.grad_cam(model, x, class_index)
        c = int(probs.argmax()) if class_index is None else class_index
        assert result.class_index == c and result.heatmap.shape == (3, 3)
        cam = np.maximum(maps @ (kernel[:, c] / sigma), 0.0)
        expected = cam / cam.max() if cam.max() > 0 else cam
        np.testing.assert_allclose(result.heatmap, expected, atol=1e-4)
