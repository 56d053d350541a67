"""The Train page's parts that need nothing of the page's run state: its configuration
widgets and the config they make (also when a lecture step draws no widgets), the
calculator's numbers, the views of a finished run (confusion matrix, worst mistakes, your
own digit), and the walk through its steps (cnnlab.train.steps) with Back/Next and the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st

from cnnlab.calc.spec import SpecError
from cnnlab.errors import ConfigError
from cnnlab.train import charts, steps
from cnnlab.train.config import OPTIMIZERS, TrainConfig, dense_preset
from cnnlab.train.digit import predict_one, preprocess_digit
from cnnlab.train.jobs import TrainingJob
from cnnlab.train.metrics import TestReport
from cnnlab.ui import present, views, walkthrough
from cnnlab.ui.safe import plain
from cnnlab.ui.url_state import Param, UrlView, integer

PRESETS = {"Seed CNN (default)": "cnn", "Dense net, same parameter budget": "dense"}
DATASET_NAMES = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST clothes"}
STEP = Param(steps.PARAM, steps.STATE_KEY, integer(steps.FIRST, steps.LAST))


def params() -> list[Param]:
    """The page's view in the URL: the whole config and the step."""
    return [*views.train_params(PRESETS, DATASET_NAMES), STEP]


# ---------------------------------------------------------------------------- the config


def config_of(values: Mapping[str, Any]) -> TrainConfig:
    """The config of the widgets' values (keyed by widget key; a missing one is its
    default). Raises ConfigError for a config that cannot train."""
    defaults = {p.key: p.default for p in views.train_params(PRESETS, DATASET_NAMES)}

    def get(key: str) -> Any:
        value = values.get(key)
        return defaults[key] if value is None else value

    cnn = PRESETS.get(get("preset"), "cnn") == "cnn"
    config = TrainConfig(
        dataset=get("dataset"), architecture="cnn" if cnn else "dense",
        filters=(int(get("f1")), int(get("f2"))) if cnn else (32, 64),
        kernels=(int(get("k1")), int(get("k2"))) if cnn else (3, 3),
        dense_units=int(get("units")) if cnn else 128,
        dense_preset_units=None if cnn else int(get("preset_units")),
        dropout=float(get("dropout")), batch_size=int(get("batch")), epochs=int(get("epochs")),
        learning_rate=float(get("lr")), optimizer=get("optimizer"), seed=int(get("seed")),
        mixed_precision=bool(get("mixed")))
    config.validate()
    return config


def checked(values: Mapping[str, Any]) -> TrainConfig | None:
    """`config_of`, or None after one st.error line."""
    try:
        return config_of(values)
    except ConfigError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        return None


def config_ui() -> TrainConfig | None:
    """The configuration widgets; returns a validated config, or None after an st.error."""
    default = TrainConfig()
    top = st.columns([2, 2, 1, 1, 1])
    top[0].radio("Network", list(PRESETS), key="preset", horizontal=False,
                 help="The dense net has one hidden layer sized so its parameter "
                      "count matches the CNN's: seed answer 1, with real curves.")
    arch = PRESETS[st.session_state["preset"]]
    top[1].radio("Data", list(DATASET_NAMES), format_func=DATASET_NAMES.get, key="dataset")
    top[2].number_input("Epochs", 1, 200, default.epochs, key="epochs")
    top[3].selectbox("Batch size", [16, 32, 64, 128, 256, 512], index=2, key="batch")
    top[4].number_input("Seed", 0, 2**31 - 1, default.seed, key="seed",
                        help="The same seed gives the same curve.")
    with st.expander("Network and optimizer", icon=":material/tune:"):
        c = st.columns(4)
        if arch == "cnn":
            c[0].number_input("Conv 1 filters", 1, 512, 32, key="f1")
            c[1].number_input("Conv 2 filters", 1, 512, 64, key="f2")
            c[0].selectbox("Conv 1 kernel", [1, 3, 5, 7], index=1, key="k1")
            c[1].selectbox("Conv 2 kernel", [1, 3, 5, 7], index=1, key="k2")
            c[2].number_input("Dense units", 1, 4096, 128, key="units")
        else:   # the dense net matches the CNN's parameter count unless told otherwise
            c[0].number_input("Hidden units", 1, 4096,
                              dense_preset(default).dense_preset_units, key="preset_units")
        c[2].slider("Dropout", 0.0, 0.9, 0.0, 0.05, key="dropout",
                    help="Applied after the hidden dense layer; the seed uses none.")
        c[3].selectbox("Optimizer", list(OPTIMIZERS), key="optimizer")
        c[3].select_slider("Learning rate", [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1],
                           value=0.001, key="lr")
        c[2].toggle("Mixed precision (float16)", key="mixed",
                    help="Seed answer 3: activations take half the memory. On a CPU "
                         "it is slower, not faster.")
    return checked(st.session_state)


def calculator_ui(config: TrainConfig) -> None:
    """Parameters and memory from the calculator engine, before anything trains."""
    try:
        stats = config.stats()
    except SpecError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        return
    mem = stats.memory
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{stats.total_params:,}")
    cols[1].metric("Multiply-adds per image", f"{stats.total_macs:,}")
    cols[2].metric(f"Training memory, batch {mem.batch}", f"{mem.training_bytes / 1e6:.1f} MB",
                   help="Activations kept for backprop, input batch, parameters, gradients "
                        "and optimizer slots (cnnlab.calc).")
    cols[3].metric("Activation memory", f"{mem.activations_bytes / 1e6:.1f} MB",
                   help=f"every layer's output x batch {mem.batch}, {mem.dtype}")
    with st.expander("Layer by layer (from the calculator)", icon=":material/calculate:"):
        st.dataframe(
            [{"layer": s.name, "output shape": " x ".join(map(str, s.output_shape)),
              "parameters": s.params, "multiply-adds": s.macs} for s in stats.layers],
            hide_index=True, width="stretch")



