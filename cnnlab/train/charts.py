"""Plotly figures for the training page: live curves, run comparison, what the net learned.

Pure plotly + numpy: figures are redrawn whole on every poll (Streamlit 1.58 removed
add_rows). Inputs are `cnnlab.train.jobs.JobSnapshot`s and numpy arrays; no Keras here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.train.jobs import JobState
from cnnlab.ui.safe import plotly_label

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")


def smooth(values: list[float] | np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing does)."""
    values = np.asarray(values, np.float64)
    out = np.empty_like(values)
    avg = 0.0
    for i, v in enumerate(values):
        avg = (1 - alpha) * avg + alpha * v
        out[i] = avg / (1 - (1 - alpha) ** (i + 1))
    return out


def _x_epochs(snap) -> np.ndarray:
    """Batch positions in epochs (batch 32 of 64 in epoch 2 -> 1.5), so batch and epoch
    curves share one axis."""
    steps = snap.steps_per_epoch or 1
    return np.array([(b.epoch - 1) + b.batch / steps for b in snap.batches], np.float64)


def curves_data(snap) -> dict[str, list[float]]:
    """The numbers behind the live chart (what tests assert on)."""
    losses = [b.loss for b in snap.batches]
    return {
        "batch_x": _x_epochs(snap).tolist(),
        "batch_loss": losses,
        "batch_loss_low": [b.low for b in snap.batches],     # = loss unless a bucket
        "batch_loss_high": [b.high for b in snap.batches],
        "bucketed": bool(snap.batches) and snap.batches[min(1, len(snap.batches) - 1)].span > 1,
        "batch_loss_smoothed": smooth(losses).tolist() if losses else [],
        "batch_accuracy": [b.metrics.get("accuracy", np.nan) for b in snap.batches],
        "epoch": [e["epoch"] for e in snap.epochs_log],
        "val_loss": [e.get("val_loss", np.nan) for e in snap.epochs_log],
        "val_accuracy": [e.get("val_accuracy", np.nan) for e in snap.epochs_log],
        "epoch_loss": [e.get("loss", np.nan) for e in snap.epochs_log],
        "epoch_accuracy": [e.get("accuracy", np.nan) for e in snap.epochs_log],
    }


def live_figure(snap, max_points: int = 3000) -> go.Figure:
    """Loss (per batch raw + smoothed, validation per epoch) and accuracy, side by side."""
    data = curves_data(snap)
    x, raw, smoothed = data["batch_x"], data["batch_loss"], data["batch_loss_smoothed"]
    low, high = data["batch_loss_low"], data["batch_loss_high"]
    if len(x) > max_points:   # thin the raw points for the browser; the smoothing saw them all
        keep = np.linspace(0, len(x) - 1, max_points).astype(int)
        x, raw, smoothed, low, high = ([seq[i] for i in keep]
                                       for seq in (x, raw, smoothed, low, high))
        acc = [data["batch_accuracy"][i] for i in keep]
    else:
        acc = data["batch_accuracy"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"),
                        horizontal_spacing=0.08)
    if data["bucketed"]:   # a long run: its early batches are buckets; show their min-max
        fig.add_trace(go.Scatter(x=x, y=high, mode="lines", line=dict(width=0),
                                 hoverinfo="skip", showlegend=False), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=low, mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor="rgba(31, 119, 180, 0.15)", hoverinfo="skip",
                                 name="training loss, min-max of early batches"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=raw, mode="lines", name="training loss (each batch)",
                             line=dict(color=TRAIN_COLOR, width=1), opacity=0.3), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=smoothed, mode="lines", name="training loss (smoothed)",
                             line=dict(color=TRAIN_COLOR, width=2.5)), 1, 1)
    fig.add_trace(go.Scatter(x=data["epoch"], y=data["val_loss"], mode="lines+markers",
                             name="validation loss", line=dict(color=VAL_COLOR, width=2),
                             marker=dict(size=9)), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=acc, mode="lines", name="training accuracy (epoch so far)",
                             line=dict(color=TRAIN_COLOR, width=2)), 1, 2)
    fig.add_trace(go.Scatter(x=data["epoch"], y=data["val_accuracy"], mode="lines+markers",
                             name="validation accuracy", line=dict(color=VAL_COLOR, width=2),
                             marker=dict(size=9)), 1, 2)
    epochs = max(snap.epochs, 1)
    if snap.state in (JobState.STOPPED, JobState.FAILED) and data["batch_x"]:
        epochs = max(1.0, float(np.ceil(data["batch_x"][-1])))   # the epochs it reached
    fig.update_xaxes(title_text="epoch", range=[0, epochs + 0.05])
    fig.update_yaxes(title_text="cross-entropy", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.01], row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.22), uirevision="live")
    return fig


