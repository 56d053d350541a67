"""The three live experiments of the Architectures page, computed with real Keras / TF ops.

1. CNN vs dense net (seed answer 1): parameters of a dense and a conv layer on the same image,
   and translation: a conv layer's feature map shifts with the image, a dense layer's does not.
2. Max pooling vs a strided convolution (seed answer 4): the same feature maps through both;
   the pool has no parameters, the conv has k*k*C_in*C_out + C_out.
3. Local Response Normalization (seed answer 5): `tf.nn.local_response_normalization` on real
   feature maps, with the paper's formula as a numpy reference.

Only numpy, Pillow and the pure-Python specs at import time; TensorFlow / Keras load inside the
functions that run an experiment, so the page can draw its first content before TensorFlow is
imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.nets.builders import ALEXNET_LRN

# ITU-R BT.601 luma weights: how the filter bank turns RGB into brightness.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def prepare_photo(image: Any, size: int = 128) -> np.ndarray:
    """A photo (PIL image or HxWx3 uint8 array) as a float32 (size, size, 3) array in [0, 255].

    The centre square is cropped and resized, so every experiment sees the same pixels.
    """
    from PIL import Image

    if size < 16:
        raise ValueError(f"photo size {size} is too small; use at least 16 pixels")
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise ValueError(f"expected an HxWx3 photo, got an array of shape {array.shape}")
        if array.dtype != np.uint8:
            array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array[..., :3])
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def gabor_bank(orientations: int = 8, size: int = 7, wavelength: float = 5.0,
               sigma: float = 2.0) -> np.ndarray:
    """Odd Gabor filters (edge detectors) on luminance, shape (size, size, 3, orientations).

    Channels are ordered by angle, so neighbouring channels detect neighbouring orientations:
    that is the neighbourhood Local Response Normalization works across.
    """
    half = size // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    kernels = []
    for i in range(orientations):
        theta = math.pi * i / orientations
        xr = x * math.cos(theta) + y * math.sin(theta)
        yr = -x * math.sin(theta) + y * math.cos(theta)
        g = np.exp(-(xr**2 + yr**2) / (2 * sigma**2)) * np.sin(2 * math.pi * xr / wavelength)
        g -= g.mean()  # no response to flat regions
        g /= np.abs(g).sum()
        kernels.append(g)
    bank = np.stack(kernels, axis=-1)  # (size, size, C)
    return (bank[:, :, None, :] * LUMA[None, None, :, None]).astype(np.float32)


def orientation_labels(orientations: int = 8) -> list[str]:
    return [f"{180 * i / orientations:.1f}°" for i in range(orientations)]


def feature_maps(photo: np.ndarray, orientations: int = 8) -> np.ndarray:
    """ReLU(conv(photo, Gabor bank)): real feature maps, float32 (H, W, orientations).

    Computed by a Keras Conv2D layer whose kernel is the Gabor bank (stride 1, mirrored
    borders, so the maps keep the photo's size).
    """
    import keras

    bank = gabor_bank(orientations)
    half = bank.shape[0] // 2
    # Mirror the borders instead of zero padding, which would draw a false edge round the photo.
    padded = np.pad(photo, ((half, half), (half, half), (0, 0)), mode="reflect")
    layer = keras.layers.Conv2D(orientations, bank.shape[:2], padding="valid",
                                activation="relu", use_bias=False)
    layer.build((None, *padded.shape))
    layer.set_weights([bank])
    # Gabor responses of a [0, 255] photo are in the tens: scale so the strongest is ~255,
    # the range of AlexNet's early activations that its LRN constants were chosen for.
    out = np.asarray(layer(padded[None].astype(np.float32)))[0]
    peak = float(out.max())
    # (a flat photo has only rounding noise, ~1e-5: leave it at zero rather than amplify it)
    return (out * (255.0 / peak) if peak > 1e-2 else np.zeros_like(out)).astype(np.float32)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays (0.0 when either is constant)."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom > 0 else 0.0


# --- experiment 1: CNN vs dense -------------------------------------------------------------


def dense_vs_conv_params(height: int, width: int, channels: int, filters: int = 32,
                         kernel: int = 3, units: int = 1000) -> dict[str, int]:
    """Parameters of layers on an (height, width, channels) image.

    conv: kernel*kernel*channels*filters + filters (weights shared across positions);
    dense_same_output: a dense layer producing the conv's whole (height, width, filters) output;
    dense_units: a dense layer with `units` neurons on the flattened image.
    """
    inputs = height * width * channels
    outputs = height * width * filters
    return {
        "conv": kernel * kernel * channels * filters + filters,
        "dense_same_output": inputs * outputs + outputs,
        "dense_units": inputs * units + units,
    }


@dataclass(frozen=True)
class ShiftExperiment:
    image: np.ndarray            # (S, S) luminance of the original window
    shifted: np.ndarray          # (S, S) the window moved by (dy, dx)
    conv_map: np.ndarray         # conv(image)
    conv_map_shifted: np.ndarray
    dense_map: np.ndarray        # dense(image) reshaped to (S, S)
    dense_map_shifted: np.ndarray
    shift: tuple[int, int]
    conv_params: int             # keras count_params()
    dense_params: int
    conv_equivariance: float     # corr(conv(shift x), shift(conv x)) on the interior
    dense_equivariance: float    # corr(dense(shift x), shift(dense x)) on the interior


def _window(gray: np.ndarray, size: int, margin: int, dy: int, dx: int) -> np.ndarray:
    return gray[margin + dy:margin + dy + size, margin + dx:margin + dx + size]


def shift_experiment(photo: np.ndarray, dy: int, dx: int, size: int = 40,
                     seed: int = 0) -> ShiftExperiment:
    """Move a camera window over the photo by (dy, dx) pixels; compare a conv and a dense layer.

    Both layers map the (size, size) window to a (size, size) response. The conv layer has one
    5x5 edge filter shared by every position; the dense layer has size**4 + size**2 weights
    (Glorot-initialised, seeded). "Shifting with the image" is measured as the correlation of
    f(shift x) with shift(f(x)) away from the borders: 1.0 means it moved exactly with the image.
    """
    import keras

    margin = 8
    if max(abs(dy), abs(dx)) > margin:
        raise ValueError(f"shift ({dy}, {dx}) is larger than the {margin}-pixel margin")
    gray = prepare_photo(photo, size + 2 * margin) @ LUMA
    image = _window(gray, size, margin, 0, 0)
    shifted = _window(gray, size, margin, dy, dx)
    batch = np.stack([image, shifted])[..., None].astype(np.float32)

    conv = keras.layers.Conv2D(1, 5, padding="same")
    conv.build((None, size, size, 1))
    edge = gabor_bank(4, size=5)[:, :, :, 1].sum(axis=2)  # the 45° edge detector, luminance
    conv.set_weights([edge[:, :, None, None].astype(np.float32), np.zeros(1, np.float32)])
    conv_out = np.asarray(conv(batch))[..., 0]

    dense = keras.layers.Dense(size * size,
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    dense.build((None, size * size))
    dense_out = np.asarray(dense(batch.reshape(2, -1))).reshape(2, size, size)

    # The window moved by (dy, dx), so an equivariant map of the new window at (y, x) equals the
    # old map at (y + dy, x + dx). Compare where both are defined and away from padded borders.
    border = 2 + max(abs(dy), abs(dx))
    inner = slice(border, size - border)

    def moved(a: np.ndarray) -> np.ndarray:
        return np.roll(a, (-dy, -dx), axis=(0, 1))[inner, inner]

    return ShiftExperiment(
        image=image, shifted=shifted,
        conv_map=conv_out[0], conv_map_shifted=conv_out[1],
        dense_map=dense_out[0], dense_map_shifted=dense_out[1],
        shift=(dy, dx),
        conv_params=int(conv.count_params()), dense_params=int(dense.count_params()),
        conv_equivariance=pearson(conv_out[1][inner, inner], moved(conv_out[0])),
        dense_equivariance=pearson(dense_out[1][inner, inner], moved(dense_out[0])),
    )


# --- experiment 2: max pooling vs strided convolution ---------------------------------------


@dataclass(frozen=True)
class PoolVsConv:
    maps: np.ndarray          # input feature maps (H, W, C_in)
    pooled: np.ndarray        # MaxPooling2D output (H', W', C_in)
    strided: np.ndarray       # Conv2D(stride) output (H', W', C_out), untrained Glorot weights
    kernel: int
    stride: int
    pool_params: int          # keras count_params(): 0
    conv_params: int          # keras count_params(): k*k*C_in*C_out + C_out
    conv_formula: str


def pool_vs_strided_conv(maps: np.ndarray, kernel: int = 2, stride: int = 2,
                         out_channels: int | None = None, seed: int = 0) -> PoolVsConv:
    """Apply MaxPooling2D(kernel, stride) and Conv2D(out_channels, kernel, stride) to `maps`."""
    import keras

    if kernel < 1 or stride < 1:
        raise ValueError(f"kernel {kernel} and stride {stride} must be at least 1")
    c_in = maps.shape[-1]
    c_out = out_channels or c_in
    pool = keras.layers.MaxPooling2D(kernel, strides=stride, padding="same")
    conv = keras.layers.Conv2D(c_out, kernel, strides=stride, padding="same",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    x = maps[None].astype(np.float32)
    pooled = np.asarray(pool(x))[0]
    strided = np.asarray(conv(x))[0]
    return PoolVsConv(
        maps=maps, pooled=pooled, strided=strided, kernel=kernel, stride=stride,
        pool_params=int(pool.count_params()), conv_params=int(conv.count_params()),
        conv_formula=(f"{kernel}×{kernel}×{c_in}×{c_out} + {c_out} = "
                      f"{kernel * kernel * c_in * c_out + c_out:,}"),
    )


# --- experiment 3: Local Response Normalization ---------------------------------------------

LRN_FORMULA = (
    r"b_{x,y}^{c} = a_{x,y}^{c} \Big/ \left(k + \alpha \sum_{j=\max(0,\,c-r)}^{\min(N-1,\,c+r)}"
    r" \left(a_{x,y}^{j}\right)^2\right)^{\beta}"
)


def lrn_reference(maps: np.ndarray, depth_radius: int, bias: float, alpha: float,
                  beta: float) -> np.ndarray:
    """The formula above in numpy (N channels on the last axis, r = depth_radius, k = bias)."""
    a = maps.astype(np.float64)
    squares = a**2
    n = a.shape[-1]
    sums = np.zeros_like(a)
    for c in range(n):
        lo, hi = max(0, c - depth_radius), min(n - 1, c + depth_radius)
        sums[..., c] = squares[..., lo:hi + 1].sum(axis=-1)
    return (a / (bias + alpha * sums) ** beta).astype(np.float32)


def lrn(maps: np.ndarray, depth_radius: int = ALEXNET_LRN["depth_radius"],
        bias: float = ALEXNET_LRN["lrn_bias"], alpha: float = ALEXNET_LRN["alpha"],
        beta: float = ALEXNET_LRN["beta"]) -> np.ndarray:
    """`tf.nn.local_response_normalization` on (H, W, C) maps (AlexNet's constants unless
    given)."""
    import tensorflow as tf

    check_lrn_args(depth_radius, bias, alpha, beta)
    out = tf.nn.local_response_normalization(maps[None].astype(np.float32), depth_radius=depth_radius,
                                             bias=bias, alpha=alpha, beta=beta)
    return np.asarray(out)[0]


def check_lrn_args(depth_radius: int, bias: float, alpha: float, beta: float) -> None:
    if depth_radius < 0:
        raise ValueError(f"depth_radius {depth_radius} must be 0 or more")
    if bias <= 0 and alpha <= 0:
        raise ValueError(f"bias {bias} and alpha {alpha} would divide by zero")
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha {alpha} and beta {beta} must not be negative")


@dataclass(frozen=True)
class LRNExperiment:
    before: np.ndarray          # (H, W, C)
    after: np.ndarray           # (H, W, C)
    mean_before: np.ndarray     # (C,) mean activation per channel
    mean_after: np.ndarray
    pixel: tuple[int, int]      # the strongest position, where inhibition is largest
    pixel_before: np.ndarray    # (C,) activations across channels at `pixel`
    pixel_after: np.ndarray
    strongest_channel: int      # the channel of the strongest activation at `pixel`
    divisor: float              # before / after there: (k + alpha * sum)^beta
    quiet_divisor: float        # k^beta: the divisor where neighbouring maps are silent
    kept: float                 # sum(after) / sum(before): how much activity survives
    max_abs_error: float        # |tf - numpy formula|, a live check of the formula shown


def lrn_experiment(maps: np.ndarray, depth_radius: int = ALEXNET_LRN["depth_radius"],
                   bias: float = ALEXNET_LRN["lrn_bias"], alpha: float = ALEXNET_LRN["alpha"],
                   beta: float = ALEXNET_LRN["beta"]) -> LRNExperiment:
    after = lrn(maps, depth_radius, bias, alpha, beta)
    reference = lrn_reference(maps, depth_radius, bias, alpha, beta)
    # The strongest position away from the zero-padded border, where inhibition is largest.
    edge = 4 if min(maps.shape[:2]) > 16 else 0
    strongest = maps.max(axis=-1)[edge:maps.shape[0] - edge, edge:maps.shape[1] - edge]
    y, x = np.unravel_index(int(np.argmax(strongest)), strongest.shape)
    y, x = y + edge, x + edge
    total = float(maps.sum())
    channel = int(np.argmax(maps[y, x]))
    return LRNExperiment(
        before=maps, after=after,
        mean_before=maps.mean(axis=(0, 1)), mean_after=after.mean(axis=(0, 1)),
        pixel=(int(y), int(x)), pixel_before=maps[y, x], pixel_after=after[y, x],
        strongest_channel=channel,
        divisor=float(maps[y, x, channel] / after[y, x, channel]) if after[y, x, channel] else
        float("inf"),
        quiet_divisor=float(bias**beta),
        kept=float(after.sum()) / total if total > 0 else 1.0,
        max_abs_error=float(np.abs(after - reference).max()),
    )
