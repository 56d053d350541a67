"""How faithful is a map? Deletion and insertion (Petsiuk et al. 2018, RISE, section 4.1).

Pixels are ranked by the map, most important first (ties keep raster order). In `steps`
equal steps:

- deletion: the top-ranked pixels are set to `fill` (all channels; 0 in the model's
  input space: black for MNIST, mid-grey for Inception). A faithful map makes the class's
  output drop fast: LOW area under the curve is good.
- insertion: starting from a canvas (a blurred copy of the image, as in RISE, or `fill`
  everywhere), the top-ranked pixels are put back. A faithful map makes the output rise
  fast: HIGH area under the curve is good.

The curve is the model's output for the class (the probability for a softmax classifier)
against the fraction of pixels removed or inserted, its area by the trapezoidal rule on
[0, 1]. All steps of a curve go through the network in batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.vision.explain.access import ModelAccess


@dataclass(frozen=True)
class FaithfulnessCurves:
    fractions: np.ndarray     # (steps + 1,) fraction of pixels removed / inserted, 0 .. 1
    deletion: np.ndarray      # (steps + 1,) the class's output as pixels are removed
    insertion: np.ndarray     # (steps + 1,) the class's output as pixels are inserted
    deletion_auc: float       # lower is better
    insertion_auc: float      # higher is better


def blurred(x: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """A Gaussian-blurred copy of x (H, W, C), each channel alone; sigma defaults to H/16."""
    from scipy.ndimage import gaussian_filter

    sigma = max(1.0, x.shape[0] / 16) if sigma is None else sigma
    return gaussian_filter(np.asarray(x, np.float32), sigma=(sigma, sigma, 0), mode="nearest")


def ranking(saliency: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most important first; equal values keep raster order."""
    return np.argsort(-np.asarray(saliency, np.float64).ravel(), kind="stable")


def _curve_inputs(start: np.ndarray, target: np.ndarray, order: np.ndarray,
                  counts: np.ndarray) -> np.ndarray:
    """Images that take the first counts[i] ranked pixels from `target`, the rest from `start`."""
    height, width, channels = start.shape
    rank = np.empty(height * width, np.int64)
    rank[order] = np.arange(height * width)
    rank = rank.reshape(height, width, 1)
    take = rank[None] < counts[:, None, None, None]
    return np.where(take, target[None], start[None]).astype(np.float32)


def area_under(fractions: np.ndarray, values: np.ndarray) -> float:
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2)


def deletion_insertion(access: ModelAccess, x: np.ndarray, saliency: np.ndarray,
                       class_index: int, steps: int = 32, fill: float = 0.0,
                       insertion_start: str = "blur", batch_size: int = 16) -> FaithfulnessCurves:
    """Both curves and their areas for one map (H, W) of input x (H, W, C)."""
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    saliency = np.asarray(saliency)
    if saliency.shape != x.shape[:2]:
        raise ValueError(f"the map must be {x.shape[:2]}, got {saliency.shape}")
    n_pixels = saliency.size
    if not 1 <= steps <= n_pixels:
        raise ValueError(f"steps must be in [1, {n_pixels}], got {steps}")
    if insertion_start not in ("blur", "fill"):
        raise ValueError(f"insertion_start must be 'blur' or 'fill', got {insertion_start!r}")
    order = ranking(saliency)
    counts = np.rint(np.linspace(0, n_pixels, steps + 1)).astype(np.int64)
    fractions = counts / n_pixels
    empty = np.full_like(x, fill)
    canvas = blurred(x) if insertion_start == "blur" else empty
    both = np.concatenate([_curve_inputs(x, empty, order, counts),
                           _curve_inputs(canvas, x, order, counts)])
    outputs = access.outputs(both, batch_size)[:, class_index].astype(np.float64)
    deletion, insertion = outputs[:steps + 1], outputs[steps + 1:]
    return FaithfulnessCurves(fractions, deletion, insertion, area_under(fractions, deletion),
                              area_under(fractions, insertion))
