"""Figures for the transfer page: class counts, augmentation preview, speed-up, test metrics.

Plotly + numpy only (no Keras). The live training curves and the confusion matrix are the
training page's own figures (`cnnlab.train.charts`), not copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from cnnlab.train.charts import TRAIN_COLOR, VAL_COLOR, confusion_figure, live_figure
from cnnlab.ui.safe import plotly_label

__all__ = ["class_counts_figure", "confusion_figure", "live_figure", "precision_recall_figure",
           "preview_mosaic", "speedup_figure"]

WARN_COLOR = "#ff7f0e"


def class_counts_figure(counts: Mapping[str, int], recommended: int) -> go.Figure:
    """Images per class; classes under the recommended count in orange, the line dashed."""
    values = list(counts.values())
    names = [plotly_label(n) for n in counts]  # user folder names: text, not HTML
    colors = [WARN_COLOR if v < recommended else TRAIN_COLOR for v in values]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=colors, text=values,
                           textposition="outside", cliponaxis=False))
    fig.add_hline(y=recommended, line_dash="dash", line_color="#7f7f7f",
                  annotation_text=f"{recommended} recommended", annotation_position="top left")
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="images", rangemode="tozero",
                     range=[0, max([*values, recommended]) * 1.2])
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=20, b=10))
    return fig


def preview_mosaic(originals: np.ndarray, variants: np.ndarray, gap: int = 4) -> np.ndarray:
    """One uint8 image: a row per sample, the original first, then its augmented variants.

    originals (n, s, s, 3), variants (n, v, s, s, 3); white gaps between tiles.
    """
    n, v, s = variants.shape[0], variants.shape[1], variants.shape[2]
    cols = v + 1
    out = np.full((n * (s + gap) - gap, cols * (s + gap) - gap + gap * 2, 3), 255, np.uint8)
    for i in range(n):
        tiles = [originals[i], *variants[i]]
        for j, tile in enumerate(tiles):
            # An extra gap after the original separates it from the variants.
            left = j * (s + gap) + (gap * 2 if j else 0)
            out[i * (s + gap): i * (s + gap) + s, left: left + s] = tile
    return out


def speedup_figure(uncached_epoch_s: float, cached_epoch_s: float) -> go.Figure:
    """One epoch of head training: every image through the frozen base vs cached features."""
    labels = ["uncached: images through the base", "cached bottleneck features"]
    values = [uncached_epoch_s, cached_epoch_s]
    fig = go.Figure(go.Bar(y=labels, x=values, orientation="h",
                           marker_color=[VAL_COLOR, TRAIN_COLOR],
                           text=[_seconds(v) for v in values], textposition="outside",
                           cliponaxis=False))
    fig.update_xaxes(type="log", title_text="seconds per epoch (log scale)")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=170, margin=dict(l=10, r=60, t=10, b=10))
    return fig


def precision_recall_figure(class_names: Sequence[str], precision: np.ndarray,
                            recall: np.ndarray) -> go.Figure:
    names = [plotly_label(n) for n in class_names]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=precision, name="precision (right when it says so)",
                         marker_color=TRAIN_COLOR, text=[f"{p:.0%}" for p in precision],
                         textposition="outside", cliponaxis=False))
    fig.add_trace(go.Bar(x=names, y=recall, name="recall (found of the class)",
                         marker_color=VAL_COLOR, text=[f"{r:.0%}" for r in recall],
                         textposition="outside", cliponaxis=False))
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    fig.update_layout(barmode="group", height=300, margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.1f} s"
    return f"{value * 1000:.1f} ms"
