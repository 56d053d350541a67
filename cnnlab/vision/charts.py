"""Figures for the Classify page."""

from __future__ import annotations

import plotly.graph_objects as go

from cnnlab.ui.safe import plotly_label


def top5_figure(top: list[tuple[str, str, float]], untrained: bool) -> go.Figure:
    names = [plotly_label(label.replace("_", " ")) for _, label, _ in top][::-1]
    probs = [p * 100 for *_, p in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h",
                           marker_color="#9e9e9e" if untrained else "#1f77b4",
                           text=[f"{p:.1f}%" for p in probs], textposition="auto",
                           hovertemplate="%{y}: %{x:.2f}%<extra></extra>"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=48, b=10),   # room for the title
                      title=f"Top-{len(top)} (untrained: meaningless)" if untrained
                      else f"Top-{len(top)} classes",
                      xaxis=dict(title="probability (%)", range=[0, max(100.0, max(probs))]))
    return fig
