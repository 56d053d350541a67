"""The one Keras comparison: the calculator's numbers for a spec against the model Keras
builds from it (totals, trainable and frozen counts, every layer's shape and parameters)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnnlab.calc.analysis import analyze
from cnnlab.calc.keras_oracle import to_keras
from cnnlab.calc.spec import LayerSpec


def keras_numbers(model) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) parameters as Keras counts them."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return model.count_params(), trainable, frozen


def assert_equals_keras(input_shape: Sequence[int], layers: Sequence[LayerSpec], model=None):
    """Assert the calculator equals Keras for this spec; return the Keras model.

    `model` is the Keras model to compare with (built from the spec when not given)."""
    stats = analyze(input_shape, layers)
    model = model if model is not None else to_keras(input_shape, layers)
    assert (stats.total_params, stats.trainable_params, stats.non_trainable_params) == \
        keras_numbers(model)
    for layer in stats.layers:
        keras_layer = model.get_layer(layer.name)
        assert tuple(keras_layer.output.shape[1:]) == layer.output_shape, layer.name
        assert keras_layer.count_params() == layer.params, layer.name
    assert tuple(model.output.shape[1:]) == stats.output_shape
    return model
