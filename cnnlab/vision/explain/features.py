"""Feature visualization: what does filter 7 look for? Activation maximization (Erhan et al.
2009; Olah et al. 2017, "Feature Visualization", Distill) for the student's network.

For each unit (a filter of the first and second conv layers, each output class) an image
is optimised by gradient ascent (Adam) to maximise it:

- a filter of a deeper layer ("channel"): the mean over positions of its pre-activation
  (before the ReLU, so that a filter silent on the starting image still gets a gradient);
- a filter of the layer that sees the pixels ("neuron"): the pre-activation at the centre
  of its map. The channel objective is useless there: averaged over positions, a linear
  filter responds only to the image's mean brightness, so its best image is uniformly
  white or black. The centre neuron's best image is its pattern, inside its receptive
  field (`FeatureGrid.window`; no jitter: a shifted image would be a different neuron);
- a class: its score before the softmax.

Every unit of a layer is optimised at once: a batch of images, image k for unit k.
The image is not optimised pixel by pixel but through Lucid's decorrelated
parametrisation (lucid/optvis/param/spatial.py, color.py): a Fourier spectrum scaled by
1/frequency (so that all frequencies learn at the same rate and high-frequency noise does
not win), for RGB inputs a colour-decorrelation matrix, then a sigmoid into the input's
range. Each step the rendered image is shifted by a random jitter of up to `jitter`
pixels (it is rendered 2 * jitter pixels larger and cropped), so the image must work
wherever it lands and does not exploit single pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras

# lucid/optvis/param/color.py: the square root of ImageNet's colour correlation (from its SVD).
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]], np.float32)

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class FeatureGrid:
    layer: str                  # a conv layer's name, or the output layer's for classes
    kind: str                   # "filter" or "class"
    target: str                 # "channel", "neuron" or "class": what was maximised
    images: np.ndarray          # (K, H, W, C) float32 in [0, 1]: image k maximises unit k
    objective: np.ndarray       # (K,) each unit's objective on its final image
    start_objective: np.ndarray  # (K,) ... on the random starting image
    window: tuple[int, int, int, int] | None = None  # a neuron's receptive field: top, left, h, w

    @property
    def display_images(self) -> np.ndarray:
        """The images, cut to the receptive field for a neuron (the rest never mattered)."""
        if self.window is None:
            return self.images
        top, left, h, w = self.window
        return self.images[:, top:top + h, left:left + w, :]


@dataclass(frozen=True)
class FeatureVisualization:
    grids: list[FeatureGrid]
    steps: int
    seconds: float


def fourier_scale(height: int, width: int, decay_power: float = 1.0) -> np.ndarray:
    """Per-frequency scale of Lucid's fft_image: 1 / frequency, times sqrt(h w)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(width, height)) ** decay_power
    return (scale * np.sqrt(width * height)).astype(np.float32)


