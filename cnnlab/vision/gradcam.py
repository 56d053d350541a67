"""Grad-CAM: where in the image a class's evidence lies (Selvaraju et al., 2017).

For a class c and a conv layer's feature maps A^k (Inception v3: 'mixed10', 8 x 8 x 2048):

    alpha_k = mean_ij d y^c / d A^k_ij            (global-average-pooled gradients)
    L^c     = ReLU(sum_k alpha_k A^k)              (the heat map, 8 x 8)

y^c is the class score before the softmax, as in the paper: when the model ends in a
softmax Dense layer, its pre-activation is recomputed from the layer's input. The map is
normalised to [0, 1] and upsampled onto the 299 x 299 image the network saw.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    import keras

DEFAULT_LAYER = "mixed10"  # Inception v3's last conv block

_functions: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_functions_lock = threading.Lock()


@dataclass(frozen=True)
class GradCam:
    heatmap: np.ndarray  # (h, w) float32 in [0, 1], the conv layer's resolution
    class_index: int
    score: float         # y^c, the class's logit
    layer: str


def _to_scores(last):
    """fn(input of the last layer) -> class scores: the logits when it is a softmax Dense."""
    import keras

    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        return lambda inputs: keras.ops.matmul(inputs, last.kernel) + last.bias
    return last  # no softmax Dense at the end: differentiate its outputs


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in getattr(model, "layers", []))


def _probe(model: keras.Model, layer: str):
    """(keras.Model x -> [feature maps of `layer`, input of the last layer], scores fn).

    `layer` may sit in the model itself (keras.applications.InceptionV3) or inside a nested
    base model of a chain such as Transfer's image -> [augmentation] -> InceptionV3 base ->
    standardisation -> softmax head; the chain is then rebuilt on a fresh input with the
    base giving both its feature maps and its output (the same layers, the same weights).
    """
    import keras

    last = model.layers[-1]
    if _has_layer(model, layer) and not isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, [model.get_layer(layer).output, last.input]), \
            _to_scores(last)
    # The chain is also rebuilt for a Sequential model: loaded from a .keras file, its layers
    # were called once per `add`, so `layer.output` may lie on another graph than its input.
    chain = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    holders = [lyr for lyr in chain if lyr.name == layer or _has_layer(lyr, layer)]
    if not holders:
        raise ValueError(f"no layer named {layer!r} in {model.name!r} or its nested models")
    holder = holders[0]
    if holder.name != layer:
        both = keras.Model(holder.inputs, [holder.get_layer(layer).output, holder.output])
    image = keras.Input(shape=model.input_shape[1:])
    x, maps = image, None
    for step in chain[:-1]:
        if step is holder and holder.name == layer:
            x = maps = step(x)
        elif step is holder:
            maps, x = both(x)
        else:
            x = step(x)  # augmentation layers are identities at inference
    return keras.Model(image, [maps, x]), _to_scores(last)


def _gradient_function(model: keras.Model, layer: str):
    """A traced function x, class -> (feature maps, their gradients, score), one per model."""
    with _functions_lock:
        per_model = _functions.setdefault(model, {})
        if layer in per_model:
            return per_model[layer]
        import tensorflow as tf

        probe, to_scores = _probe(model, layer)
        size = model.input_shape[1:]

        @tf.function(input_signature=[tf.TensorSpec((1, *size), tf.float32),
                                      tf.TensorSpec((), tf.int32)])
        def compute(x, class_index):
            with tf.GradientTape() as tape:
                maps, head = probe(x, training=False)
                tape.watch(maps)
                score = to_scores(head)[0, class_index]
            return maps, tape.gradient(score, maps), score

        per_model[layer] = compute
        return compute


def grad_cam(model: keras.Model, x: np.ndarray, class_index: int | None = None,
             layer: str = DEFAULT_LAYER) -> GradCam:
    """Grad-CAM of one preprocessed input `x` (h, w, 3) for `class_index` (default: top class)."""
    batch = np.asarray(x, dtype=np.float32)[None]
    if class_index is None:
        class_index = int(np.argmax(model(batch, training=False)[0]))
    n_classes = int(model.output_shape[-1])
    if not 0 <= class_index < n_classes:
        raise ValueError(f"class_index must be in [0, {n_classes}), got {class_index}")
    maps, grads, score = _gradient_function(model, layer)(batch, np.int32(class_index))
    maps, grads = maps.numpy()[0], grads.numpy()[0]
    alpha = grads.mean(axis=(0, 1))                # one weight per feature map
    cam = np.maximum(maps @ alpha, 0.0)            # ReLU(sum_k alpha_k A^k)
    peak = float(cam.max())
    heatmap = (cam / peak if peak > 0 else cam).astype(np.float32)
    return GradCam(heatmap, class_index, float(score), layer)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map to RGB uint8 with the 'jet' ramp (blue = none, red = most)."""
    t = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * t - c), 0, 1) for c in (3, 2, 1)], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The coarse map bilinearly resized to `size` (width, height)."""
    image = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def overlay(view: Image.Image, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The heat map blended over the image the network saw."""
    colour = colorize(upsample(heatmap, view.size)).astype(np.float32)
    base = np.asarray(view.convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.rint((1 - alpha) * base + alpha * colour).astype(np.uint8))
