"""Plotly figures of the explanation lab: the deletion and insertion curves of every method,
and the sanity cascade's rank correlation block by block. Inputs are `ExplanationReport`s;
no Keras here."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.ui.safe import plotly_label
from cnnlab.vision.explain.report import SIMILAR, ExplanationReport

# One colour per method, the same in both figures (and in the order of METHODS).
METHOD_COLORS = {"gradcam": "#d62728", "gradcam++": "#ff7f0e", "scorecam": "#8c564b",
                 "gradients": "#7f7f7f", "smoothgrad": "#2ca02c",
                 "integrated_gradients": "#1f77b4", "occlusion": "#9467bd"}


def faithfulness_figure(report: ExplanationReport, height: int = 380) -> go.Figure:
    """The class's output as the most important pixels are removed (deletion, left: falls
    fast for a faithful map) and added to a blurred copy (insertion, right: rises fast),
    one line per method, both areas in the legend."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.07, subplot_titles=(
        "Deletion: top pixels removed (lower area = better)",
        "Insertion: top pixels put back on a blurred copy (higher area = better)"))
    for name, m in report.methods.items():
        color = METHOD_COLORS.get(name, "#333333")
        for col, values, auc in ((1, m.curves.deletion, m.deletion_auc),
                                 (2, m.curves.insertion, m.insertion_auc)):
            fig.add_trace(go.Scatter(
                x=m.curves.fractions * 100, y=values, mode="lines", line=dict(color=color, width=2),
                name=f"{m.label} ({m.deletion_auc:.3f} / {m.insertion_auc:.3f})",
                legendgroup=name, showlegend=col == 1,
                hovertemplate=f"{m.label}: %{{y:.3f}} at %{{x:.0f}}% (area {auc:.3f})<extra></extra>"),
                row=1, col=col)
    fig.update_xaxes(title_text="% of pixels removed", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="% of pixels put back", range=[0, 100], row=1, col=2)
    fig.update_yaxes(title_text="output for the class", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(title="method (deletion / insertion area):", orientation="h",
                                  yanchor="top", y=-0.22, x=0, font=dict(size=12)))
    fig.update_annotations(font_size=13)
    return fig


def sanity_figure(report: ExplanationReport, height: int = 280) -> go.Figure:
    """Spearman rank correlation of each method's map with the trained model's map, after
    each cumulative re-draw (top block first); the dashed line is where a map counts as
    changed."""
    fig = go.Figure()
    lowest = min([rho for m in report.methods.values() for _, rho in m.randomized_similarity],
                 default=0.0)
    for name, m in report.methods.items():
        if not m.randomized:
            continue
        blocks = ["trained"] + [f"+ {plotly_label(block)}" for block, _ in m.randomized_similarity]
        fig.add_trace(go.Scatter(
            x=blocks, y=[1.0] + [rho for _, rho in m.randomized_similarity], mode="lines+markers",
            name=m.label, line=dict(color=METHOD_COLORS.get(name, "#333333"), width=2),
            hovertemplate=f"{m.label}: rank correlation %{{y:.2f}} after %{{x}}<extra></extra>"))
    fig.add_hline(y=SIMILAR, line_dash="dash", line_color="#999999",
                  annotation_text="below: the map changed", annotation_position="bottom left")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10),
                      title="Rank correlation with the trained model's map, blocks re-drawn top first",
                      yaxis=dict(title="Spearman ρ", range=[min(-0.2, lowest - 0.05), 1.05]),
                      xaxis=dict(title="re-drawn so far (cumulative)"))
    return fig
