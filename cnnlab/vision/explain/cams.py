"""Class activation maps on the last conv layer: Grad-CAM, Grad-CAM++, Score-CAM.

A^k are the layer's feature maps (h x w each), y^c the class score before the softmax.

- Grad-CAM (Selvaraju et al. 2017): `cnnlab.vision.gradcam.grad_cam`, unchanged,
  upsampled onto the input.
- Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with Y^c = exp(y^c), so that the second and
  third derivatives are powers of the first for a piecewise-linear network):

      g = d y^c / d A^k_ij
      alpha^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)       (0 where the denominator is 0)
      w^c_k = sum_ij alpha^kc_ij ReLU(g)                    (exp(y^c) > 0 is a common factor)
      L = ReLU(sum_k w^c_k A^k)

- Score-CAM (Wang et al. 2020, as the authors' code computes it): each channel, upsampled
  to the input and min-max scaled to [0, 1], masks the input; the weight of channel k is
  the class's softmax output on that masked input, and L = ReLU(sum_k w_k A^k). Channels
  that are constant carry no mask and get weight 0. `score_cam` puts all masked inputs
  through the network in batches; `score_cam_looped` is the one-channel-at-a-time
  reference (used by the benchmark and a test).
"""

from __future__ import annotations

import time

import numpy as np

from cnnlab.vision import gradcam
from cnnlab.vision.explain.access import ModelAccess
from cnnlab.vision.explain.maps import Attribution, to_input_size


def grad_cam(access: ModelAccess, x: np.ndarray, class_index: int) -> Attribution:
    """Grad-CAM exactly as the Classify page computes it, on the input's grid."""
    start = time.perf_counter()
    result = gradcam.grad_cam(access.model, access.check_input(x), class_index,
                              layer=access.require_layer())
    heat = to_input_size(result.heatmap, access.input_shape[:2])
    return Attribution("gradcam", heat, time.perf_counter() - start, result.class_index,
                       raw=result.heatmap, details={"layer": access.layer, "score": result.score})


def grad_cam_plus_plus_weights(maps: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """w^c_k of Grad-CAM++ from the maps A (h, w, K) and d y^c / d A (h, w, K)."""
    g2 = grads.astype(np.float64) ** 2
    g3 = g2 * grads
    denominator = 2.0 * g2 + maps.sum(axis=(0, 1), dtype=np.float64) * g3
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    return (alpha * np.maximum(grads, 0.0)).sum(axis=(0, 1))


def grad_cam_plus_plus(access: ModelAccess, x: np.ndarray, class_index: int) -> Attribution:
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    compute = gradcam._gradient_function(access.model, access.require_layer())
    maps, grads, score = compute(x[None], np.int32(class_index))
    maps, grads = maps.numpy()[0], grads.numpy()[0]
    weights = grad_cam_plus_plus_weights(maps, grads)
    cam = np.maximum(maps.astype(np.float64) @ weights, 0.0).astype(np.float32)
    heat = to_input_size(cam, access.input_shape[:2])
    return Attribution("gradcam++", heat, time.perf_counter() - start, class_index, raw=cam,
                       details={"layer": access.layer, "score": float(score)})


def _informative_channels(maps: np.ndarray, max_channels: int | None) -> np.ndarray:
    """Channels whose map is not constant; with `max_channels`, the most active of them."""
    flat = maps.reshape(-1, maps.shape[-1])
    channels = np.flatnonzero(flat.max(axis=0) > flat.min(axis=0))
    if max_channels is not None and len(channels) > max_channels:
        mean = flat[:, channels].mean(axis=0)
        channels = np.sort(channels[np.argsort(-mean, kind="stable")[:max_channels]])
    return channels


def _masked_outputs_function(access: ModelAccess):
    """Traced: (x (1, H, W, C), coarse maps (n, h, w), class) -> output c of the n masked inputs."""
    fn = getattr(access, "_score_cam_function", None)
    if fn is not None:
        return fn
    import tensorflow as tf

    height, width, _ = access.input_shape
    h, w = (int(d) for d in access.probe.outputs[0].shape[1:3])
    outputs = access._outputs

    @tf.function(input_signature=[tf.TensorSpec((1, *access.input_shape), tf.float32),
                                  tf.TensorSpec((None, h, w), tf.float32),
                                  tf.TensorSpec((), tf.int32)])
    def masked_outputs(x, coarse, c):
        up = tf.image.resize(coarse[..., None], (height, width), method="bilinear")
        low = tf.reduce_min(up, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(up, axis=(1, 2, 3), keepdims=True)
        masks = tf.math.divide_no_nan(up - low, high - low)
        return outputs(x * masks)[:, c]

    access._score_cam_function = masked_outputs
    return masked_outputs


def _score_cam_result(access, maps, weights, channels, class_index, seconds, name):
    cam = np.maximum(maps.astype(np.float64) @ weights, 0.0).astype(np.float32)
    heat = to_input_size(cam, access.input_shape[:2])
    return Attribution(name, heat, seconds, class_index, raw=cam,
                       details={"layer": access.layer, "weights": weights.astype(np.float32),
                                "channels": int(len(channels)),
                                "all_channels": int(maps.shape[-1])})


def score_cam(access: ModelAccess, x: np.ndarray, class_index: int, batch_size: int = 16,
              max_channels: int | None = None, channels: np.ndarray | None = None) -> Attribution:
    """Score-CAM with every masked input in batches of `batch_size` forward passes.

    max_channels: use only that many channels, the most active ones (mean activation), to
    bound the time on a CPU; None (the paper's method) uses them all. `channels` names
    the channels instead (the benchmark compares both versions on the same ones).
    """
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    maps = access.feature_maps(x)
    if channels is None:
        channels = _informative_channels(maps, max_channels)
    masked_outputs = _masked_outputs_function(access)
    coarse = np.ascontiguousarray(np.moveaxis(maps, -1, 0), dtype=np.float32)  # (K, h, w)
    weights = np.zeros(maps.shape[-1], np.float64)
    for i in range(0, len(channels), batch_size):
        chunk = channels[i:i + batch_size]
        weights[chunk] = masked_outputs(x[None], coarse[chunk], np.int32(class_index)).numpy()
    return _score_cam_result(access, maps, weights, channels, class_index,
                             time.perf_counter() - start, "scorecam")


def score_cam_looped(access: ModelAccess, x: np.ndarray, class_index: int,
                     channels: np.ndarray | None = None) -> Attribution:
    """The reference: one channel at a time, its mask upsampled with Pillow, one forward
    pass each. `channels` restricts it to some channels (the benchmark times a subset)."""
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    height, width, _ = access.input_shape
    maps = access.feature_maps(x)
    if channels is None:
        channels = _informative_channels(maps, None)
    weights = np.zeros(maps.shape[-1], np.float64)
    for k in channels:
        up = gradcam.upsample(maps[:, :, k], (width, height))
        low, high = float(up.min()), float(up.max())
        if high <= low:
            continue
        mask = (up - low) / (high - low)
        weights[k] = access.outputs((x * mask[:, :, None])[None], batch_size=1)[0, class_index]
    return _score_cam_result(access, maps, weights, np.asarray(channels), class_index,
                             time.perf_counter() - start, "scorecam")