def compare_figure(runs: Sequence) -> go.Figure:
    """Several finished runs overlaid: smoothed training loss, validation loss and accuracy."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"),
                        horizontal_spacing=0.08)
    for i, snap in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        data = curves_data(snap)
        name = snap.label
        fig.add_trace(go.Scatter(x=data["batch_x"], y=data["batch_loss_smoothed"], mode="lines",
                                 name=f"{name}: training", legendgroup=name,
                                 line=dict(color=color, width=1.5), opacity=0.6), 1, 1)
        fig.add_trace(go.Scatter(x=data["epoch"], y=data["val_loss"], mode="lines+markers",
                                 name=f"{name}: validation", legendgroup=name,
                                 line=dict(color=color, width=2.5, dash="dot")), 1, 1)
        fig.add_trace(go.Scatter(x=data["epoch"], y=data["val_accuracy"], mode="lines+markers",
                                 name=name, legendgroup=name, showlegend=False,
                                 line=dict(color=color, width=2.5)), 1, 2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="cross-entropy", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=2)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def mosaic(images: np.ndarray, cols: int, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Tile (n, h, w) images into one array with NaN gaps; also the tile index per pixel."""
    n, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    index = np.full(out.shape, -1, np.int32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img
        index[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = i + 1
    return out, index


def image_grid_figure(images: np.ndarray, what: str, cols: int = 16,
                      colorscale: str = "gray", symmetric: bool = False,
                      scale_each: bool = True, width_px: int = 560) -> go.Figure:
    """A grid of small images as ONE heatmap (one trace is fast to build and to redraw;
    64 subplots are not). Hover names the tile. The height follows the mosaic's aspect
    ratio at `width_px`, the width the page usually gives it."""
    images = np.asarray(images, np.float32)
    if scale_each:   # each tile to its own range, so weak maps stay visible
        lo = images.min(axis=(1, 2), keepdims=True)
        hi = images.max(axis=(1, 2), keepdims=True)
        if symmetric:
            m = np.maximum(np.abs(lo), np.abs(hi))
            m[m == 0] = 1
            images = images / m
        else:
            span = hi - lo
            span[span == 0] = 1
            images = (images - lo) / span
    tiles, index = mosaic(images, cols)
    fig = go.Figure(go.Heatmap(
        z=tiles, customdata=index, colorscale=colorscale, showscale=False,
        zmin=-1 if symmetric else 0, zmax=1,
        hovertemplate=f"{what} %{{customdata}}<extra></extra>", hoverongaps=False))
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False, constrain="domain")
    height = int(width_px * tiles.shape[0] / tiles.shape[1]) + 10
    fig.update_layout(height=max(height, 60), margin=dict(l=5, r=5, t=5, b=5),
                      plot_bgcolor="white")
    return fig


def filters_figure(filters: np.ndarray, slide: bool = False) -> go.Figure:
    """First-layer kernels (filters, kh, kw): red positive, blue negative weights. `slide`:
    as large as a lecture's step can show them (up to 64 filters eight to a row, 4x wider)."""
    if slide and len(filters) <= 64:
        return image_grid_figure(filters, "filter", cols=8, colorscale="RdBu_r",
                                 symmetric=True, width_px=1000)
    return image_grid_figure(filters, "filter", cols=16, colorscale="RdBu_r", symmetric=True,
                             width_px=650)


def activations_figure(maps: np.ndarray, limit: int = 64) -> go.Figure:
    """Feature maps (h, w, channels) of one conv layer, brighter = stronger."""
    channels = np.transpose(maps[..., :limit], (2, 0, 1))
    return image_grid_figure(channels, "map", cols=16, colorscale="Viridis", width_px=520)


def confusion_figure(counts: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Confusion matrix. A heatmap shows it; transparent square markers on every cell carry
    the selection (Plotly heatmaps send no selection events: streamlit/streamlit#8760)."""
    n = len(class_names)
    names = [plotly_label(c) for c in class_names]  # Transfer's are user folder names
    row_totals = counts.sum(axis=1, keepdims=True).clip(min=1)
    share = counts / row_totals
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=share, x=names, y=names, colorscale="Blues", zmin=0, zmax=1, showscale=False,
        text=counts, texttemplate="%{text}", hoverinfo="skip"))
    tx, ty, custom = [], [], []
    for t in range(n):
        for p in range(n):
            tx.append(names[p])
            ty.append(names[t])
            custom.append([t, p, int(counts[t, p])])
    fig.add_trace(go.Scatter(
        x=tx, y=ty, mode="markers", customdata=custom,
        marker=dict(symbol="square", size=30, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(255,165,0,0.45)")),
        unselected=dict(marker=dict(opacity=1)),
        hovertemplate="true %{y}, predicted %{x}: %{customdata[2]} images<extra></extra>",
        showlegend=False))
    fig.update_xaxes(title_text="predicted", side="top", type="category")
    fig.update_yaxes(title_text="true", autorange="reversed", type="category")
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=60, b=10), clickmode="event+select",
                      dragmode=False)
    return fig


def probabilities_figure(probs: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    top = int(np.argmax(probs))
    colors = [VAL_COLOR if i == top else TRAIN_COLOR for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=list(class_names), y=probs, marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="outside"))
    fig.update_yaxes(range=[0, 1.1], title_text="probability")
    fig.update_xaxes(type="category")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10))
    return fig
