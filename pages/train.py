"""Train: the seed's MNIST CNN trains live; then look inside what it learned.

One scroll, or in presenter mode (or from a `?step=N` link) five steps walked with Back/Next
and the keys → ←: the config, the live curve, the filters, the confusion matrix and your
digit (cnnlab.train.steps; the steps' parts in cnnlab.ui.train_views).
"""

from __future__ import annotations

import streamlit as st

from cnnlab.errors import ConfigError
from cnnlab.train import charts, runs, steps, warmup
from cnnlab.train.backend import shared_manager
from cnnlab.train.config import TrainConfig
from cnnlab.train.inside import activation_maps, conv_layers, first_layer_filters
from cnnlab.train.jobs import ACTIVE, JobError, JobState, TrainingJob
from cnnlab.train.metrics import TestReport
from cnnlab.train.model import job_for, to_inputs
from cnnlab.train.snapshots import add_snapshots
from cnnlab.ui import present, replay, views, walkthrough
from cnnlab.ui import train_views as parts
from cnnlab.ui.explain import explain_progress, explanation_ui, feature_grids_ui
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.job_progress import TRAIN_WORDING, progress_ui, progress_view
from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.owner import page_runs, watch_notice_ui, watch_own_run
from cnnlab.ui.safe import plain
from cnnlab.vision.explain import lab as explain_lab

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

TRAIN_SANITY_BLOCKS = 4   # the seed CNN: output, dense1, conv2, conv1 (all of it)
PREPARING = ("preparing: loading the data and building the model (the first run in a server "
             "also loads TensorFlow)…")
INTRO = ("The seed's network (exercise 7) trains in front of you: the loss falls batch by "
         "batch. Training runs in the background on the server; you can leave and come back.")


def intro_ui(walking: bool) -> None:
    st.title("Train")
    if not walking:         # a walk has it at the end of step 1, folded on a projector
        st.markdown(INTRO)


def start_training() -> None:
    # A button callback runs before the page does, so the page draws the job (and an
    # enabled Stop button) in the same run.
    config = st.session_state.get("train_config")
    if config is None:
        return
    try:
        job = manager.submit(owner, job_for(config, extend=add_snapshots))
    except (JobError, ConfigError) as exc:
        st.session_state["train_error"] = str(exc)
        return
    watch_own_run(job)      # the URL names the new run (a link to it is a link to watch)
    parts.go_to(steps.LIVE)   # in a walk: on to the live curve


def stop_training() -> None:
    manager.stop(owner)


def controls_ui(config: TrainConfig | None) -> TrainingJob | None:
    """Train and Stop, and the server's training slots; returns this browser's active job."""
    st.session_state["train_config"] = config
    active = manager.active(owner)
    buttons = st.columns([1, 1, 4])
    buttons[0].button("Train", key="train", type="primary", icon=":material/play_arrow:",
                      disabled=config is None or active is not None, width="stretch",
                      on_click=start_training)
    if not run_view.watching:   # someone else's run is not this browser's to stop
        buttons[1].button("Stop", key="stop", icon=":material/stop:", disabled=active is None,
                          width="stretch", on_click=stop_training)
    if st.session_state.get("train_error"):
        st.error(plain(st.session_state.pop("train_error")), icon=":material/error:")
    counts = manager.counts()
    buttons[2].caption(f"Server: {counts['running']} of {counts['max_concurrent']} training "
                       f"slots busy, {counts['queued']} queued (CNNLAB_MAX_JOBS).")
    return active


def live_panel() -> None:
    job = run_view.job if run_view.watching else manager.active(owner) or manager.latest(owner)
    if job is None:
        st.caption("Press **Train** to start. The chart updates twice a second.")
        return
    snap = job.snapshot()
    st.subheader(snap.label)
    view = progress_view(snap, TRAIN_WORDING, preparing=(0.0, PREPARING))
    progress_ui(view)
    if view.training and snap.info:
        st.caption(f"Data: {snap.info.get('source')}: {snap.info.get('train_images', 0):,} "
                   f"training, {snap.info.get('validation_images', 0):,} validation, "
                   f"{snap.info.get('test_images', 0):,} test images.")
    if snap.batches or not snap.finished:
        # Drawn empty from the click on: the browser loads its plotting code meanwhile and
        # the first point lands in a chart already in place (no layout shift).
        present.chart(charts.live_figure(snap), width="stretch", key="live_chart")
    if snap.state == JobState.DONE:
        st.success(f"Test accuracy {snap.result['test_accuracy']:.2%} on "
                   f"{snap.result['test_images']:,} test images.", icon=":material/check_circle:")
    if st.session_state.get("live_slow_poll") and snap.epochs and not snap.finished:
        st.session_state["live_slow_poll"] = False
        st.rerun()      # batches are coming: switch from the 2 s poll to the 0.5 s redraw
    if snap.finished and st.session_state.get("live_job") == snap.id:
        # The job just ended: rerun the whole page to stop the timer and show the analysis.
        st.session_state["live_job"] = None
        st.rerun()


