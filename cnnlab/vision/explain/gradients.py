"""Attributions from the gradient of the class score with respect to the input pixels.

y^c is the class score before the softmax.

- Vanilla gradients (Simonyan et al. 2013): d y^c / d x; the map is the largest absolute
  value over the colour channels.
- SmoothGrad (Smilkov et al. 2017, eq. 1): the mean gradient over n copies of x with
  Gaussian noise N(0, sigma^2), sigma = noise_level * (max x - min x) (they recommend
  10-20 %); the map as for vanilla gradients.
- Integrated Gradients (Sundararajan et al. 2017, eq. 1): (x - x') times the mean gradient
  along the straight path from the baseline x' to x, here by the trapezoidal rule on m
  steps. Completeness (their Proposition 1): the attributions sum to y^c(x) - y^c(x').
  The number of steps doubles (re-using every gradient already computed) until the sum is
  within `tolerance` of that difference, or `max_steps` is reached; the gap is reported.
  The map is the absolute value of the per-pixel sum over channels.
"""

from __future__ import annotations

import time

import numpy as np

from cnnlab.vision.explain.access import ModelAccess
from cnnlab.vision.explain.maps import Attribution, channel_magnitude, normalize


def vanilla_gradients(access: ModelAccess, x: np.ndarray, class_index: int) -> Attribution:
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    grads, scores = access.input_gradients(x[None], class_index)
    return Attribution("gradients", normalize(channel_magnitude(grads[0])),
                       time.perf_counter() - start, class_index, raw=grads[0],
                       details={"score": float(scores[0])})


def smoothgrad(access: ModelAccess, x: np.ndarray, class_index: int, samples: int = 25,
               noise_level: float = 0.15, seed: int = 0, batch_size: int = 16) -> Attribution:
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    sigma = noise_level * float(x.max() - x.min())
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape, np.float64)
    for done in range(0, samples, batch_size):
        n = min(batch_size, samples - done)
        noisy = x[None] + rng.normal(0.0, sigma, (n, *x.shape)).astype(np.float32)
        grads, _ = access.input_gradients(noisy, class_index, batch_size=batch_size)
        total += grads.sum(axis=0, dtype=np.float64)
    mean = (total / samples).astype(np.float32)
    return Attribution("smoothgrad", normalize(channel_magnitude(mean)),
                       time.perf_counter() - start, class_index, raw=mean,
                       details={"samples": samples, "sigma": sigma})


def integrated_gradients(access: ModelAccess, x: np.ndarray, class_index: int,
                         baseline: np.ndarray | float = 0.0, steps: int = 32,
                         max_steps: int = 256, tolerance: float = 0.01,
                         batch_size: int = 16) -> Attribution:
    """Integrated Gradients from `baseline` (default: all zeros in the model's input space,
    black for MNIST, mid-grey for Inception's [-1, 1])."""
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    if steps < 1 or max_steps < steps:
        raise ValueError(f"need 1 <= steps <= max_steps, got steps={steps}, max_steps={max_steps}")
    base = np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    delta = x - base

    def path_gradients(alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = base[None] + alphas[:, None, None, None].astype(np.float32) * delta[None]
        return access.input_gradients(points, class_index, batch_size=batch_size)

    # Trapezoidal rule on m steps: endpoints weigh 1/2, inner points 1. Doubling m adds
    # the midpoints only.
    ends, end_scores = path_gradients(np.array([0.0, 1.0]))
    f_base, f_x = float(end_scores[0]), float(end_scores[1])
    ends_sum = 0.5 * (ends[0].astype(np.float64) + ends[1])
    inner_sum = np.zeros(x.shape, np.float64)
    m, new = steps, np.arange(1, steps) / steps
    while True:
        if len(new):
            grads, _ = path_gradients(new)
            inner_sum += grads.sum(axis=0, dtype=np.float64)
        attributions = delta * (ends_sum + inner_sum) / m
        difference = f_x - f_base
        gap = abs(float(attributions.sum()) - difference) / max(abs(difference), 1e-12)
        if gap <= tolerance or m * 2 > max_steps:
            break
        new = (2 * np.arange(m) + 1) / (2 * m)  # the midpoints of the current grid
        m *= 2
    attributions = attributions.astype(np.float32)
    return Attribution("integrated_gradients", normalize(np.abs(attributions.sum(axis=-1))),
                       time.perf_counter() - start, class_index, raw=attributions,
                       details={"steps": m, "completeness_gap": gap,
                                "attribution_sum": float(attributions.sum()),
                                "score_difference": difference})
