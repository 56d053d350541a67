"""Inside a trained network: its first-layer filters, the activation maps of every conv
layer, and its predictions on the test set (confusion matrix, worst mistakes).

Keras is imported only inside the functions that run a model.
"""

from __future__ import annotations

import numpy as np

from cnnlab.train.config import INPUT_SHAPE
from cnnlab.train.datasets import Dataset
from cnnlab.train.metrics import TestReport, predict_probs, test_report
from cnnlab.train.model import to_inputs


def conv_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def first_layer_filters(model) -> np.ndarray:
    """The first conv layer's kernels as (filters, kh, kw) for a 1-channel input."""
    convs = conv_layers(model)
    if not convs:
        raise ValueError("this network has no convolutional layer")
    kernel = np.asarray(convs[0].get_weights()[0], np.float32)   # (kh, kw, c_in, filters)
    return np.transpose(kernel.mean(axis=2), (2, 0, 1))


def activation_maps(model, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(layer name, (h, w, channels) float32) for every conv layer, for one input image."""
    import keras

    convs = conv_layers(model)
    if not convs:
        return []
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    x = np.asarray(image, np.float32).reshape(1, *INPUT_SHAPE)
    outputs = probe([x], training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [(layer.name, np.asarray(out, np.float32)[0])
            for layer, out in zip(convs, outputs, strict=True)]


def analyze_test(model, dataset: Dataset) -> TestReport:
    """The test report of `model` on the dataset's test images."""
    probs = predict_probs(model, to_inputs(dataset.x_test), batch_size=512)
    return test_report(probs, dataset.y_test, list(dataset.class_names))
