"""Plotly figures of the Architectures page, drawn from the calculator's numbers and the specs.

`overview_figure` compares the networks (top-5 error against parameters and FLOPs);
`block_diagram` draws one network's stages, modules and skip connections from its own blocks.
No TensorFlow here.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.nets.network import Network
from cnnlab.nets.summary import BlockSummary, block_summaries

KIND_COLOURS = {
    "stem": "#8d99ae", "conv": "#4c78a8", "dense": "#b279a2", "inception": "#f58518",
    "residual": "#54a24b", "pool": "#bab0ac", "head": "#e45756", "aux": "#eeca3b",
}
BRANCH_COLOURS = {"1x1": "#4c78a8", "3x3": "#f58518", "5x5": "#e45756", "pool": "#72b7b2"}
PROJECTION = "#e45756"
LABEL_SIDES = {"ResNet-50": "bottom center", "ResNet-152": "middle right"}
IDENTITY = "#2a7f62"


def overview_figure(rows: list[dict]) -> go.Figure:
    """Left: single-model top-5 error against parameters (marker area ~ FLOPs).
    Right: parameters and FLOPs of every network, LeNet-5 -> ResNet-152, log scale."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.09,
                        subplot_titles=("Top-5 error vs parameters (marker area ~ FLOPs)",
                                        "Parameters and FLOPs, LeNet-5 → ResNet-152"))
    rated = [r for r in rows if r["top-5 % (1 model)"] is not None]
    fig.add_trace(go.Scatter(
        x=[r["parameters"] for r in rated], y=[r["top-5 % (1 model)"] for r in rated],
        mode="markers+text", text=[r["network"] for r in rated],
        # the ResNets sit close together: some labels go below, ResNet-152's to the right
        textposition=[LABEL_SIDES.get(r["network"], "top center") for r in rated],
        marker={"size": [8 + 6 * math.sqrt(r["GFLOPs"]) for r in rated], "color": "#4c78a8",
                "opacity": 0.8},
        name="1 model, 10 crops (ILSVRC-2012 val)",
        customdata=[[r["GFLOPs"], r["year"]] for r in rated],
        hovertemplate="%{text} (%{customdata[1]})<br>%{x:,} parameters<br>"
                      "%{customdata[0]} GFLOPs<br>top-5 error %{y}%<extra></extra>",
    ), row=1, col=1)
    entries = [r for r in rows if r["top-5 % (ILSVRC)"] is not None]
    fig.add_trace(go.Scatter(
        x=[r["parameters"] for r in entries], y=[r["top-5 % (ILSVRC)"] for r in entries],
        mode="markers", marker={"size": 11, "symbol": "diamond-open", "color": "#e45756",
                                "line": {"width": 2}},
        name="ILSVRC entry (ensemble, test set)", text=[r["network"] for r in entries],
        hovertemplate="%{text} ILSVRC entry: %{y}% top-5 error<extra></extra>",
    ), row=1, col=1)
    names = [r["network"] for r in rows]
    fig.add_trace(go.Bar(x=names, y=[r["parameters"] / 1e6 for r in rows], name="parameters (M)",
                         marker_color="#4c78a8",
                         hovertemplate="%{x}: %{y:.3f} M parameters<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[r["GFLOPs"] for r in rows], name="GFLOPs per image",
                         marker_color="#f58518",
                         hovertemplate="%{x}: %{y:.3f} GFLOPs<extra></extra>"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="parameters (log)", range=[6.6, 8.3], row=1, col=1)
    top = max([r["top-5 % (1 model)"] for r in rated] + [1])
    fig.update_yaxes(title_text="top-5 error %", range=[0, top * 1.15], row=1, col=1)
    fig.update_yaxes(type="log", title_text="M parameters / GFLOPs (log)", row=1, col=2)
    fig.update_layout(height=430, barmode="group", margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.22})
    return fig


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _layout(blocks: list[BlockSummary], per_row: int) -> dict[str, tuple[float, float]]:
    """Box centres: one row per stage (wrapped after `per_row` boxes), rows 1.5 apart; aux
    heads hang 1.0 below the module they read, and their row gets that much more room."""
    positions: dict[str, tuple[float, float]] = {}
    y, col, stage = 0.0, 0, None
    anchor: tuple[float, float] | None = None
    has_aux = False
    for b in blocks:
        if b.kind == "aux" and anchor is not None:
            positions[b.name] = (anchor[0], anchor[1] - AUX_DROP)
            has_aux = True
            continue
        if stage is not None and (b.stage != stage or col >= per_row):
            y -= ROW_STEP + (AUX_DROP if has_aux else 0.0)
            col, has_aux = 0, False
        stage = b.stage
        positions[b.name] = (col * 1.25, y)
        anchor = positions[b.name]
        col += 1
    return positions


