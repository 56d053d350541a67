"""Sanity check: cascading randomization (Adebayo et al. 2018, "Sanity Checks for Saliency
Maps", section 3.1).

The layers' weights are re-drawn block by block from the top (the classifier) down,
cumulatively, on a copy of the model (the caller's model is never touched). After each
block, every method's map is recomputed for the same input and class and compared with
the map of the trained model by Spearman's rank correlation. A method whose map barely
changes while the network it explains is destroyed does not depend on what the network
learned (the paper's finding for guided backprop); Grad-CAM and gradients should fail
to stay similar.

Blocks: Inception v3's `mixedN` concatenations (and everything after the last one, the
classifier head) when present; otherwise each layer with weights (a BatchNormalization
joins the layer before it). A layer is re-drawn with its own initializers, as when the
network was built; moving statistics (BatchNorm, Normalization) are kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.vision.explain.access import ModelAccess, _flat_layers

if TYPE_CHECKING:  # pragma: no cover
    import keras

# Variables re-drawn, each with the layer's `<name>_initializer`.
REDRAWN = ("kernel", "depthwise_kernel", "pointwise_kernel", "bias", "gamma", "beta")
_BLOCK_END = re.compile(r"mixed\d+")

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Block:
    name: str                 # the block's last layer (Inception: "mixed10", "predictions")
    layers: tuple[str, ...]   # every layer in it, in graph order


@dataclass
class CascadeStep:
    block: str                                            # the block re-drawn at this step
    maps: dict[str, np.ndarray] = field(default_factory=dict)        # method -> (H, W) map
    similarity: dict[str, float] = field(default_factory=dict)       # method -> Spearman rho


@dataclass
class SanityResult:
    steps: list[CascadeStep]  # top block first, each one cumulative
    seconds: float

    def similarities(self, method: str) -> list[tuple[str, float]]:
        """(block, Spearman rho with the trained model's map) per step, for one method."""
        return [(step.block, step.similarity[method]) for step in self.steps]


def _has_weights(layer) -> bool:
    return any(getattr(layer, name, None) is not None
               and getattr(layer, f"{name}_initializer", None) is not None for name in REDRAWN)


def top_blocks(model: keras.Model) -> list[Block]:
    """The model's blocks with weights, top (the classifier) first."""
    import keras

    flat = _flat_layers(model)
    ends = [i for i, layer in enumerate(flat) if _BLOCK_END.fullmatch(layer.name)]
    segments: list[tuple[str, list]] = []
    if ends:
        lo = 0
        for i in ends:
            segments.append((flat[i].name, flat[lo:i + 1]))  # mixed0 includes the stem
            lo = i + 1
        top = [layer for layer in flat[lo:] if _has_weights(layer)]
        segments.append((top[-1].name if top else "top", flat[lo:]))
    else:
        for layer in flat:
            if not _has_weights(layer):
                continue
            if isinstance(layer, keras.layers.BatchNormalization) and segments:
                segments[-1][1].append(layer)
            else:
                segments.append((layer.name, [layer]))
    return [Block(name, tuple(layer.name for layer in layers))
            for name, layers in reversed(segments) if any(map(_has_weights, layers))]


def copy_model(model: keras.Model) -> keras.Model:
    """An independent copy: same architecture, same weight values, new variables."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _initializer(layer, name: str, seed: int):
    import keras

    init = keras.initializers.get(getattr(layer, f"{name}_initializer"))
    config = init.get_config()
    if "seed" in config:
        config["seed"] = seed
    return init.__class__.from_config(config)


def redraw(model: keras.Model, block: Block, seed: int) -> int:
    """Re-draw every weight of the block's layers in place; returns how many variables."""
    by_name = {layer.name: layer for layer in _flat_layers(model)}
    count = 0
    for layer_name in block.layers:
        layer = by_name[layer_name]
        for name in REDRAWN:
            variable = getattr(layer, name, None)
            if variable is None or getattr(layer, f"{name}_initializer", None) is None:
                continue
            value = _initializer(layer, name, seed + count)(tuple(variable.shape), dtype=variable.dtype)
            variable.assign(value)
            count += 1
    return count


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; a constant map shares no ranking: 0."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def cascading_randomization(model: keras.Model, x: np.ndarray, class_index: int,
                            compute: Callable[[ModelAccess, str], np.ndarray],
                            originals: dict[str, np.ndarray], layer: str | None = None,
                            depth: int | None = None, seed: int = 0,
                            progress: Progress | None = None) -> SanityResult:
    """compute(access, method) -> map is each method's map on a model; `originals` holds
    the trained model's maps (method -> map). `depth`: how many blocks (None: all)."""
    start = time.perf_counter()
    blocks = top_blocks(model)[:depth]
    copy = copy_model(model)
    access = ModelAccess(copy, layer)
    steps = []
    for i, block in enumerate(blocks):
        if progress is not None:
            progress(i / len(blocks), f"randomizing {block.name} ({i + 1}/{len(blocks)})")
        redraw(copy, block, seed + 1000 * i)
        step = CascadeStep(block.name)
        for method, original in originals.items():
            step.maps[method] = compute(access, method)
            step.similarity[method] = spearman(original, step.maps[method])
        steps.append(step)
    if progress is not None:
        progress(1.0, "randomization done")
    return SanityResult(steps, time.perf_counter() - start)