def live_ui(active: TrainingJob | None) -> None:
    """The live panel, redrawn twice a second while training. While the job is still
    preparing (the first run in a server imports TensorFlow) it polls every 2 s: Streamlit
    garbage-collects after every run, which would slow that import down; the panel reruns
    the page once batches arrive. Once the server's warm-up has imported it, 0.5 s from the
    start, and the first point is drawn by the panel itself: no page rerun (a whole Train
    page beside a training thread took 3 s, measured in Chromium)."""
    snap = active.snapshot() if active is not None else None
    preparing = snap is not None and not snap.epochs
    # Slow polls while TensorFlow loads, and while queued: a room of queued sessions
    # redrawing twice a second would take the CPU from the runs they wait for.
    slow = preparing and (not warmup.done() or snap.queue_position is not None)
    if active is not None:
        st.session_state["live_job"] = active.id
        st.session_state["live_slow_poll"] = slow
    st.fragment(run_every=(2.0 if slow else 0.5) if active is not None else None)(live_panel)()


def inside_ui(job: TrainingJob, dataset, analysis: TestReport, slide: bool = False) -> None:
    names = dataset.class_names
    convs = conv_layers(job.model)
    if convs:
        st.markdown("**First-layer filters** (red: positive weights, blue: negative). "
                    "Each is a 3x3 (or larger) pattern detector slid over the image.")
        present.chart(charts.filters_figure(first_layer_filters(job.model), slide),
                      width="stretch", key="filters")
    else:
        st.info("The dense net has no filters: every hidden unit sees all 784 pixels at once.")
        return
    index = st.number_input("Test image", 0, dataset.n_test - 1, 0, key="act_index",
                            help="Index into the test set")
    left, right = st.columns([1, 5])
    left.image(dataset.x_test[index], caption=f"true: {names[dataset.y_test[index]]}, "
               f"predicted: {names[analysis.y_pred[index]]}", width="stretch")
    maps = activation_maps(job.model, to_inputs(dataset.x_test[index:index + 1])[0])
    with right:
        for name, m in maps:
            st.markdown(f"**{name}**: {m.shape[2]} activation maps of {m.shape[0]}x{m.shape[1]}")
            present.chart(charts.activations_figure(m), width="stretch", key=f"maps_{name}")