ROW_STEP = 1.5
AUX_DROP = 1.0


def block_diagram(net: Network, selected_stage: str | None = None, per_row: int = 14) -> go.Figure:
    """Boxes for the network's blocks (stem, modules, residual units, pools, head), in order,
    one row per stage. Residual units carry their shortcut as an arc over the box: green for
    the identity (0 parameters), red dashed for a 1x1 projection. Inception modules show their
    four branches as stripes as wide as each branch's output channels."""
    blocks = block_summaries(net)
    pos = _layout(blocks, per_row)
    fig = go.Figure()
    shapes, annotations = [], []
    w, h = 0.9, 0.8
    stage_rows: dict[str, float] = {}
    main = [b for b in blocks if b.kind != "aux"]
    for prev, b in zip(main, main[1:], strict=False):  # data flow between consecutive boxes
        (x0, y0), (x1, y1) = pos[prev.name], pos[b.name]
        if y0 == y1:
            shapes.append({"type": "line", "x0": x0 + w / 2, "y0": y0, "x1": x1 - w / 2, "y1": y1,
                           "line": {"color": "#888", "width": 1.5}})
        else:  # down to the next row, then back to its first box
            mid = (y0 + y1) / 2
            path = (f"M {x0},{y0 - h / 2} L {x0},{mid} L {x1},{mid} L {x1},{y1 + h / 2}")
            shapes.append({"type": "path", "path": path, "line": {"color": "#888", "width": 1.5}})
    for b in blocks:
        x, y = pos[b.name]
        selected = selected_stage is not None and b.stage == selected_stage
        border = {"color": "#111" if selected else "#555", "width": 3 if selected else 1}
        stage_rows.setdefault(b.stage, y)
        if b.branches:
            total = sum(c for _, c in b.branches)
            left = x - w / 2
            for branch, channels in b.branches:
                width = w * channels / total
                shapes.append({"type": "rect", "x0": left, "x1": left + width, "y0": y - h / 2,
                               "y1": y + h / 2, "fillcolor": BRANCH_COLOURS.get(branch, "#999"),
                               "line": {"width": 0}, "opacity": 0.85})
                left += width
            shapes.append({"type": "rect", "x0": x - w / 2, "x1": x + w / 2, "y0": y - h / 2,
                           "y1": y + h / 2, "line": border})
        else:
            shapes.append({"type": "rect", "x0": x - w / 2, "x1": x + w / 2, "y0": y - h / 2,
                           "y1": y + h / 2, "fillcolor": KIND_COLOURS.get(b.kind, "#999"),
                           "opacity": 0.85, "line": border})
        if b.kind == "aux":
            shapes.append({"type": "line", "x0": x, "y0": y + h / 2, "x1": x,
                           "y1": y + AUX_DROP - h / 2,
                           "line": {"color": "#b08d00", "width": 1.5, "dash": "dot"}})
        if b.shortcut:
            projection = b.shortcut == "projection"
            top = y + h / 2
            path = (f"M {x - w / 2},{top - 0.1} C {x - w / 2},{top + 0.45} "
                    f"{x + w / 2},{top + 0.45} {x + w / 2},{top - 0.1}")
            shapes.append({"type": "path", "path": path,
                           "line": {"color": PROJECTION if projection else IDENTITY, "width": 2,
                                    "dash": "dash" if projection else "solid"}})
        annotations.append({"x": x, "y": y, "showarrow": False,
                            "text": f"<b>{b.label}</b><br><span style='font-size:8px'>"
                                    f"{_shape(b.output_shape)}</span>",
                            "font": {"size": 10 if len(b.label) < 6 else 8, "color": "white"}})
    for stage, y in stage_rows.items():
        annotations.append({"x": -0.75, "y": y, "text": stage, "showarrow": False,
                            "xanchor": "right", "font": {"size": 12}})
    hover = []
    for b in blocks:
        extra = ""
        if b.shortcut:
            extra = (f"<br>shortcut: {b.shortcut}"
                     + (f" ({b.shortcut_params:,} parameters)" if b.shortcut_params else
                        " (0 parameters)"))
        if b.branches:
            extra = "<br>branches: " + ", ".join(f"{n} {c}" for n, c in b.branches)
        hover.append(f"<b>{b.name}</b> ({b.stage})<br>output {_shape(b.output_shape)}<br>"
                     f"{b.params:,} parameters<br>{b.macs / 1e6:,.1f} M mult-adds{extra}")
    fig.add_trace(go.Scatter(
        x=[pos[b.name][0] for b in blocks], y=[pos[b.name][1] for b in blocks], mode="markers",
        marker={"size": 28, "opacity": 0}, hovertext=hover, hoverinfo="text", showlegend=False))
    # legend entries for what colours and arcs mean
    legend = [(k, c) for k, c in KIND_COLOURS.items()
              if any(b.kind == k and not b.branches for b in blocks)]
    if any(b.branches for b in blocks):
        legend += [(f"branch {k}", c) for k, c in BRANCH_COLOURS.items()]
    for label, colour in legend:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label,
                                 marker={"size": 12, "color": colour, "symbol": "square"}))
    if any(b.shortcut for b in blocks):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="identity shortcut",
                                 line={"color": IDENTITY, "width": 2}))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="projection shortcut",
                                 line={"color": PROJECTION, "width": 2, "dash": "dash"}))
    ys = [p[1] for p in pos.values()]
    xs = [p[0] for p in pos.values()]
    rows = (max(ys) - min(ys)) / ROW_STEP + 1
    fig.update_layout(
        shapes=shapes, annotations=annotations, height=max(260, int(110 * rows) + 90),
        xaxis={"visible": False, "range": [-2.6, max(xs) + 1]},
        yaxis={"visible": False, "range": [min(ys) - 1, max(ys) + 1], "scaleanchor": None},
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
        title={"text": f"{net.title}: {len(blocks)} blocks, {net.depth} weight layers deep",
               "font": {"size": 14}},
    )
    return fig


