"""Figures of the Architectures walk-through: an inception module assembled branch by branch,
and a residual unit before and after its shortcut. Drawn from cnnlab.nets.steps' numbers;
no TensorFlow.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.nets.charts import BRANCH_COLOURS, IDENTITY, PROJECTION
from cnnlab.nets.steps import BRANCHES, BranchTotals, ResidualBuildUp

WITH_REDUCE, NAIVE = "#4c78a8", "#bab0ac"
HEIGHT = 470
RESIDUAL_HEIGHT = 400
BRANCH_TEXT = {"1x1": ("1x1 conv",), "3x3": ("1x1 reduce", "3x3 conv"),
               "5x5": ("1x1 reduce", "5x5 conv"), "pool": ("3x3 max pool", "1x1 proj")}


def _box(fig: go.Figure, x: float, y: float, text: str, colour: str, *, width: float = 0.9,
         height: float = 0.55, subplot: bool = False) -> None:
    """A labelled box centred on (x, y); `subplot`: in the first cell of a subplot grid."""
    cell = {"row": 1, "col": 1} if subplot else {}
    fig.add_shape(type="rect", x0=x - width / 2, x1=x + width / 2, y0=y - height / 2,
                  y1=y + height / 2, fillcolor=colour, opacity=0.9,
                  line={"color": "#333333", "width": 1.5}, **cell)
    fig.add_annotation(x=x, y=y, text=text, showarrow=False, font={"color": "white", "size": 13},
                       **cell)


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float, colour: str = "#555555",
           *, xref: str = "x", yref: str = "y", width: float = 1.5) -> None:
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref=xref, yref=yref, axref=xref, ayref=yref,
                       showarrow=True, arrowhead=2, arrowwidth=width, arrowcolor=colour, text="")


def inception_build_up_figure(totals: list[BranchTotals], shown: int,
                              input_text: str) -> go.Figure:
    """Left: the module with its first `shown` branches (5: concatenated). Right: the
    parameters after each branch, with the 1x1 reduces and without (the naive module)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.08,
                        subplot_titles=("The module so far",
                                        "Parameters, with and without the 1x1 reduces"))
    branches = min(shown, len(BRANCHES))
    _box(fig, 2.5, 0, f"input {input_text}", "#8d99ae", width=2.6, subplot=True)
    for i, branch in enumerate(BRANCHES[:branches]):
        x = 1 + i
        colour = BRANCH_COLOURS[branch]
        layers = BRANCH_TEXT[branch]
        for level, text in enumerate(layers, start=1):
            _box(fig, x, level * 1.1, text, colour, subplot=True)
        _arrow(fig, 2.5, 0.3, x, 1.1 - 0.3)
        if len(layers) == 2:
            _arrow(fig, x, 1.1 + 0.28, x, 2.2 - 0.28)
        top = len(layers) * 1.1
        fig.add_annotation(x=x, y=top + 0.45, showarrow=False, font={"size": 12},
                           text=f"{totals[i].channels - (totals[i - 1].channels if i else 0)} ch")
    if shown > len(BRANCHES):
        _box(fig, 2.5, 3.3, f"concatenate: {totals[-1].channels} channels", "#e45756",
             width=3.4, subplot=True)
        for i in range(len(BRANCHES)):
            _arrow(fig, 1 + i, 2.2 + 0.3 if i else 1.1 + 0.3, 2.5, 3.3 - 0.28)
    fig.update_xaxes(range=[0.3, 4.7], visible=False, row=1, col=1)
    fig.update_yaxes(range=[-0.5, 3.8], visible=False, row=1, col=1)

    labels = [" + ".join(BRANCHES[:i + 1]) if i == 0 else f"+ {b}"
              for i, b in enumerate(BRANCHES)]
    done = totals[:branches]
    fig.add_trace(go.Bar(x=labels[:branches], y=[t.params for t in done], name="with 1x1 reduces",
                         marker_color=WITH_REDUCE, text=[f"{t.params:,}" for t in done],
                         textposition="outside", cliponaxis=False,
                         hovertemplate="%{x}: %{y:,} parameters<extra>with reduces</extra>"),
                  row=1, col=2)
    fig.add_trace(go.Bar(x=labels[:branches], y=[t.naive_params for t in done],
                         name="without (naive)", marker_color=NAIVE,
                         text=[f"{t.naive_params:,}" for t in done], textposition="outside",
                         cliponaxis=False,
                         hovertemplate="%{x}: %{y:,} parameters<extra>naive</extra>"), row=1, col=2)
    top = max(max(t.naive_params, t.params) for t in totals)
    fig.update_xaxes(categoryorder="array", categoryarray=labels, range=[-0.5, len(labels) - 0.5],
                     row=1, col=2)
    fig.update_yaxes(range=[0, top * 1.25], title_text="parameters", row=1, col=2)
    fig.update_layout(height=HEIGHT, barmode="group", margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.12, "x": 0.56})
    return fig


def residual_figure(unit: ResidualBuildUp, part: str, residual_layers: list[str]) -> go.Figure:
    """The unit bottom to top: x, the residual branch F(x), the sum and its ReLU. `part`:
    "f" (no shortcut yet), "identity" (x added as it is) or "projection" (x through a 1x1
    convolution with the stride, and batch normalization)."""
    fig = go.Figure()
    n = len(residual_layers)
    x = 2.0                                   # the residual branch's column
    _box(fig, x, 0, "x " + "x".join(map(str, unit.input_shape)), "#8d99ae", width=1.8)
    for i, text in enumerate(residual_layers, start=1):
        _box(fig, x, i, text, "#54a24b", width=1.8)
        _arrow(fig, x, i - 1 + 0.28, x, i - 0.28)
    top = n + 1
    fig.add_annotation(x=x + 1.0, y=(n + 1) / 2, showarrow=False, xanchor="left",
                       text=f"F(x): {unit.residual_params:,} parameters", font={"size": 13})
    if part == "f":
        _box(fig, x, top, "F(x)", "#54a24b", width=1.8)
    else:
        _box(fig, x, top, "F(x) + shortcut → ReLU", "#333333", width=2.2)
    _arrow(fig, x, n + 0.28, x, top - 0.28)
    if part != "f":
        left = x - 1.1                        # where the shortcut enters the sum's box
        if part == "identity":
            colour, text = IDENTITY, "identity: x itself, 0 parameters"
            fig.add_shape(type="path", path=f"M {x - 0.9} 0 C -0.2 0 -0.2 {top} {left} {top}",
                          line={"color": colour, "width": 3})
        else:
            colour = PROJECTION
            text = f"projection: {unit.projection_params:,} parameters"
            mid = top / 2
            fig.add_shape(type="path", path=f"M {x - 0.9} 0 C 0 0 0 {mid - 0.6} 0 {mid - 0.28}",
                          line={"color": colour, "width": 3})
            _box(fig, 0, mid, f"1x1 conv /{unit.projection_stride} + BN", colour, width=1.5)
            fig.add_shape(type="path", path=f"M 0 {mid + 0.28} C 0 {top} 0 {top} {left} {top}",
                          line={"color": colour, "width": 3})
        fig.add_annotation(x=-0.7, y=top + 0.6, showarrow=False, xanchor="left", text=text,
                           font={"color": colour, "size": 14})
    fig.update_xaxes(range=[-0.9, 5.2], visible=False)
    fig.update_yaxes(range=[-0.5, top + 0.95], visible=False)
    fig.update_layout(height=RESIDUAL_HEIGHT, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      showlegend=False)
    return fig
