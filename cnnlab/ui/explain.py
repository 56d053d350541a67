"""The explanation lab as the Classify and Train pages draw it: one drawing of a report
(every method's map and time, the faithfulness table and curves, the sanity cascade), the
progress bar a computation runs under, and the Train page's feature-visualization tiles.

    with explain_progress() as progress:
        report = explain(model, x, progress=progress)
    explanation_ui(report, view, "photo-3")

The numbers come from `cnnlab.vision.explain`; this module only draws them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import streamlit as st
from PIL import Image

from cnnlab.ui.safe import plain
from cnnlab.vision.explain import charts
from cnnlab.vision.explain.features import FeatureVisualization
from cnnlab.vision.explain.lab import (
    METHOD_NOTES,
    format_seconds,
    quick_note,
    scorecam_note,
    unit_tiles,
)
from cnnlab.vision.explain.report import ExplanationReport, Progress

MAP_COLUMNS = 4
TILE_SIZE = 84      # pixels per feature-visualization tile (a 28 x 28 digit at 3x)


@contextmanager
def explain_progress(text: str = "Explaining…") -> Iterator[Progress]:
    """A progress bar for `explain`'s progress(fraction, text); removed when done."""
    bar = st.progress(0.0, text=text)

    def progress(fraction: float, stage: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        bar.progress(fraction, text=f"{stage} ({fraction:.0%})")

    yield progress
    bar.empty()


def explanation_ui(report: ExplanationReport, view: Image.Image, widget_key: str,
                   untrained: bool = False, what: str = "view", sanity: bool = True) -> None:
    """Maps side by side with their times, the scores in a table and a plot, which method
    is most faithful here; then the sanity cascade when it was run (and `sanity`: a step of
    Classify's walk draws it on its own). `what` names the picture the maps lie over
    ("view", "digit")."""
    if untrained:
        st.warning("UNTRAINED network: each map shows how a network with random weights reacts "
                   "to this image, not what a trained one learned. Its softmax is nearly "
                   f"uniform (this class: {report.output:.2%}), so every deletion and insertion "
                   "score below is meaningless.", icon=":material/warning:")
    columns = st.columns(MAP_COLUMNS)
    for i, (name, m) in enumerate(report.methods.items()):
        columns[i % MAP_COLUMNS].image(report.overlay(name, view), width="stretch",
                                       caption=f"{m.label} · {format_seconds(m.seconds)}")
    height, width = report.input_shape[:2]
    scorecam = report.methods.get("scorecam")
    st.caption(f"Each map over the {width}×{height} {what}: red = most important for the class "
               f"(its output: {report.output:.1%}). Times are this server's CPU; the first run "
               "of each method in a server includes 2–3 s of tracing. "
               + " ".join(note for note in (
                   scorecam_note(scorecam.details.get("channels"),
                                 scorecam.details.get("all_channels")) if scorecam else "",
                   quick_note()) if note))
    st.dataframe(report.rows(), hide_index=True, width="stretch")
    low, high = report.output_range()
    if high - low < 0.01:
        st.info(f"The class's output stays between {low:.4f} and {high:.4f} on every curve: "
                "the scores cannot tell the methods apart on this image.", icon=":material/info:")
    else:
        best = report.most_faithful()
        st.markdown(f"Most faithful here: **{report.methods[best['deletion']].label}** by "
                    "deletion (the output falls fastest when its top pixels go), "
                    f"**{report.methods[best['insertion']].label}** by insertion (it rises "
                    "fastest when they come back).")
    st.plotly_chart(charts.faithfulness_figure(report), width="stretch",
                    key=f"faithfulness-chart-{widget_key}")
    with st.expander("What each method computes", icon=":material/help:"):
        st.markdown("\n".join(f"- **{m.label}**: {METHOD_NOTES[name]}"
                              for name, m in report.methods.items()))
    if sanity and report.sanity is not None:
        sanity_ui(report, view, widget_key, untrained)


def sanity_ui(report: ExplanationReport, view: Image.Image, widget_key: str,
              untrained: bool = False) -> None:
    """The cascade: rank correlation per block in a plot, then per method its maps
    degrading (or not) block by block, and what that means."""
    st.markdown("**Sanity check** (Adebayo et al. 2018). The top blocks' weights are re-drawn "
                "at random, top block first and cumulatively, and every map is computed again. "
                "ρ is the rank correlation (Spearman) with the trained network's map. A map "
                "that explains the network must change when what the network learned is "
                "destroyed; one that stays similar shows the image, not the network.")
    if untrained:
        st.caption("The weights were random already: here the check can only show how the "
                   "maps depend on one random draw or another.")
    st.plotly_chart(charts.sanity_figure(report), width="stretch", key=f"sanity-chart-{widget_key}")
    blocks = len(report.sanity.steps)
    for name, m in report.methods.items():
        text, *columns = st.columns([2] + [1] * (1 + max(blocks, 2)))
        text.markdown(f"**{m.label}** {plain(m.verdict())}")
        columns[0].image(report.overlay(name, view), caption="trained", width="stretch")
        for column, (block, rho, picture) in zip(columns[1:], report.randomized_overlays(name, view),
                                                 strict=False):
            column.image(picture, caption=f"+ {block}: ρ = {rho:.2f}", width="stretch")


def feature_grids_ui(features: FeatureVisualization, class_names: Sequence[str]) -> None:
    """Each layer's units as labelled tiles ("filter 7", a class name), with what was
    maximised and how far the ascent raised it."""
    for grid in features.grids:
        count = len(grid.images)
        if grid.target == "neuron":
            _, _, height, width = grid.window
            st.markdown(f"**{plain(grid.layer)}**: {count} filters, each as the {height}×{width} "
                        "patch of pixels (its centre neuron's receptive field) that excites it "
                        "most: white where the filter adds, black where it subtracts.")
        elif grid.target == "channel":
            st.markdown(f"**{plain(grid.layer)}**: {count} filters, each as the image that makes "
                        "its mean response over the whole map highest.")
        else:
            st.markdown(f"**{plain(grid.layer)}**: the image each of the {count} classes' scores "
                        "likes best.")
        labels = ([str(name) for name in class_names] if grid.kind == "class"
                  else [f"filter {k}" for k in range(count)])
        st.image(unit_tiles(grid), caption=labels, width=TILE_SIZE)
    st.caption(f"{features.steps} steps of gradient ascent per layer, every unit of a layer at "
               f"once, {features.seconds:.0f} s in all. On average each unit's response rose "
               + ", ".join(f"from {g.start_objective.mean():.2f} to {g.objective.mean():.2f} "
                           f"({g.layer})" for g in features.grids) + ".")