def heatmaps(images: list, titles: list[str], colorscale: str = "Viridis",
             scale: str = "each", height: int = 260) -> go.Figure:
    """Side-by-side images (2-D arrays) for the experiments.

    scale="each": every image has its own colour bar; "shared": one range and bar for all;
    "none": no bar (pictures whose values mean nothing by themselves, like random responses).
    """
    import numpy as np

    n = len(images)
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles,
                        horizontal_spacing=0.06 if scale == "each" else 0.02)
    lo = min(float(np.min(a)) for a in images) if scale == "shared" else None
    hi = max(float(np.max(a)) for a in images) if scale == "shared" else None
    for i, image in enumerate(images, start=1):
        axis = "" if i == 1 else str(i)
        domain = fig.layout[f"xaxis{axis}"].domain
        colorbar = {"x": domain[1] + 0.003, "thickness": 8, "len": 0.8, "xanchor": "left",
                    "tickfont": {"size": 9}}
        show = scale == "each" or (scale == "shared" and i == n)
        fig.add_trace(go.Heatmap(z=np.asarray(image)[::-1], colorscale=colorscale, zmin=lo,
                                 zmax=hi, showscale=show, colorbar=colorbar), row=1, col=i)
        fig.update_xaxes(visible=False, row=1, col=i)
        fig.update_yaxes(visible=False, scaleanchor=f"x{axis}", row=1, col=i)
    fig.update_layout(height=height, margin={"l": 5, "r": 5, "t": 30, "b": 5})
    return fig


def channel_bars(labels: list[str], before, after, title: str) -> go.Figure:
    """Per-channel activations before and after (LRN)."""
    fig = go.Figure([
        go.Bar(x=labels, y=list(map(float, before)), name="before LRN", marker_color="#4c78a8"),
        go.Bar(x=labels, y=list(map(float, after)), name="after LRN", marker_color="#f58518"),
    ])
    fig.update_layout(title={"text": title, "font": {"size": 13}}, barmode="group", height=300,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="channel (edge orientation)", yaxis_title="activation")
    return fig
