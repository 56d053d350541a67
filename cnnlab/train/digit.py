"""A user's own digit (or piece of clothing) through MNIST's preprocessing, every step kept
to show it, and the network's answer for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.train.config import INPUT_SHAPE


@dataclass(frozen=True)
class DigitSteps:
    """MNIST's own preprocessing applied to a user's image, every step kept to show it."""

    gray: np.ndarray          # uint8, the image in gray levels
    inverted: bool            # MNIST digits are light on dark: dark-on-light input is flipped
    normalized: np.ndarray    # uint8, light digit on black
    cropped: np.ndarray       # uint8, the digit's bounding box
    fitted: np.ndarray        # uint8, scaled so its longer side is 20 pixels
    centered: np.ndarray      # uint8 (28, 28): the 20x20 box placed by centre of mass
    x: np.ndarray             # float32 (28, 28, 1) in [0, 1]: what the network sees
    empty: bool               # nothing drawn


def preprocess_digit(image) -> DigitSteps:
    """A PIL image or array (gray, RGB or RGBA) -> the 28x28 input, as MNIST was made
    (LeCun et al.: size-normalised into 20x20 keeping the aspect ratio, then centred by
    centre of mass in 28x28)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 4:
            # Canvas strokes carry alpha: composite onto the canvas's black background.
            alpha = arr[..., 3:4].astype(np.float32) / 255.0
            arr = (arr[..., :3].astype(np.float32) * alpha).astype(np.uint8)
        pil = Image.fromarray(arr.astype(np.uint8))
    else:
        pil = image
    gray = np.asarray(pil.convert("L"), np.uint8)
    # Decide polarity from the border: a light border means dark ink on paper.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    inverted = bool(border.mean() > 127)
    norm = 255 - gray if inverted else gray.copy()
    # Treat faint background noise (paper texture, JPEG) as black.
    norm = np.where(norm < 40, 0, norm).astype(np.uint8)
    ys, xs = np.nonzero(norm)
    if len(ys) == 0:
        blank = np.zeros((28, 28), np.uint8)
        return DigitSteps(gray, inverted, norm, norm, blank[:20, :20], blank,
                          np.zeros((28, 28, 1), np.float32), True)
    cropped = norm[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    h, w = cropped.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = np.asarray(Image.fromarray(cropped).resize(size, Image.Resampling.LANCZOS), np.uint8)
    canvas = np.zeros((28, 28), np.float32)
    fh, fw = fitted.shape
    weights = fitted.astype(np.float64)
    cy = (weights.sum(axis=1) @ np.arange(fh)) / weights.sum()
    cx = (weights.sum(axis=0) @ np.arange(fw)) / weights.sum()
    top = int(round(14 - cy))
    left = int(round(14 - cx))
    top = min(max(top, 0), 28 - fh)
    left = min(max(left, 0), 28 - fw)
    canvas[top: top + fh, left: left + fw] = fitted
    centered = canvas.astype(np.uint8)
    return DigitSteps(gray, inverted, norm, cropped, fitted, centered,
                      (canvas / 255.0)[..., None].astype(np.float32), False)


def predict_one(model, x: np.ndarray) -> np.ndarray:
    """Probabilities (10,) for one (28, 28, 1) float input."""
    out = model(np.asarray(x, np.float32).reshape(1, *INPUT_SHAPE), training=False)
    return np.asarray(out, np.float32)[0]
