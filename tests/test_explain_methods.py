"""Each explanation method against an independent statement of it, on tiny Keras models.

Oracles: closed forms (for a linear model y = w . x + b the gradient is w, Integrated
Gradients from a zero baseline is w * x, an occluding patch drops the score by the patch's
w . x; Grad-CAM++ on conv -> global average pooling -> dense has weights
ReLU(W_kc) / (2 + W_kc mean(A^k))), Keras's own outputs, and a plain loop for Score-CAM.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cnnlab.vision import gradcam
from cnnlab.vision.explain import access_for, cams, gradients, last_conv_layer, occlusion
from cnnlab.vision.explain.maps import channel_magnitude, normalize


def linear_model(shape=(6, 5, 2), classes=3, seed=0, softmax=False):
    """y = W^T flatten(x) + b (logits), optionally followed by a softmax in the same Dense."""
    import keras

    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(classes, activation="softmax" if softmax else None)])
    kernel = rng.normal(size=(int(np.prod(shape)), classes)).astype(np.float32)
    bias = rng.normal(size=classes).astype(np.float32)
    model.layers[-1].set_weights([kernel, bias])
    return model, kernel, bias


def small_cnn(shape=(8, 8, 3), filters=5, classes=4, seed=0):
    """conv (relu) -> global average pooling -> dense softmax: CAM's architecture."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Conv2D(filters, 3, activation="relu", name="conv"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(classes, activation="softmax", name="head")])


@pytest.fixture(scope="module")
def linear():
    return linear_model()


@pytest.fixture(scope="module")
def x_linear():
    return np.random.default_rng(1).uniform(-1, 1, (6, 5, 2)).astype(np.float32)


def test_vanilla_gradient_of_a_linear_model_is_its_weights(linear, x_linear):
    model, kernel, _ = linear
    for c in range(3):
        result = gradients.vanilla_gradients(access_for(model), x_linear, c)
        w = kernel[:, c].reshape(6, 5, 2)
        np.testing.assert_allclose(result.raw, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.map, np.abs(w).max(-1) / np.abs(w).max(), rtol=1e-5)
        assert result.map.shape == (6, 5) and result.seconds > 0


def test_integrated_gradients_of_a_linear_model_is_w_times_x(linear, x_linear):
    model, kernel, _ = linear
    result = gradients.integrated_gradients(access_for(model), x_linear, 2)
    w = kernel[:, 2].reshape(6, 5, 2)
    np.testing.assert_allclose(result.raw, w * x_linear, rtol=1e-4, atol=1e-6)
    assert result.details["completeness_gap"] < 1e-4 and result.details["steps"] == 32
    np.testing.assert_allclose(result.map, normalize(np.abs((w * x_linear).sum(-1))), atol=1e-5)


