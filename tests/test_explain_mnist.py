"""The explanation lab on the Train page's network, trained briefly on the offline MNIST
sample (the seed CNN, 5 epochs of 4,000 digits: 312 steps, about 97 % test accuracy).

What the sanity cascade shows on this network (output, dense1, conv2, conv1 re-drawn
cumulatively; mean Spearman rho with the trained model's map over one test digit per
class, seed 0): Grad-CAM falls at once (0.18 after the output layer alone, 0.2-0.3 after),
as Adebayo et al. found, and so does occlusion (0.01-0.21: it asks the network itself).
Vanilla gradients (0.79 -> 0.64) and SmoothGrad (0.72 -> 0.61) fall slowly: a random
network's input gradient still outlines the digit. Integrated Gradients stays at 0.99:
from a black baseline every background pixel gets exactly 0 (x - x' = 0 there), so the
map is the digit's shape whatever the weights. Grad-CAM++ (0.95 -> 0.88) and Score-CAM
(0.68 -> 0.93) stay high: positive combinations of conv2's activation maps, which follow
the strokes even with random filters.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.vision.explain import ExplainOptions, explain, visualize_features
from cnnlab.vision.explain.features import _unit_probe, grid_image
from tests.inception_fixtures import FIXTURE_DIR

pytestmark = pytest.mark.slow  # trains a network once (about 25 s), then reuses the file


@pytest.fixture(scope="module")
def mnist():
    from cnnlab.train import datasets

    return datasets.mnist_sample()


@pytest.fixture(scope="module")
def trained(mnist):
    import keras

    from cnnlab.train import config as training_config
    from cnnlab.train import model as training

    path = FIXTURE_DIR / f"mnist_seed_cnn_5_epochs_keras{keras.__version__}.keras"
    if path.is_file():
        return keras.saving.load_model(path)
    keras.utils.set_random_seed(0)
    model = training.build_model(training_config.TrainConfig())
    model.fit(training.to_inputs(mnist.x_train), training.one_hot(mnist.y_train),
              batch_size=64, epochs=5, verbose=0)
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.keras")
    model.save(partial)
    partial.replace(path)
    return model


@pytest.fixture(scope="module")
def digits(mnist):
    from cnnlab.train import model as training

    return training.to_inputs(mnist.x_test[:3])


def test_the_network_learned(trained, mnist):
    from cnnlab.train import model as training

    probs = trained.predict(training.to_inputs(mnist.x_test), verbose=0)
    assert (probs.argmax(1) == mnist.y_test).mean() > 0.9


def test_sanity_cascade_grad_cam_similarity_falls_with_the_top_layer(trained, digits):
    before = [w.copy() for w in trained.get_weights()]
    first = {}
    for x in digits:
        report = explain(trained, x, sanity=True, methods=["gradcam", "integrated_gradients"])
        for name, m in report.methods.items():
            assert [b for b, _ in m.randomized_similarity] == ["output", "dense1", "conv2", "conv1"]
            first.setdefault(name, []).append(m.randomized_similarity[0][1])
    assert np.mean(first["gradcam"]) < 0.5          # the map changed: it depends on the weights
    assert np.mean(first["integrated_gradients"]) > 0.9  # the black baseline pins the background
    assert report.methods["gradcam"].verdict().startswith("passes")
    assert report.methods["integrated_gradients"].verdict().startswith("fails")
    for a, b in zip(before, trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)         # the student's model is untouched


def test_faithful_maps_beat_their_reverse(trained, digits):
    """Deleting what occlusion and SmoothGrad call important kills the class faster, and
    inserting it restores the class faster, than the same maps reversed."""
    from cnnlab.vision.explain import access_for
    from cnnlab.vision.explain.faithfulness import deletion_insertion

    access = access_for(trained)
    report = explain(trained, digits[0], methods=["occlusion", "smoothgrad"],
                     options=ExplainOptions(faithfulness_steps=28))
    for m in report.methods.values():
        reverse = deletion_insertion(access, digits[0], 1 - m.map, report.class_index, steps=28)
        assert m.deletion_auc < reverse.deletion_auc - 0.2, m.method
        assert m.insertion_auc > reverse.insertion_auc, m.method


def test_feature_visualization_finds_what_each_unit_wants(trained):
    result = visualize_features(trained, steps=256)
    assert [(g.layer, g.kind, g.target, g.images.shape) for g in result.grids] == [
        ("conv1", "filter", "neuron", (32, 28, 28, 1)), ("conv2", "filter", "channel", (64, 28, 28, 1)),
        ("output", "class", "class", (10, 28, 28, 1))]
    for grid in result.grids:
        assert grid.images.min() >= 0 and grid.images.max() <= 1
        assert np.all(grid.objective > grid.start_objective)   # ascent worked for every unit
        # Unit k responds more to its own image than to the other units' images on average.
        values = np.asarray(_unit_probe(trained, [grid.layer], grid.target)(grid.images)[0])
        own = np.diag(values)                                   # values: (image, unit)
        others = (values.sum(0) - own) / (len(own) - 1)
        assert np.mean(own > others) >= 0.9, grid.layer
    # A first-layer neuron is linear in its 3 x 3 pixels, so its best image in [0, 1] is
    # white where the kernel is positive and black where it is negative.
    conv1 = result.grids[0]
    assert conv1.window == (13, 13, 3, 3)                      # centre of the 26 x 26 map
    patterns = conv1.display_images[..., 0]                     # (32, 3, 3)
    kernel = np.moveaxis(trained.get_layer("conv1").get_weights()[0][:, :, 0, :], -1, 0)
    clear = np.abs(kernel) > 0.1 * np.abs(kernel).max(axis=(1, 2), keepdims=True)
    assert np.mean((patterns[clear] > 0.5) == (kernel[clear] > 0)) > 0.95
    # Each class's image is read as that class by the network.
    classes = result.grids[-1].images
    assert (trained.predict(classes, verbose=0).argmax(1) == np.arange(10)).sum() >= 9
    sheet = grid_image(result.grids[1].display_images, columns=8)
    assert sheet.shape == (8 * 29 - 1, 8 * 29 - 1) and sheet.dtype == np.uint8