# ---------------------------------------------------------------------------- the steps


def stepping() -> bool:
    return walkthrough.stepping(STEP, steps.WALK)


def walk_ui(view: UrlView) -> int | None:
    return walkthrough.walk_ui(view, STEP, steps.WALK, "train")


def go_to(number: int) -> None:
    """In a walk, show step `number` next (a button callback); nothing otherwise."""
    if st.session_state.get(STEP.key) is not None:
        st.session_state[STEP.key] = number


# ---------------------------------------------------------------------------- a finished run


def digit_grid(images: np.ndarray, captions: list[str], cols: int = 8) -> None:
    for start in range(0, len(images), cols):
        columns = st.columns(cols)
        for col, img, cap in zip(columns, images[start:start + cols], captions[start:start + cols],
                                 strict=False):
            col.image(img, caption=cap, width=84, clamp=True)


def confusion_ui(dataset, analysis: TestReport) -> None:
    names = list(dataset.class_names)
    st.markdown(f"Test accuracy **{analysis.accuracy:.2%}** on {len(analysis.y_true):,} images. "
                "Rows: the true class; columns: the prediction. **Click a cell** to see its images.")
    event = present.chart(charts.confusion_figure(analysis.confusion, names), width="stretch",
                          key="confusion", on_select="rerun", selection_mode="points")
    points = (event.selection.points if event and event.selection else []) or []
    cell = None
    if points and points[0].get("customdata"):
        cell = tuple(points[0]["customdata"][:2])
    if cell and st.session_state.get("cm_applied") != cell:
        st.session_state["cm_true"], st.session_state["cm_pred"] = names[cell[0]], names[cell[1]]
        st.session_state["cm_applied"] = cell
    c = st.columns(2)
    true = c[0].selectbox("True class", names, key="cm_true", index=None,
                          placeholder="click a cell or choose")
    pred = c[1].selectbox("Predicted class", names, key="cm_pred", index=None,
                          placeholder="click a cell or choose")
    if true is None or pred is None:
        return
    idx = analysis.indices(names.index(true), names.index(pred))
    st.caption(f"{len(idx):,} test images are {true} and were predicted {pred}"
               + (" (showing 32)" if len(idx) > 32 else ""))
    idx = idx[:32]
    digit_grid(dataset.x_test[idx], [f"#{i} {analysis.probs[i].max():.0%}" for i in idx])


def mistakes_ui(dataset, analysis: TestReport) -> None:
    names = dataset.class_names
    if not analysis.mistakes():
        st.success("No mistakes on the test set.")
        return
    st.markdown("The wrong predictions the network was **most sure** of.")
    digit_grid(dataset.x_test[[m.index for m in analysis.mistakes()]],
               [f"true {names[m.true]} → {names[m.predicted]} ({m.confidence:.0%})"
                for m in analysis.mistakes()])


def own_digit_ui(job: TrainingJob, dataset) -> None:
    from cnnlab.vision.images import MAX_UPLOAD_BYTES, UPLOAD_TYPES, ImageError, decode_image

    left, right = st.columns([1, 1.3])
    with left:
        thing = "a digit" if dataset.name == "mnist" else "a piece of clothing"
        st.markdown(f"Draw {thing} (white on black, as in the training images) or upload a "
                    "photo of one.")
        image = None
        try:
            from streamlit_drawable_canvas import st_canvas

            canvas = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000",
                               height=256, width=256, drawing_mode="freedraw", key="canvas", return_image_data=True,
                               update_streamlit=True)
            if canvas is not None and canvas.image_data is not None \
                    and canvas.image_data[..., :3].max() > 0:
                image = canvas.image_data
        except ImportError:
            st.caption("Drawing needs streamlit-drawable-canvas; uploading still works.")
        limit_mb = MAX_UPLOAD_BYTES // 2**20
        upload = st.file_uploader(f"…or upload an image (up to {limit_mb} MB)", type=UPLOAD_TYPES,
                                  key="digit_upload", max_upload_size=limit_mb)
        if upload is not None:
            try:
                # a digit needs 28x28: decoded small (issue 15: budgets before work)
                image = decode_image(upload.getvalue(), upload.name, min_side=112)
            except ImageError as exc:
                st.error(plain(str(exc)), icon=":material/error:")
                image = None
    with right:
        if image is None:
            st.caption("The preprocessing steps and the network's answer appear here.")
            return
        steps = preprocess_digit(image)
        if steps.empty:
            st.warning("The image is empty: nothing to classify.")
            return
        cols = st.columns(4)
        cols[0].image(steps.gray, caption="gray levels", width="stretch")
        cols[1].image(steps.normalized, caption="inverted to white on black" if steps.inverted
                      else "white on black already", width="stretch")
        cols[2].image(steps.fitted, caption="cropped, longer side scaled to 20 px",
                      width="stretch")
        cols[3].image(steps.centered, caption="28x28, centred by mass: what the net sees",
                      width="stretch")
        probs = predict_one(job.model, steps.x)
        names = dataset.class_names
        st.markdown(f"The network says **{names[int(np.argmax(probs))]}** "
                    f"({probs.max():.1%}).")
        present.chart(charts.probabilities_figure(probs, names), width="stretch", key="probs")
