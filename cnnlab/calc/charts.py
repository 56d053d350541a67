"""Plotly figures for the calculator page (built from ModelStats; no TensorFlow)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.calc.analysis import ModelStats
from cnnlab.calc.memory import DTYPES, GB, MB

PARAMS_COLOR = "#1f77b4"
ACTIVATION_COLOR = "#ff7f0e"
GPU_COLOR = "#d62728"


def layer_figure(stats: ModelStats) -> go.Figure:
    """Parameters and activation memory (one instance, current dtype) per layer."""
    names = [layer.name for layer in stats.layers]
    act_bytes = DTYPES[stats.memory.dtype]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Parameters per layer",
                                        f"Activation memory per layer, one instance "
                                        f"({stats.memory.dtype}), MB"))
    fig.add_trace(go.Bar(x=names, y=[layer.params for layer in stats.layers], name="parameters",
                         marker_color=PARAMS_COLOR,
                         customdata=[layer.kind for layer in stats.layers],
                         hovertemplate="%{x} (%{customdata})<br>%{y:,} parameters"
                                       "<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[layer.activation_elems * act_bytes / MB
                                     for layer in stats.layers],
                         name="activation MB", marker_color=ACTIVATION_COLOR,
                         customdata=["x".join(map(str, layer.output_shape))
                                     for layer in stats.layers],
                         hovertemplate="%{x}: %{customdata}<br>%{y:,.3f} MB<extra></extra>"),
                  row=2, col=1)
    fig.update_layout(height=520, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_xaxes(tickangle=-45 if len(names) > 8 else 0)
    return fig


def memory_vs_batch_figure(stats: ModelStats, gpu_bytes: float) -> go.Figure:
    """Training memory against batch size (current dtype and mixed precision), with the
    GPU's capacity as a horizontal line and the current and largest fitting batches."""
    current = stats.memory.batch
    largest = stats.max_batch(gpu_bytes)
    top = max(2 * current, int(largest * 1.25) + 1, 8)
    step = max(1, top // 200)
    batches = list(range(1, top + 1, step))
    if batches[-1] != top:
        batches.append(top)
    fig = go.Figure()
    others = [(d, "dot") for d in DTYPES if d != stats.memory.dtype]
    for dtype, dash in [(stats.memory.dtype, "solid"), *others]:
        at = stats.at(dtype=dtype, accum_steps=1)
        fig.add_trace(go.Scatter(
            x=batches, y=[at.at(batch=b).training_bytes / GB for b in batches], mode="lines",
            name=f"training, {dtype}", line={"dash": dash},
            hovertemplate="batch %{x}: %{y:.3f} GB<extra>" + dtype + "</extra>"))
    fig.add_trace(go.Scatter(x=[batches[0], batches[-1]], y=[gpu_bytes / GB] * 2, mode="lines",
                             name=f"GPU memory {gpu_bytes / GB:g} GB",
                             line={"color": GPU_COLOR, "width": 3}))
    fig.add_trace(go.Scatter(x=[current], y=[stats.training_bytes / GB], mode="markers",
                             name=f"batch {current}", marker={"size": 12, "symbol": "circle"}))
    if largest:
        fig.add_trace(go.Scatter(x=[largest], y=[stats.at(batch=largest, accum_steps=1)
                                                 .training_bytes / GB],
                                 mode="markers", name=f"largest that fits: {largest}",
                                 marker={"size": 12, "symbol": "diamond", "color": GPU_COLOR}))
    fig.update_layout(title="Training memory against batch size", xaxis_title="batch size",
                      yaxis_title="GB", height=420, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": -0.2})
    return fig
