"""What every explanation method needs from a Keras image classifier, traced once per model.

Any Keras classifier of images works: Inception v3 (Grad-CAM's `mixed10`), a Transfer-page
model (InceptionV3 nested as its base) and the Train page's MNIST network (Sequential).
The feature maps and the class scores come from `gradcam._probe`, Grad-CAM's own probing
of the last conv layer, so every CAM method sees the same tensors as Grad-CAM.

Two class scores are used, each where its paper uses it:

- `logits`: y^c, the class score before the softmax (Grad-CAM, Grad-CAM++, gradients,
  SmoothGrad, Integrated Gradients, occlusion). A softmax Dense head is recomputed from
  its input (as Grad-CAM does); a separate softmax layer is skipped.
- `outputs`: the model's own output for class c, i.e. the class probability for a
  classifier ending in a softmax (Score-CAM, deletion and insertion).

Keras and TensorFlow are imported inside the functions that need them.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.vision import gradcam

if TYPE_CHECKING:  # pragma: no cover
    import keras

_access: weakref.WeakKeyDictionary[Any, dict[str, ModelAccess]] = weakref.WeakKeyDictionary()
_access_lock = threading.Lock()


def _flat_layers(model) -> list:
    """Every layer in graph order, nested models expanded in place."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def last_conv_layer(model: keras.Model) -> str:
    """The layer Grad-CAM looks at: `mixed10` in Inception v3 (also nested in a Transfer
    model), else the last layer with a spatial (4-D) output that is not a pooling or
    input layer: `conv2` in the seed's MNIST network, a final ReLU in a ResNet."""
    import keras

    if gradcam.DEFAULT_LAYER in {layer.name for layer in _flat_layers(model)}:
        return gradcam.DEFAULT_LAYER
    skip = (keras.layers.InputLayer, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
            keras.layers.Dropout)
    best = None
    for layer in _flat_layers(model):
        if isinstance(layer, skip):
            continue
        try:
            rank = len(layer.output.shape)
        except (AttributeError, ValueError):  # a layer never called symbolically
            continue
        if rank == 4:
            best = layer.name
    if best is None:
        raise ValueError(f"{model.name!r} has no convolutional (4-D) layer to explain with CAMs")
    return best


def layer_tensors(model: keras.Model) -> tuple[list, dict[str, tuple[Any, Any]]]:
    """(inputs, {layer name: (its input, its output)}) on one graph of the top-level layers.

    A Sequential model is chained anew on a fresh input: loaded from a .keras file, its
    layers were called once per `add`, and `layer.input` may lie on another graph than
    `model.inputs`.
    """
    import keras

    if not isinstance(model, keras.Sequential):
        return model.inputs, {layer.name: (layer.input, layer.output) for layer in model.layers
                              if not isinstance(layer, keras.layers.InputLayer)}
    image = keras.Input(shape=model.input_shape[1:])
    x, tensors = image, {}
    for layer in model.layers:
        y = layer(x)
        tensors[layer.name] = (x, y)
        x = y
    return [image], tensors


def _scores_function(last):
    """fn(input of the last layer) -> class scores before any softmax."""
    import keras

    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and last.activation is keras.activations.softmax):
        return lambda inputs: inputs
    return gradcam._to_scores(last)


class ModelAccess:
    """Traced functions for one model and one conv layer (one trace each, no retracing)."""

    def __init__(self, model: keras.Model, layer: str | None = None) -> None:
        import tensorflow as tf

        self._model = weakref.ref(model)  # the cache below must not keep the model alive
        if layer is None:
            try:
                layer = last_conv_layer(model)
            except ValueError:  # no conv layer (a linear model): input-gradient methods only
                layer = None
        self.layer = layer
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])  # (H, W, C)
        if len(self.input_shape) != 3:
            raise ValueError(f"expected an image model with input (H, W, C), got {model.input_shape}")
        self.n_classes = int(model.output_shape[-1])
        last = model.layers[-1]
        if layer is None:
            import keras

            inputs, tensors = layer_tensors(model)
            head = tensors[last.name][0]
            probe = keras.Model(inputs, [head, head])
        else:
            probe, _ = gradcam._probe(model, layer)
        to_scores = _scores_function(last)
        batch = tf.TensorSpec((None, *self.input_shape), tf.float32)
        klass = tf.TensorSpec((), tf.int32)

        @tf.function(input_signature=[batch])
        def outputs(x):
            _, head = probe(x, training=False)
            return last(head, training=False)

        @tf.function(input_signature=[batch])
        def maps_and_logits(x):
            maps, head = probe(x, training=False)
            return maps, to_scores(head)

        @tf.function(input_signature=[batch, klass])
        def input_gradients(x, c):
            with tf.GradientTape() as tape:
                tape.watch(x)
                _, head = probe(x, training=False)
                score = to_scores(head)[:, c]
                # The examples are independent (inference mode), so the gradient of the
                # sum is each example's own gradient.
                total = tf.reduce_sum(score)
            return tape.gradient(total, x), score

        self._outputs = outputs
        self._maps_and_logits = maps_and_logits
        self._input_gradients = input_gradients
        self.probe, self.to_scores = probe, to_scores

    @property
    def model(self) -> keras.Model:
        model = self._model()
        if model is None:
            raise RuntimeError("the model of this ModelAccess no longer exists")
        return model

    # ---- numpy in, numpy out, in batches --------------------------------------------------
    def outputs(self, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """The model's outputs (n, classes): probabilities for a softmax classifier."""
        x = np.asarray(x, np.float32)
        return np.concatenate([self._outputs(x[i:i + batch_size]).numpy()
                               for i in range(0, len(x), batch_size)])

    def logits(self, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Class scores before the softmax (n, classes)."""
        x = np.asarray(x, np.float32)
        return np.concatenate([self._maps_and_logits(x[i:i + batch_size])[1].numpy()
                               for i in range(0, len(x), batch_size)])

    def require_layer(self) -> str:
        if self.layer is None:
            raise ValueError(f"{self.model.name!r} has no convolutional layer: "
                             "the CAM methods do not apply")
        return self.layer

    def feature_maps(self, x: np.ndarray) -> np.ndarray:
        """The conv layer's maps (h, w, K) for one input (H, W, C)."""
        self.require_layer()
        return self._maps_and_logits(np.asarray(x, np.float32)[None])[0].numpy()[0]

    def input_gradients(self, x: np.ndarray, class_index: int,
                        batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(d y^c / d x for each input (n, H, W, C), y^c for each input (n,))."""
        x = np.asarray(x, np.float32)
        grads, scores = [], []
        for i in range(0, len(x), batch_size):
            g, s = self._input_gradients(x[i:i + batch_size], np.int32(class_index))
            grads.append(g.numpy())
            scores.append(s.numpy())
        return np.concatenate(grads), np.concatenate(scores)

    def check_class(self, class_index: int) -> int:
        if not 0 <= int(class_index) < self.n_classes:
            raise ValueError(f"class_index must be in [0, {self.n_classes}), got {class_index}")
        return int(class_index)

    def check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"expected one input of shape {self.input_shape}, got {x.shape}")
        return x


def access_for(model: keras.Model, layer: str | None = None) -> ModelAccess:
    """The (cached) `ModelAccess` of a model that lives on (the page's shared Inception)."""
    with _access_lock:
        per_model = _access.setdefault(model, {})
        key = layer or ""
        if key not in per_model:
            per_model[key] = ModelAccess(model, layer)
        return per_model[key]