def explain_digit_ui(job: TrainingJob, dataset, analysis: TestReport) -> None:
    """Where did the network look on one test image: every method that applies, its scores
    and the sanity check, computed on a click and kept with the run."""
    names = dataset.class_names
    st.divider()
    st.markdown("**Where did it look?** The explanation methods of the Classify page on one "
                "test image: each map and its time, and how faithful it is (deletion and "
                "insertion). Pick a mistake to see what misled the network.")
    shown = int(st.session_state.get("act_index", 0))
    mistakes = [m.index for m in analysis.mistakes()]     # the most confident first
    choices = [shown] + [i for i in mistakes if i != shown]

    def describe(i: int) -> str:
        return (f"#{i}: true {names[dataset.y_test[i]]}, predicted {names[analysis.y_pred[i]]} "
                f"({analysis.probs[i].max():.0%})" + (" · a worst mistake" if i in mistakes else ""))

    pick, klass, go, sanity = st.columns([2.2, 1.3, 1, 1.2], vertical_alignment="bottom")
    index = int(pick.selectbox("Test image to explain", choices, format_func=describe,
                               key="explain_digit",
                               help="The test image chosen above, or one of the worst mistakes."))
    true, predicted = int(dataset.y_test[index]), int(analysis.y_pred[index])

    def class_label(k: int) -> str:
        tags = [tag for tag, hit in (("predicted", k == predicted), ("true", k == true)) if hit]
        return names[k] + (f" ({', '.join(tags)})" if tags else "")

    class_index = int(klass.selectbox("Class to explain", range(len(names)), index=predicted,
                                      key=f"explain_class_{index}", format_func=class_label))
    options = explain_lab.page_options(sanity_depth=TRAIN_SANITY_BLOCKS)
    x = to_inputs(dataset.x_test[index:index + 1])[0]
    report = runs.explanation_of(job, index, x, class_index, options, compute=False)
    explain_clicked = go.button("Explain", key="explain_digit_go", icon=":material/travel_explore:",
                                disabled=report is not None or run_view.watching, width="stretch")
    sanity_clicked = sanity.button("Sanity check", key="explain_digit_sanity",
                                   icon=":material/shuffle:", width="stretch",
                                   disabled=run_view.watching or report is not None
                                   and report.sanity is not None,
                                   help="Re-draw the layers' weights, top first (Adebayo et "
                                        "al. 2018): do the maps change?")
    if explain_clicked or sanity_clicked:
        try:
            with explain_progress() as progress:
                report = runs.explanation_of(job, index, x, class_index, options,
                                             sanity=sanity_clicked, progress=progress)
        except Exception as exc:  # never a traceback on the page
            st.error(plain(f"Could not explain this image ({type(exc).__name__}: {exc})"),
                     icon=":material/error:")
            return
        st.rerun()  # redraw with the kept report (and its buttons disabled)
    if report is not None:
        explanation_ui(report, explain_lab.digit_view(x), f"train-{job.id}-{index}-{class_index}",
                       what="digit")


def features_ui(job: TrainingJob, dataset) -> None:
    """What does filter 7 look for? The image each first- and second-layer filter and each
    class responds to most, computed on a click and kept with the run."""
    st.divider()
    st.markdown("**What does each unit look for?** Feature visualization: for every filter of "
                "the first two conv layers and every class, an image optimised by gradient "
                "ascent to excite it most (smooth, decorrelated images, jittered each step).")
    features = runs.features_of(job, compute=False)
    if features is None and run_view.watching:
        st.caption("Not visualized by the run's owner yet.")
        return
    if features is None:
        if not st.button("Visualize the features", key="features_go",
                         icon=":material/visibility:",
                         help=f"{runs.FEATURE_STEPS} steps per layer, every unit of a layer "
                              "at once: seconds to a minute on this CPU."):
            return
        try:
            with explain_progress("Optimising images…") as progress:
                features = runs.features_of(job, progress)
        except Exception as exc:  # never a traceback on the page
            st.error(plain(f"Could not visualize the features ({type(exc).__name__}: {exc})"),
                     icon=":material/error:")
            return
        st.rerun()  # redraw with the kept grids (and without the button)
    feature_grids_ui(features, dataset.class_names)


def compare_ui() -> None:
    ended = runs.ended_runs(manager.jobs_of(owner))
    if not ended:
        st.caption("Finished runs of this session appear here.")
        return
    labels = {f"{j.id}: {j.label}": j for j in ended}
    chosen = st.multiselect("Runs to overlay", list(labels), default=list(labels)[-3:],
                            key="compare_runs")
    st.dataframe(runs.compare_rows(ended), hide_index=True, width="stretch")
    if chosen:
        present.chart(charts.compare_figure([labels[c].snapshot() for c in chosen]),
                      width="stretch", key="compare_chart")


def download_ui(job: TrainingJob) -> None:
    st.download_button("Download the model (.keras)", runs.keras_file(job),
                       file_name=f"cnnlab-{job.id}.keras", icon=":material/download:",
                       mime="application/octet-stream", key="download")
    replay.download_ui(job, runs.report_of(job))


def looked_at() -> TrainingJob | None:
    """The run the results are of: the watched one, or this browser's latest."""
    return run_view.job if run_view.watching else manager.latest(owner)


def inside_tab_ui(job: TrainingJob, dataset, analysis: TestReport, slide: bool = False) -> None:
    with one_line_errors("Drawing the filters and activations"):
        inside_ui(job, dataset, analysis, slide)
    with one_line_errors("Explaining a test image"):
        explain_digit_ui(job, dataset, analysis)
    with one_line_errors("Visualizing the features"):
        features_ui(job, dataset)