def _unit_probe(model: keras.Model, layer_names: list[str], target: str = "channel"):
    """A function images -> list of (n, units) objectives, one per requested layer
    (`target` for conv layers: "channel" or "neuron")."""
    import keras

    layers = [model.get_layer(name) for name in layer_names]
    last = model.layers[-1]
    from cnnlab.vision.explain.access import _scores_function, layer_tensors

    inputs, tensors = layer_tensors(model)
    probe = keras.Model(inputs, [tensors[layer.name][0] for layer in layers])

    def objectives(images):
        inputs = probe([images], training=False)  # model.inputs is a list of one
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        out = []
        for layer, inp in zip(layers, inputs, strict=True):
            if layer is last:
                out.append(_scores_function(last)(inp))
            elif isinstance(layer, keras.layers.Conv2D):
                # The layer's own compute dtype (float16 under mixed precision), then float32.
                pre = layer.convolution_op(inp, keras.ops.cast(layer.kernel, inp.dtype))
                if layer.use_bias:
                    pre = pre + keras.ops.cast(layer.bias, inp.dtype)
                pre = keras.ops.cast(pre, "float32")
                if target == "neuron":
                    out.append(pre[:, pre.shape[1] // 2, pre.shape[2] // 2, :])
                else:
                    out.append(keras.ops.mean(pre, axis=(1, 2)))
            else:
                raise ValueError(f"{layer.name!r} is neither a Conv2D layer nor the output layer")
        return out

    return objectives


def default_units(model: keras.Model, conv_layers: int = 2) -> list[str]:
    """The first `conv_layers` Conv2D layers and the output layer, by name."""
    import keras

    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"{model.name!r} has no top-level Conv2D layer to visualize")
    return [*convs[:conv_layers], model.layers[-1].name]


def target_of(model: keras.Model, layer_name: str) -> str:
    """"class" for the output layer, "neuron" for a conv layer fed by the image itself,
    "channel" for a deeper conv layer."""
    from cnnlab.vision.explain.access import layer_tensors

    if model.get_layer(layer_name) is model.layers[-1]:
        return "class"
    inputs, tensors = layer_tensors(model)
    return "neuron" if tensors[layer_name][0] is inputs[0] else "channel"


def receptive_field(model: keras.Model, layer_name: str) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the input pixels the centre neuron of a conv layer
    sees: where its gradient is not zero for random inputs."""
    import tensorflow as tf

    probe = _unit_probe(model, [layer_name], "neuron")
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (4, *model.input_shape[1:])),
                    tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(probe(x)[0])
    seen = np.abs(tape.gradient(total, x).numpy()).sum(axis=(0, 3)) > 0
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _optimise(model, layer_name: str, units: int, steps: int, learning_rate: float,
              jitter: int, seed: int, input_range: tuple[float, float], target: str):
    """(images (K, H, W, C) in [0, 1], objective at the end, objective at the start)."""
    import tensorflow as tf

    height, width, channels = (int(d) for d in model.input_shape[1:])
    big_h, big_w = height + 2 * jitter, width + 2 * jitter
    objective = _unit_probe(model, [layer_name], target)
    rng = np.random.default_rng(seed)
    spectrum = tf.Variable(rng.normal(0, 0.01, (2, units, channels, big_h, big_w // 2 + 1))
                           .astype(np.float32))
    scale = tf.constant(fourier_scale(big_h, big_w))
    if channels == 3:
        corr = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))
        colour = tf.constant(corr.T)
    else:
        colour = None  # one channel: nothing to decorrelate
    low, high = input_range
    m = tf.Variable(tf.zeros_like(spectrum))
    v = tf.Variable(tf.zeros_like(spectrum))
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def render(params):
        complex_spec = tf.complex(params[0] * scale, params[1] * scale)
        image = tf.signal.irfft2d(complex_spec, fft_length=(big_h, big_w)) / 4.0  # Lucid's 4
        image = tf.transpose(image, (0, 2, 3, 1))                               # (K, h, w, C)
        if colour is not None:
            image = tf.reshape(tf.reshape(image, (-1, 3)) @ colour, tf.shape(image))
        return tf.sigmoid(image)

    def unit_objective(image01):
        values = objective(low + (high - low) * image01)[0]
        return tf.linalg.diag_part(values[:, :units])

    @tf.function
    def step(dy, dx, t):
        with tf.GradientTape() as tape:
            full = render(spectrum)
            image = tf.ensure_shape(full[:, dy:dy + height, dx:dx + width, :],
                                    (units, height, width, channels))
            value = unit_objective(image)
            loss = -tf.reduce_sum(value)
        g = tape.gradient(loss, spectrum)
        m.assign(beta1 * m + (1 - beta1) * g)
        v.assign(beta2 * v + (1 - beta2) * g * g)
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        spectrum.assign_sub(learning_rate * m_hat / (tf.sqrt(v_hat) + eps))
        return value

    def centre():
        return render(spectrum)[:, jitter:jitter + height, jitter:jitter + width, :]

    start_value = unit_objective(centre()).numpy()
    for t in range(1, steps + 1):
        dy, dx = (int(d) for d in rng.integers(0, 2 * jitter + 1, 2))
        step(tf.constant(dy), tf.constant(dx), tf.constant(float(t)))
    final = centre()
    return final.numpy(), unit_objective(final).numpy(), start_value


def visualize_features(model: keras.Model, layers: list[str] | None = None, steps: int = 256,
                       learning_rate: float = 0.05, jitter: int = 2, seed: int = 0,
                       input_range: tuple[float, float] = (0.0, 1.0),
                       progress: Progress | None = None) -> FeatureVisualization:
    """One grid per layer (default: the first two conv layers and the classes).

    input_range: the values the model expects (MNIST [0, 1]; Inception [-1, 1]).
    """
    import keras

    start = time.perf_counter()
    layers = layers or default_units(model)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    grids = []
    for i, name in enumerate(layers):
        if progress is not None:
            progress(i / len(layers), f"visualizing {name}")
        layer = model.get_layer(name)
        is_output = layer is model.layers[-1]
        units = int(layer.units if isinstance(layer, keras.layers.Dense) else layer.filters)
        target = target_of(model, name)
        images, final, first = _optimise(model, name, units, steps, learning_rate,
                                         0 if target == "neuron" else jitter, seed + i,
                                         input_range, target)
        window = receptive_field(model, name) if target == "neuron" else None
        grids.append(FeatureGrid(name, "class" if is_output else "filter", target, images,
                                 final, first, window))
    if progress is not None:
        progress(1.0, "feature visualization done")
    return FeatureVisualization(grids, steps, time.perf_counter() - start)


def grid_image(images: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Images (K, H, W, C) in [0, 1] tiled into one uint8 picture (grey for C == 1), with
    mid-grey gaps (black and white patterns stay apart)."""
    images = np.asarray(images, np.float32)
    k, h, w, c = images.shape
    rows = -(-k // columns)
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), 0.5, np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        sheet[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = image
    out = np.rint(np.clip(sheet, 0, 1) * 255).astype(np.uint8)
    return out[..., 0] if c == 1 else out