def test_occlusion_of_a_linear_model_is_the_patch_drop(linear, x_linear):
    model, kernel, _ = linear
    w = kernel[:, 1].reshape(6, 5, 2)
    contribution = (w * x_linear).sum(-1)                  # each pixel's share of y^c
    # Non-overlapping 2x2 patches on 6x5: columns start at 0, 2 and the edge 3.
    result = occlusion.occlusion(access_for(model), x_linear, 1, patch=2, stride=2)
    expected = np.zeros((6, 5))
    count = np.zeros((6, 5))
    for top in (0, 2, 4):
        for left in (0, 2, 3):
            drop = contribution[top:top + 2, left:left + 2].sum()
            expected[top:top + 2, left:left + 2] += drop
            count[top:top + 2, left:left + 2] += 1
    np.testing.assert_allclose(result.raw, expected / count, rtol=1e-4, atol=1e-5)
    assert result.details["positions"] == 9
    # A 1x1 patch, stride 1: each pixel's own contribution exactly.
    single = occlusion.occlusion(access_for(model), x_linear, 1, patch=1, stride=1)
    np.testing.assert_allclose(single.raw, contribution, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(single.map, normalize(contribution), atol=1e-5)


def test_quick_occlusion_lays_the_patches_side_by_side(linear, x_linear):
    """`occlusion_overlap=False` (quick explanations): stride = patch, a quarter of the
    forward passes of the half-overlapping default, the same rule applied to each patch."""
    from cnnlab.vision.explain.report import ExplainOptions, compute_method

    model, _, _ = linear
    access = access_for(model)
    side = compute_method(access, "occlusion", x_linear, 1,
                          ExplainOptions(occlusion_patch=2, occlusion_overlap=False))
    same = occlusion.occlusion(access, x_linear, 1, patch=2, stride=2)
    np.testing.assert_allclose(side.raw, same.raw, rtol=1e-6)
    overlapping = compute_method(access, "occlusion", x_linear, 1,
                                 ExplainOptions(occlusion_patch=2))
    assert (side.details["positions"], overlapping.details["positions"]) == (9, 20)


def test_smoothgrad_of_relu_is_the_gaussian_cdf():
    """y = w . ReLU(x): the gradient is w_i [x_i > 0], so SmoothGrad's expectation under
    N(0, sigma^2) noise is w_i Phi(x_i / sigma)."""
    import keras

    rng = np.random.default_rng(2)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    kernel = rng.normal(size=(16, 2)).astype(np.float32)
    model.layers[-1].set_weights([kernel, np.zeros(2, np.float32)])
    x = rng.uniform(-1, 1, (4, 4, 1)).astype(np.float32)
    result = gradients.smoothgrad(access_for(model), x, 0, samples=4000, noise_level=0.2, seed=3,
                                  batch_size=1000)
    sigma = 0.2 * (x.max() - x.min())
    expected = kernel[:, 0].reshape(4, 4, 1) * norm.cdf(x / sigma)
    # Monte-Carlo: each entry's standard error is at most |w| * 0.5 / sqrt(4000) < 0.02 |w|.
    np.testing.assert_allclose(result.raw, expected, atol=0.08 * np.abs(kernel[:, 0]).max())
    vanilla = gradients.vanilla_gradients(access_for(model), x, 0).raw
    assert np.abs(result.raw - vanilla).max() > 0.1  # noise made a difference


def test_grad_cam_plus_plus_closed_form_on_conv_gap_dense():
    import keras

    model = small_cnn()
    x = np.random.default_rng(4).uniform(-1, 1, (8, 8, 3)).astype(np.float32)
    maps = keras.Model(model.inputs, model.get_layer("conv").output)([x[None]]).numpy()[0]
    kernel = model.get_layer("head").get_weights()[0]
    access = access_for(model)
    assert access.layer == "conv"
    for c in range(4):
        result = cams.grad_cam_plus_plus(access, x, c)
        w = kernel[:, c]
        weights = np.maximum(w, 0) / (2 + w * maps.mean(axis=(0, 1)))
        cam = np.maximum(maps @ weights, 0)
        np.testing.assert_allclose(normalize(result.raw), normalize(cam), atol=1e-5)
        assert result.map.shape == (8, 8)
        np.testing.assert_allclose(result.map, normalize(gradcam.upsample(cam, (8, 8))), atol=1e-5)


def test_grad_cam_in_the_lab_is_the_classify_pages_grad_cam():
    model = small_cnn()
    x = np.random.default_rng(5).uniform(-1, 1, (8, 8, 3)).astype(np.float32)
    result = cams.grad_cam(access_for(model), x, 2)
    reference = gradcam.grad_cam(model, x, 2, layer="conv")
    np.testing.assert_array_equal(result.raw, reference.heatmap)
    assert result.details["score"] == reference.score


def test_score_cam_batched_equals_looped():
    model = small_cnn(shape=(12, 12, 3), filters=9, classes=3, seed=1)
    access = access_for(model)
    x = np.random.default_rng(6).uniform(-1, 1, (12, 12, 3)).astype(np.float32)
    for c in range(3):
        looped = cams.score_cam_looped(access, x, c)
        for batch_size in (4, 32):  # several batches, one batch
            batched = cams.score_cam(access, x, c, batch_size=batch_size)
            np.testing.assert_allclose(batched.details["weights"], looped.details["weights"], atol=2e-6)
            np.testing.assert_allclose(batched.raw, looped.raw, atol=1e-5)
            np.testing.assert_allclose(batched.map, looped.map, atol=1e-5)
    # The weights are the class's probability on each masked input (Keras, independently).
    maps = access.feature_maps(x)
    k = int(np.argmax(maps.reshape(-1, 9).std(0)))
    up = gradcam.upsample(maps[:, :, k], (12, 12))
    masked = x * ((up - up.min()) / (up.max() - up.min()))[:, :, None]
    expected = model(masked[None], training=False).numpy()[0, 0]
    assert cams.score_cam(access, x, 0).details["weights"][k] == pytest.approx(expected, abs=2e-6)
    capped = cams.score_cam(access, x, 0, max_channels=2)
    assert capped.details["channels"] == 2 and np.count_nonzero(capped.details["weights"]) == 2


def test_integrated_gradients_completeness_on_a_small_cnn():
    """Attributions sum to y^c(x) - y^c(0) within 1 %; y^c from Keras (the softmax
    layer's input times its kernel plus bias)."""
    import keras

    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    keras.utils.set_random_seed(7)
    model = training.build_model(training_config.TrainConfig(filters=(8, 8), dense_units=16))
    x = np.random.default_rng(7).uniform(0, 1, (28, 28, 1)).astype(np.float32)
    hidden = keras.Model(model.inputs, model.get_layer("dense1").output)
    kernel, bias = model.get_layer("output").get_weights()

    def logit(inp, c):
        return float((hidden([inp[None]]).numpy() @ kernel + bias)[0, c])

    for c in (0, 5):
        result = gradients.integrated_gradients(access_for(model), x, c)
        difference = logit(x, c) - logit(np.zeros_like(x), c)
        assert abs(result.raw.sum() - difference) <= 0.01 * abs(difference)
        assert result.details["completeness_gap"] <= 0.01
        assert result.details["score_difference"] == pytest.approx(difference, rel=1e-4, abs=1e-5)


def test_maps_are_on_the_input_grid_in_unit_range():
    from cnnlab.vision.explain import METHODS, compute_method

    model = small_cnn(shape=(16, 12, 3))
    x = np.random.default_rng(8).uniform(-1, 1, (16, 12, 3)).astype(np.float32)
    access = access_for(model)
    for method in METHODS:
        result = compute_method(access, method, x, 1)
        assert result.map.shape == (16, 12), method
        assert result.map.dtype == np.float32 and 0 <= result.map.min() and result.map.max() == pytest.approx(1)
    with pytest.raises(ValueError, match="class_index"):
        gradients.vanilla_gradients(access, x, 4)
    with pytest.raises(ValueError, match="shape"):
        gradients.vanilla_gradients(access, x[:8], 0)


def test_last_conv_layer_of_the_mnist_network_is_conv2():
    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    model = training.build_model(training_config.TrainConfig())
    assert last_conv_layer(model) == "conv2"  # pool2 follows it, and pooling is skipped
    assert channel_magnitude(np.array([[[1.0, -3.0]]])).tolist() == [[3.0]]


def test_a_network_loaded_from_a_keras_file_is_explained_like_the_original(tmp_path):
    """Keras calls a loaded Sequential model's layers once per `add`; Grad-CAM's probe and
    the gradients must still follow the one graph from the input to the class score."""
    import keras

    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    keras.utils.set_random_seed(3)
    model = training.build_model(training_config.TrainConfig(filters=(4, 6), dense_units=8))
    model.save(tmp_path / "digits.keras")
    loaded = keras.saving.load_model(tmp_path / "digits.keras")
    x = np.random.default_rng(10).uniform(0, 1, (28, 28, 1)).astype(np.float32)
    for method in (cams.grad_cam, cams.grad_cam_plus_plus, gradients.vanilla_gradients):
        a, b = method(access_for(model), x, 3), method(access_for(loaded), x, 3)
        np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5, atol=1e-6)
        assert np.abs(a.raw).max() > 0
