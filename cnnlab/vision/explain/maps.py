"""The one result every explanation method returns: a map over the input, and its time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.vision import gradcam


@dataclass
class Attribution:
    """One method's explanation of one class on one input."""

    method: str
    map: np.ndarray          # (H, W) float32 in [0, 1] over the input: 1 = most important
    seconds: float           # wall clock of the method alone
    class_index: int
    raw: np.ndarray          # the method's own numbers before normalising (see each method)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. IG's completeness gap


def normalize(values: np.ndarray) -> np.ndarray:
    """A map to [0, 1]: negative values (evidence against the class) clipped to 0, then
    divided by the maximum; an all-zero map stays zero."""
    m = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    peak = float(m.max()) if m.size else 0.0
    return (m / peak if peak > 0 else m).astype(np.float32)


def to_input_size(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A conv-resolution map (h, w) bilinearly upsampled onto the input (H, W), in [0, 1]."""
    height, width = size
    if coarse.shape == (height, width):
        return normalize(coarse)
    return normalize(gradcam.upsample(coarse, (width, height)))


def channel_magnitude(values: np.ndarray) -> np.ndarray:
    """(H, W, C) attributions -> (H, W): the largest absolute value over the colour
    channels (Simonyan et al. 2013, the saliency map)."""
    return np.abs(np.asarray(values, np.float32)).max(axis=-1)
