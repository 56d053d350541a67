"""Build a layer spec as a real Keras model: the oracle the calculator is tested against.

`to_keras(input_shape, layers)` uses the functional API and gives every Keras layer the
spec's resolved name, so a test can compare each `model.get_layer(name).output.shape`
and `model.count_params()` with `cnnlab.calc.analysis.analyze`. Keras is imported inside the
function: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.calc.analysis import analyze, resolve
from cnnlab.calc.spec import INPUT_NAME, LayerSpec


def to_keras(input_shape: Sequence[int], layers: Sequence[LayerSpec], name: str = "cnnlab"):
    """The `keras.Model` that `layers` describe on `input_shape` (checked by `analyze` first,
    so a bad spec raises the calculator's SpecError, not a Keras error)."""
    analyze(input_shape, layers)
    return build_unchecked(input_shape, resolve(layers), name)


def build_unchecked(input_shape: Sequence[int], layers: Sequence[LayerSpec],
                    name: str = "cnnlab"):
    """Build resolved `layers` without the calculator's checks, so Keras decides alone
    (tests use this to show that what the calculator rejects, Keras cannot build)."""
    import keras

    from cnnlab.nets.layers import LocalResponseNormalization

    inputs = keras.Input(shape=tuple(input_shape), name=INPUT_NAME)
    tensors = {INPUT_NAME: inputs}
    output = inputs
    for spec in layers:
        kind = spec.kind
        kernel = tuple(spec.kernel) if not isinstance(spec.kernel, int) else spec.kernel
        if kind == "conv":
            layer = keras.layers.Conv2D(
                spec.filters, kernel, strides=spec.strides or (1, 1), padding=spec.padding,
                use_bias=spec.use_bias, activation=spec.activation, groups=spec.groups,
                name=spec.name)
        elif kind == "maxpool":
            layer = keras.layers.MaxPooling2D(kernel, strides=spec.strides,
                                              padding=spec.padding, name=spec.name)
        elif kind == "avgpool":
            layer = keras.layers.AveragePooling2D(kernel, strides=spec.strides,
                                                  padding=spec.padding, name=spec.name)
        elif kind == "dense":
            layer = keras.layers.Dense(spec.units, activation=spec.activation,
                                       use_bias=spec.use_bias, name=spec.name)
        elif kind == "flatten":
            layer = keras.layers.Flatten(name=spec.name)
        elif kind == "globalavgpool":
            layer = keras.layers.GlobalAveragePooling2D(name=spec.name)
        elif kind == "globalmaxpool":
            layer = keras.layers.GlobalMaxPooling2D(name=spec.name)
        elif kind == "batchnorm":
            layer = keras.layers.BatchNormalization(name=spec.name)
        elif kind == "dropout":
            layer = keras.layers.Dropout(spec.rate, name=spec.name)
        elif kind == "activation":
            layer = keras.layers.Activation(spec.activation, name=spec.name)
        elif kind == "lrn":
            layer = LocalResponseNormalization(spec.depth_radius, spec.lrn_bias, spec.alpha,
                                               spec.beta, name=spec.name)
        elif kind == "zeropad":
            top, bottom, left, right = spec.pad
            layer = keras.layers.ZeroPadding2D(((top, bottom), (left, right)), name=spec.name)
        elif kind == "concat":
            layer = keras.layers.Concatenate(axis=-1, name=spec.name)
        elif kind == "add":
            layer = keras.layers.Add(name=spec.name)
        else:  # unreachable: analyze() rejects unknown kinds
            raise ValueError(f"no Keras layer for kind {kind!r}")
        sources = [tensors[s] for s in spec.inputs]
        output = layer(sources if kind in ("concat", "add") else sources[0])
        tensors[spec.name] = output
    return keras.Model(inputs, output, name=name)