def results_ui() -> None:
    """After training: inside the latest run (or the watched one, read-only: no comparison
    with this browser's runs, no download), or only the comparison of earlier runs."""
    latest = looked_at()
    if runs.inspectable(latest):
        st.divider()
        st.header("Inside the trained network")
        dataset = runs.dataset_of(latest)
        analysis = runs.report_of(latest, st.spinner("Predicting the test set…"))
        if dataset is None or analysis is None:
            st.info("This run has no test set to look at.")
            return
        tabs = st.tabs([":material/grid_view: Filters & activations",
                        ":material/table_chart: Confusion matrix",
                        ":material/report: Worst mistakes",
                        ":material/draw: Your digit" if dataset.name == "mnist"
                        else ":material/draw: Your own image",
                        ":material/stacked_line_chart: Compare runs"][:4 if run_view.watching else 5])
        with tabs[0]:
            inside_tab_ui(latest, dataset, analysis)
        with tabs[1]:
            with one_line_errors("Drawing the confusion matrix"):
                parts.confusion_ui(dataset, analysis)
        with tabs[2]:
            with one_line_errors("Showing the worst mistakes"):
                parts.mistakes_ui(dataset, analysis)
        with tabs[3]:
            with one_line_errors("Classifying your image"):
                parts.own_digit_ui(latest, dataset)
        if run_view.watching:
            return
        with tabs[4]:
            with one_line_errors("Comparing the runs"):
                compare_ui()
        with one_line_errors("Offering the model"):
            download_ui(latest)
    elif not run_view.watching and runs.ended_runs(manager.jobs_of(owner), with_model=True):
        st.divider()
        with one_line_errors("Comparing the runs"):
            compare_ui()


def config_step_ui() -> TrainConfig | None:
    config = parts.config_ui()
    if config is not None:
        with one_line_errors("The memory and time estimate"):
            parts.calculator_ui(config)
    return config


def live_step_ui(active: TrainingJob | None) -> None:
    watch_notice_ui(run_view)
    if run_view.watching:   # polled while the watched run trains
        live_ui(run_view.job if run_view.job.state in ACTIVE else None)
    else:
        live_ui(active)


def step_ui(number: int) -> None:
    """One step of the walk: only its part of the page."""
    part = steps.step(number).part
    if part == "config":
        controls_ui(config_step_ui())
        present.note(INTRO)
        return
    if part == "live":       # the curve first, on a projector's screen; Train below it
        curve, below = st.container(), st.container()
        with below:
            config = parts.checked(st.session_state)   # step 1's widgets, kept undrawn
            active = controls_ui(config)
            if config is not None:
                st.caption(plain(f"Next run: {config.label()} (step 1 changes it)."))
            with one_line_errors("Offering the recorded runs"):
                replay.picker_ui()
        with curve:
            live_step_ui(active)
        return
    job = looked_at()
    if not runs.inspectable(job):
        st.info(steps.run_notice(job.state if job else None, run_view.watching),
                icon=":material/hourglass_empty:")
        return
    dataset = runs.dataset_of(job)
    analysis = runs.report_of(job, st.spinner("Predicting the test set…"))
    if dataset is None or analysis is None:
        st.info("This run has no test set to look at.")
    elif part == "filters":
        inside_tab_ui(job, dataset, analysis, slide=True)
    elif part == "confusion":
        with one_line_errors("Drawing the confusion matrix"):
            parts.confusion_ui(dataset, analysis)
        st.subheader("The worst mistakes")
        with one_line_errors("Showing the worst mistakes"):
            parts.mistakes_ui(dataset, analysis)
    else:
        with one_line_errors("Classifying your image"):
            parts.own_digit_ui(job, dataset)


walking = parts.stepping()
intro_ui(walking)
if replay.replay_ui(offer=not walking):   # ?replay=NAME or an opened recording
    walkthrough.release_keys()
    st.stop()            # a replay trains nothing: no config, no live run, no TensorFlow
# Whose runs: the browser's cookie (a refresh keeps control) and session_state (page switches).
# The URL names only the run shown: a shared link lets others watch it, read-only.
manager = shared_manager()
owner, run_view = page_runs("train", manager)   # let go once its last session has ended
view = views.opened("train", parts.params())   # the config and the step in the URL
number = parts.walk_ui(view)
if number is not None:
    step_ui(number)
else:
    if walking:          # a bad ?step= without presenter mode: the whole page after all
        with one_line_errors("Offering the recorded runs"):
            replay.picker_ui()
    live_step_ui(controls_ui(config_step_ui()))
    results_ui()
