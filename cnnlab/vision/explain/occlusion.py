"""Occlusion (Zeiler & Fergus 2014): slide a grey patch over the image and watch the class
score fall.

For each patch position P the drop is y^c(x) - y^c(x with P set to `fill`) (y^c before the
softmax); a pixel's value is the mean drop over the patches that cover it. The occluded
images go through the network in batches. Positions step by `stride` and the last row and
column of patches touch the image's edge, so every pixel is covered.
"""

from __future__ import annotations

import time

import numpy as np

from cnnlab.vision.explain.access import ModelAccess
from cnnlab.vision.explain.maps import Attribution, normalize


def default_patch(size: int) -> tuple[int, int]:
    """(patch, stride) for an input side: about an eighth of it, half-overlapping
    (Inception's 299: 37 and 18, 256 positions; MNIST's 28: 3 and 1)."""
    patch = max(2, size // 8)
    return patch, max(1, patch // 2)


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion(access: ModelAccess, x: np.ndarray, class_index: int, patch: int | None = None,
              stride: int | None = None, fill: float = 0.0, batch_size: int = 16,
              overlap: bool = True) -> Attribution:
    """`stride` None: half the patch, or the whole patch when not `overlap` (side by side, a
    quarter of the forward passes)."""
    start = time.perf_counter()
    x = access.check_input(x)
    class_index = access.check_class(class_index)
    height, width, _ = x.shape
    default, default_stride = default_patch(min(height, width))
    patch = patch or default
    half = default_stride if patch == default else max(1, patch // 2)
    stride = stride or (half if overlap else patch)
    if not 1 <= patch <= min(height, width) or stride < 1:
        raise ValueError(f"patch must be in [1, {min(height, width)}] and stride >= 1, "
                         f"got patch={patch}, stride={stride}")
    positions = [(top, left) for top in patch_starts(height, patch, stride)
                 for left in patch_starts(width, patch, stride)]
    reference = float(access.logits(x[None])[0, class_index])
    drops = np.empty(len(positions), np.float64)
    for i in range(0, len(positions), batch_size):
        chunk = positions[i:i + batch_size]
        batch = np.repeat(x[None], len(chunk), axis=0)
        for image, (top, left) in zip(batch, chunk, strict=True):
            image[top:top + patch, left:left + patch, :] = fill
        drops[i:i + len(chunk)] = reference - access.logits(batch, batch_size)[:, class_index]
    total = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    for drop, (top, left) in zip(drops, positions, strict=True):
        total[top:top + patch, left:left + patch] += drop
        count[top:top + patch, left:left + patch] += 1
    mean_drop = (total / count).astype(np.float32)
    return Attribution("occlusion", normalize(mean_drop), time.perf_counter() - start,
                       class_index, raw=mean_drop,
                       details={"patch": patch, "stride": stride, "positions": len(positions)})
