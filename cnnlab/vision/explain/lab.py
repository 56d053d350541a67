"""What the Classify and Train pages need around `explain`: the options a page runs with, the
methods that apply to a model, and the pictures a page shows (a digit large enough to
overlay, a feature-visualization unit as a tile). No Streamlit here.

Score-CAM on a page: the full method (every channel of mixed10, 2,048 forward passes) takes
about 3 minutes on a 2-core CPU, so a page keeps the `PAGE_SCORECAM_CHANNELS` most active
channels unless `CNNLAB_SCORECAM_CHANNELS` says otherwise ("all" for the paper's method;
the browser tests use a few channels for speed).

Quick explanations for slow machines: `CNNLAB_EXPLAIN_QUICK=1` makes both pages explain with
QUICK_OPTIONS (fewer SmoothGrad samples, fewer Integrated Gradients steps, coarser deletion
and insertion curves): less time, noisier maps and scores, and the page says so under the
maps.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cnnlab.vision.explain.features import FeatureGrid
from cnnlab.vision.explain.report import METHODS, ExplainOptions

if TYPE_CHECKING:  # pragma: no cover
    import keras

SCORECAM_ENV = "CNNLAB_SCORECAM_CHANNELS"
PAGE_SCORECAM_CHANNELS = 256
CAM_METHODS = ("gradcam", "gradcam++", "scorecam")   # need a conv layer
QUICK_ENV = "CNNLAB_EXPLAIN_QUICK"
QUICK_OPTIONS = {"smoothgrad_samples": 8, "ig_max_steps": 32, "faithfulness_steps": 8,
                 "occlusion_overlap": False}

# What each method computes, in one line a student can read next to its map.
METHOD_NOTES = {
    "gradcam": "the last conv layer's maps weighted by the class score's mean gradient "
               "(Selvaraju et al. 2017)",
    "gradcam++": "the same maps weighted by positive gradients only, pixel by pixel "
                 "(Chattopadhay et al. 2018)",
    "scorecam": "each map used as a mask on the image, weighted by the class output it "
                "keeps: no gradients (Wang et al. 2020)",
    "gradients": "how much the class score changes with each pixel (Simonyan et al. 2013)",
    "smoothgrad": "the gradients averaged over noisy copies of the image (Smilkov et al. 2017)",
    "integrated_gradients": "gradients summed along the path from a black image, so the "
                            "attributions add up to the score's change (Sundararajan et al. 2017)",
    "occlusion": "the drop of the class score when a blank patch (grey for Inception, black "
                 "for a digit) covers each place (Zeiler & Fergus 2014)",
}


def scorecam_channels(env: Mapping[str, str] = os.environ) -> int | None:
    """The channels Score-CAM keeps on a page: `CNNLAB_SCORECAM_CHANNELS` (a number, or
    "all" for every channel), else PAGE_SCORECAM_CHANNELS. A value that is neither falls
    back to the default (a page never fails on a typo in its environment)."""
    text = env.get(SCORECAM_ENV, "").strip().lower()
    if text == "all":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    return PAGE_SCORECAM_CHANNELS


def quick(env: Mapping[str, str] = os.environ) -> bool:
    """Whether `CNNLAB_EXPLAIN_QUICK` asks for quick explanations ("1", "true", "yes", "on")."""
    return env.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def page_options(sanity_depth: int = 2, env: Mapping[str, str] = os.environ) -> ExplainOptions:
    """The options both pages explain with; the cache key of a page's results."""
    options = ExplainOptions(scorecam_channels=scorecam_channels(env), sanity_depth=sanity_depth)
    return dataclasses.replace(options, **QUICK_OPTIONS) if quick(env) else options


def quick_note(env: Mapping[str, str] = os.environ) -> str:
    """What a page says under the maps when they are quick explanations ("" when not)."""
    if not quick(env):
        return ""
    o = QUICK_OPTIONS
    return (f"Quick explanations (`{QUICK_ENV}=1`): SmoothGrad averages {o['smoothgrad_samples']} "
            f"noisy copies, Integrated Gradients stops at {o['ig_max_steps']} steps, occlusion's "
            "patches lie side by side instead of overlapping by half, and the deletion and "
            f"insertion curves have {o['faithfulness_steps']} steps, so maps and scores are "
            "coarser and noisier than the full methods'.")


def methods_for(model: keras.Model) -> tuple[str, ...]:
    """Every method that applies: the CAMs need a convolutional layer (the dense net has
    none), the gradient methods and occlusion work on any classifier of images."""
    from cnnlab.vision.explain.access import access_for

    if access_for(model).layer is None:
        return tuple(m for m in METHODS if m not in CAM_METHODS)
    return tuple(METHODS)


def scorecam_note(channels_used: int | None, channels_total: int | None) -> str:
    """What the page says about Score-CAM's channels."""
    if channels_used is None or channels_total is None or channels_used >= channels_total:
        return "Score-CAM used every channel of the layer, as in the paper."
    return (f"Score-CAM used the {channels_used:,} most active of the layer's "
            f"{channels_total:,} channels (the full method is one forward pass per channel: "
            f"about 3 minutes for Inception v3 on this CPU; `{SCORECAM_ENV}=all` runs it).")


def format_seconds(seconds: float) -> str:
    """A method's time as a page shows it: milliseconds below a second."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def digit_view(x: np.ndarray, size: int = 168) -> Image.Image:
    """A (H, W, 1) input in [0, 1] as an RGB picture `size` pixels wide (nearest
    neighbour, so every pixel the network saw stays a visible square)."""
    gray = np.rint(np.clip(np.asarray(x, np.float32)[..., 0], 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def unit_tiles(grid: FeatureGrid, size: int = 84, border: int = 2) -> list[Image.Image]:
    """Each unit's image (cut to its receptive field for a first-layer neuron) as an RGB
    picture `size` pixels wide, nearest neighbour, in a mid-grey frame `border` pixels wide
    (white and black patterns stay apart from each other and from the page): tile k is
    unit k (filter k, class k)."""
    tiles = []
    inner = size - 2 * border
    for image in grid.display_images:
        pixels = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
        picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        tile = Image.new("RGB", (size, size), (128, 128, 128))
        tile.paste(picture.convert("RGB").resize((inner, inner), Image.Resampling.NEAREST),
                   (border, border))
        tiles.append(tile)
    return tiles
