"""Calculator: parameters, shapes, FLOPs and memory of a conv stack, exact to Keras, and
what-ifs that make training fit a GPU. The configuration lives in the URL.

The page only draws: cnnlab.calc computes (analysis, memory, fit), words it (report) and
draws the figures (charts); cnnlab.calc.presets holds the networks and the URL form
(cnnlab.calc.bookmark its compact form and size limit). No TensorFlow is imported here.
Text a user or a link brought (layer text, URL values, the errors that quote them) is shown
through `cnnlab.ui.safe.plain`, so no Markdown, HTML or LaTeX in it takes effect.
"""

import hashlib

import pandas as pd
import streamlit as st

from cnnlab.calc import bookmark, presets, report
from cnnlab.calc import charts as calc_charts
from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.fit import fit_options
from cnnlab.calc.framework_memory import FrameworkEstimate, framework_estimate
from cnnlab.calc.grammar import (
    GRAMMAR_HELP,
    KERAS_DEFAULTS,
    TABLE_COLUMNS,
    format_layers_text,
    layers_to_rows,
    parse_layers_text,
    rows_to_layers,
)
from cnnlab.calc.measure import MeasureError, Measurement, measure, measure_batches
from cnnlab.calc.memory import DTYPES, GB, MB, MEMORY_ASSUMPTIONS, OPTIMIZER_SLOTS
from cnnlab.calc.memory_gap import RULES, explain_gap
from cnnlab.calc.spec import (
    ACTIVATIONS,
    KINDS,
    LIMITS,
    MAX_BATCH,
    MAX_GPU_GB,
    MAX_SIZE,
    MIN_GPU_GB,
    PADDINGS,
    LayerSpec,
    SpecError,
)
from cnnlab.ui import present
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.safe import plain

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

KEYS = {"h": "calc_h", "w": "calc_w", "c": "calc_c", "batch": "calc_batch",
        "accum": "calc_accum", "dtype": "calc_dtype", "optimizer": "calc_optimizer",
        "gpu": "calc_gpu", "preset": "calc_preset"}


def apply_config(config: presets.CalcConfig) -> None:
    """Load `config` into the widgets and (as a new editor) the layer table."""
    state = st.session_state
    state[KEYS["h"]], state[KEYS["w"]], state[KEYS["c"]] = config.input_shape
    state[KEYS["batch"]] = config.batch
    state[KEYS["accum"]] = config.accum_steps
    state[KEYS["dtype"]] = config.dtype
    state[KEYS["optimizer"]] = config.optimizer
    state[KEYS["gpu"]] = float(config.gpu_gb)
    state[KEYS["preset"]] = presets.match_preset(config.input_shape, config.layers) \
        or state.get(KEYS["preset"], presets.DEFAULT_PRESET)
    state["calc_base_layers"] = list(config.layers)
    # A new key gives a fresh data_editor showing the new layers.
    state["calc_gen"] = state.get("calc_gen", -1) + 1


def widget_config(layers: list[LayerSpec]) -> presets.CalcConfig:
    """`layers` with the settings the widgets show."""
    state = st.session_state
    return presets.CalcConfig(
        (int(state[KEYS["h"]]), int(state[KEYS["w"]]), int(state[KEYS["c"]])), tuple(layers),
        int(state[KEYS["batch"]]), state[KEYS["dtype"]], state[KEYS["optimizer"]],
        float(state[KEYS["gpu"]]), int(state[KEYS["accum"]]))


def load_preset() -> None:
    name = st.session_state[KEYS["preset"]]
    apply_config(presets.preset_config(
        name, dtype=st.session_state[KEYS["dtype"]],
        optimizer=st.session_state[KEYS["optimizer"]], gpu_gb=st.session_state[KEYS["gpu"]]))


def load_text(text_key: str) -> None:
    try:
        layers = parse_layers_text(st.session_state[text_key])
    except SpecError as error:
        st.session_state["calc_text_error"] = str(error)
        return
    st.session_state.pop("calc_text_error", None)
    apply_config(widget_config(layers))


def open_config_ui() -> None:
    """On the first visit: the URL's configuration, else the default preset."""
    if "calc_gen" in st.session_state:
        return
    try:
        url = {key: st.query_params.get_all(key) for key in st.query_params}
        apply_config(presets.from_query(url) if url else
                     presets.preset_config(presets.DEFAULT_PRESET))
    except SpecError as error:
        st.session_state["calc_url_error"] = f"The link's configuration is not valid: {error}"
        apply_config(presets.preset_config(presets.DEFAULT_PRESET))


def header_ui() -> None:
    st.title("Calculator")
    st.caption("Output shapes, parameters, multiply-accumulates and memory of a CNN. Every "
               "shape and parameter count equals what Keras builds (checked against "
               "`count_params()` on hundreds of random networks).")
    if error := st.session_state.pop("calc_url_error", None):
        st.error(plain(error, 1000), icon=":material/link_off:")


def controls_ui() -> None:
    """Preset, input size, batch, accumulation, dtype, optimizer, GPU memory."""
    with st.container(border=True):
        top = st.columns([3, 1, 1, 1, 2])
        top[0].selectbox("Preset", list(presets.PRESETS), key=KEYS["preset"],
                         on_change=load_preset, help="Load a network; then edit it in the table.")
        top[1].number_input("Input height", min_value=1, max_value=MAX_SIZE, step=1,
                            key=KEYS["h"])
        top[2].number_input("Input width", min_value=1, max_value=MAX_SIZE, step=1,
                            key=KEYS["w"])
        top[3].number_input("Channels", min_value=1, max_value=MAX_SIZE, step=1, key=KEYS["c"])
        top[4].button("Reset to preset", icon=":material/restart_alt:", on_click=load_preset,
                      help="Throw away edits and reload the preset")
        bottom = st.columns(5)
        bottom[0].number_input("Batch size", min_value=1, max_value=MAX_BATCH, step=1,
                               key=KEYS["batch"])
        bottom[1].number_input("Gradient accumulation steps", min_value=1, max_value=MAX_BATCH,
                               step=1, key=KEYS["accum"], help="Micro-batch = batch / steps; "
                               "the update still uses the whole batch.")
        bottom[2].selectbox("dtype", list(DTYPES), key=KEYS["dtype"],
                            help="mixed_float16: 16-bit activations, 32-bit master weights")
        bottom[3].selectbox("Optimizer", list(OPTIMIZER_SLOTS), key=KEYS["optimizer"],
                            help="Slots per trainable parameter: " + ", ".join(
                                f"{name} {slots}" for name, slots in OPTIMIZER_SLOTS.items()))
        bottom[4].number_input("GPU memory (GB)", min_value=MIN_GPU_GB,
                               max_value=float(MAX_GPU_GB), step=1.0, format="%.1f",
                               key=KEYS["gpu"])


def layer_table_ui() -> pd.DataFrame:
    """The layer table, one row per layer; returns the table as edited."""
    st.subheader("Layers")
    st.caption(f"Edit any cell, add or delete rows. Blank cells take Keras' defaults "
               f"({KERAS_DEFAULTS}). `inputs` names earlier layers (default: the previous one) "
               "for concat and add; `options` takes key=value pairs such as `groups=2`, "
               "`bias=off`, `pad=1`, `depth_radius=2 alpha=2e-05 beta=0.75`.")
    table = pd.DataFrame(layers_to_rows(st.session_state["calc_base_layers"]),
                         columns=list(TABLE_COLUMNS))
    table = table.astype({"filters/units": "Int64", "rate": "Float64"})
    text_columns = [c for c in TABLE_COLUMNS if c not in ("filters/units", "rate")]
    table[text_columns] = table[text_columns].astype(object)
    return st.data_editor(
        table, key=f"calc_layers_{st.session_state['calc_gen']}", num_rows="dynamic",
        width="stretch", hide_index=True, placeholder="",
        column_config={
            "name": st.column_config.TextColumn("name", help="Unique; blank = kind + number"),
            "kind": st.column_config.SelectboxColumn("kind", options=list(KINDS),
                                                     required=True),
            "filters/units": st.column_config.NumberColumn(
                "filters/units", help="conv: feature maps; dense: units", step=1, format="%d",
                min_value=1, max_value=MAX_SIZE),
            "kernel": st.column_config.TextColumn("kernel",
                                                  help="conv kernel or pool size: 3 or 3x5"),
            "stride": st.column_config.TextColumn("stride", help="2 or 2x1; blank = default"),
            "padding": st.column_config.SelectboxColumn("padding", options=list(PADDINGS)),
            "activation": st.column_config.SelectboxColumn("activation",
                                                           options=list(ACTIVATIONS)),
            "rate": st.column_config.NumberColumn("rate", help="dropout rate in [0, 1)",
                                                  format="%.2f"),
            "inputs": st.column_config.TextColumn("inputs", help="e.g. a, b (concat / add)"),
            "options": st.column_config.TextColumn("options", help="key=value ..."),
        },
    )


def network_ui(edited: pd.DataFrame) -> tuple[presets.CalcConfig, ModelStats]:
    """The network in the table with the widgets' settings, analysed. A bad cell shows one
    error and the last valid network; the URL follows every valid one."""
    state = st.session_state
    try:
        records = edited.astype(object).where(edited.notna(), None).to_dict("records")
        config = widget_config(rows_to_layers(records))
        stats = analyze(config.input_shape, config.layers, batch=config.batch,
                        dtype=config.dtype, optimizer=config.optimizer,
                        accum_steps=config.accum_steps)
    except SpecError as error:
        st.error(plain(error, 1000), icon=":material/error:")
        good = state.get("calc_last_good")
        if good is None:
            st.stop()
        st.caption(":material/history: Below: the last valid network, until the table is "
                   "fixed.")
        return good
    state["calc_last_good"] = (config, stats)
    bookmark_ui(config)
    return config, stats


def bookmark_ui(config: presets.CalcConfig) -> None:
    """The URL follows the network; one too large for a URL is offered as a file instead."""
    preset = presets.match_preset(config.input_shape, config.layers)
    query = presets.to_query(presets.CalcConfig(**{**config.__dict__, "preset": preset}))
    if not bookmark.too_large(query):
        st.query_params.from_dict(query)
        return
    st.query_params.clear()  # an old URL would open another network
    with st.container(border=True):
        st.info(f"This network is too large to bookmark: its link would be "
                f"{bookmark.query_chars(query):,} characters, over the "
                f"{bookmark.MAX_QUERY_CHARS:,} a link may have. Download its layers instead, "
                "and paste them into *Edit as text* to open it again.",
                icon=":material/bookmark_remove:")
        st.download_button("Download the layers (text)", presets.spec_text(config),
                           file_name="cnnlab-calculator-layers.txt", mime="text/plain",
                           icon=":material/download:", key="calc_spec_download")


def text_ui(config: presets.CalcConfig) -> None:
    with st.expander("Edit as text (the command-line grammar)", icon=":material/edit_note:"):
        text = format_layers_text(config.layers)
        # Keyed by its text, so that the box follows edits made in the table.
        text_key = f"calc_text_{hashlib.sha1(text.encode()).hexdigest()[:12]}"
        st.text_area("One layer per line", text, key=text_key, height=200, help=GRAMMAR_HELP)
        st.button("Use this text", on_click=load_text, args=(text_key,), icon=":material/check:")
        if text_error := st.session_state.get("calc_text_error"):
            st.error(plain(text_error, 1000), icon=":material/error:")


def totals_ui(stats: ModelStats, gpu_bytes: float, framework: FrameworkEstimate,
              measured: Measurement | None) -> None:
    st.subheader("Totals")
    cells = [*st.columns(3), *st.columns(3)]
    for cell, total in zip(cells, report.totals(stats, gpu_bytes, framework, measured),
                           strict=True):
        if total.delta is None:
            cell.metric(total.label, total.value, help=total.help)
        else:
            cell.metric(total.label, total.value, delta=total.delta,
                        delta_color="inverse" if total.over else "off", delta_arrow="off",
                        help=total.help)


def seed_exercise_ui(config: presets.CalcConfig, stats: ModelStats) -> None:
    if presets.match_preset(config.input_shape, config.layers) == "seed exercise":
        st.info(report.seed_exercise_note(stats), icon=":material/school:")


def per_layer_ui(stats: ModelStats) -> None:
    st.subheader("Per layer")
    st.dataframe(
        pd.DataFrame(report.stats_rows(stats)), hide_index=True, width="stretch",
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "trainable": st.column_config.NumberColumn(format="localized"),
            "non-trainable": st.column_config.NumberColumn(format="localized"),
            "MACs": st.column_config.NumberColumn(format="localized"),
            "activation MB": st.column_config.NumberColumn(
                format="%.3f", help=f"one instance, {stats.memory.dtype}"),
            "receptive field": st.column_config.TextColumn(
                help="input pixels one output value sees (h x w)"),
        })
    present.chart(calc_charts.layer_figure(stats), key="calc_layers_chart", width="stretch",
                  download="the per-layer figure")


def training_memory_ui(stats: ModelStats, gpu_bytes: float) -> None:
    st.subheader("Training memory")
    st.dataframe(
        pd.DataFrame(report.training_rows(stats.memory)), hide_index=True, width="stretch",
        column_config={"MB": st.column_config.NumberColumn(format="%.2f", width="small"),
                       "how": st.column_config.TextColumn(width="large")})
    present.chart(calc_charts.memory_vs_batch_figure(stats, gpu_bytes), key="calc_memory_chart",
                  width="stretch")


def framework_ui(stats: ModelStats, fw: FrameworkEstimate) -> None:
    """The framework model beside the textbook count: the terms alive at its peak."""
    m = stats.memory
    st.markdown(f"**What Keras on TensorFlow really keeps** (the framework model): "
                f"{report.format_bytes(fw.training_bytes)} at batch {fw.micro_batch}, peaking "
                f"in the {fw.peak.where}: {report.format_bytes(fw.fixed_bytes)} fixed + "
                f"{report.format_bytes(fw.per_sample_bytes)} per sample. The textbook count: "
                f"{report.format_bytes(m.fixed_bytes)} fixed + "
                f"{report.format_bytes(m.per_sample_bytes)} per sample.")
    with st.expander("The framework model, term by term, and its rules",
                     icon=":material/memory:"):
        st.dataframe(pd.DataFrame([{"alive at the peak": what, "MB": value / MB}
                                   for what, value, _ in fw.terms() if value]),
                     hide_index=True, width="stretch",
                     column_config={"MB": st.column_config.NumberColumn(format="%.2f")})
        st.markdown("\n".join(f"- {rule}" for rule in RULES))


def measure_key(config: presets.CalcConfig) -> tuple:
    return (config.input_shape, format_layers_text(config.layers), config.dtype,
            config.optimizer, config.accum_steps)


def measure_ui(config: presets.CalcConfig, stats: ModelStats, fw: FrameworkEstimate) -> None:
    """"Measure on this machine": one real training step in a child process, measured beside
    both models, the gap explained. Results are kept per configuration in the session."""
    st.subheader("Measure on this machine")
    st.caption("Runs one real Keras training step (train_on_batch, "
               f"{config.optimizer}, mean squared error) of this network at two batch sizes, "
               "each in a fresh Python process as a training run starts, and reads "
               "TensorFlow's allocator peak (GPU if there is one). The page stays responsive "
               "to other users; measurements take turns on a shared server, one at a time; "
               "big networks at big batches take minutes and may not fit this machine.")
    micro = stats.memory.micro_batch
    cols = st.columns([1, 2])
    batch = cols[0].number_input("Measure at batch", min_value=1, max_value=max(1, micro),
                                 value=min(micro, 64), step=1, key="calc_measure_batch",
                                 help="and at half of it: two points give the per-sample "
                                 "slope and the fixed part")
    key = measure_key(config)
    if cols[1].button("Measure on this machine", icon=":material/speed:", key="calc_measure"):
        pair = measure_batches(int(batch))
        with st.spinner(f"Measuring (after any measurement already running on this "
                        f"server): a child process builds the model and trains at batch "
                        f"{pair[0]}, then a fresh one at batch {pair[1]}…"):
            try:
                result = measure(config.input_shape, config.layers, batch=int(batch),
                                 dtype=config.dtype, optimizer=config.optimizer,
                                 accum_steps=1, batches=pair, timeout_s=300)
            except MeasureError as error:
                st.session_state["calc_measure_error"] = str(error)
            else:
                st.session_state.setdefault("calc_measurements", {})[key] = result
                st.session_state.pop("calc_measure_error", None)
                st.rerun()  # the headline above now leads with the measured figure
    if error := st.session_state.get("calc_measure_error"):
        st.error(plain(error, 1000), icon=":material/error:")
    me = st.session_state.get("calc_measurements", {}).get(key)
    if me is None:
        return
    st.dataframe(
        pd.DataFrame(report.measurement_rows(me, fw, stats)), hide_index=True, width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.2f")
                       for c in ("framework / measured", "textbook / measured")}
        | {c: st.column_config.NumberColumn(f"{c} (bytes)", format="localized")
           for c in ("measured", "framework model", "textbook")})
    st.markdown("\n".join(f"- {line}" for line in explain_gap(
        me, fw, stats.at(batch=me.batches[1], accum_steps=1).memory)))


def make_it_fit_ui(config: presets.CalcConfig, stats: ModelStats, gpu_bytes: float,
                   framework: FrameworkEstimate, measured: Measurement | None) -> None:
    st.subheader("Make it fit")
    st.caption(f"Training needs {report.format_bytes(framework.training_bytes)} by the "
               f"framework model ({report.format_bytes(stats.training_bytes)} by the textbook "
               f"count); the GPU has {config.gpu_gb:g} GB. Each remedy alone, at the smallest "
               "change that fits by the framework model, with the textbook count beside it:")
    options = fit_options(config.input_shape, config.layers, batch=config.batch,
                          dtype=config.dtype, optimizer=config.optimizer, gpu_bytes=gpu_bytes)
    if measured is not None and config.accum_steps == 1:
        st.caption(f":material/science: Measured on this machine: batch "
                   f"{measured.max_batch(gpu_bytes):,} fits {config.gpu_gb:g} GB along the "
                   f"measured line (batches {measured.batches[0]} and {measured.batches[1]}).")
    st.dataframe(pd.DataFrame(report.fit_rows(options)), hide_index=True, width="stretch",
                 column_config={"fits": st.column_config.CheckboxColumn("fits"),
                                "training memory": st.column_config.TextColumn(
                                    help="framework model: what Keras on TensorFlow keeps")})


def notes_ui(config: presets.CalcConfig) -> None:
    with st.expander("Assumptions of the memory model", icon=":material/info:"):
        st.markdown("\n".join(f"- {line}" for line in MEMORY_ASSUMPTIONS))
    with st.expander("The calculator's limits", icon=":material/straighten:"):
        st.markdown("\n".join(f"- {line}" for line in LIMITS))
    with st.expander("The same numbers on the command line", icon=":material/terminal:"):
        st.code(presets.cli_command(config), language="bash")


open_config_ui()
header_ui()
controls_ui()
config, stats = network_ui(layer_table_ui())
text_ui(config)
gpu_bytes = config.gpu_gb * GB
framework = framework_estimate(config.input_shape, config.layers, batch=config.batch,
                               dtype=config.dtype, optimizer=config.optimizer,
                               accum_steps=config.accum_steps, stats=stats)
measured = st.session_state.get("calc_measurements", {}).get(measure_key(config))
with one_line_errors("The totals"):
    totals_ui(stats, gpu_bytes, framework, measured)
with one_line_errors("The seed exercise"):
    seed_exercise_ui(config, stats)
with one_line_errors("The per-layer table"):
    per_layer_ui(stats)
with one_line_errors("The training memory"):
    training_memory_ui(stats, gpu_bytes)
with one_line_errors("The framework estimate"):
    framework_ui(stats, framework)
with one_line_errors("Measuring on this machine"):
    measure_ui(config, stats, framework)
with one_line_errors("Make it fit"):
    make_it_fit_ui(config, stats, gpu_bytes, framework, measured)
with one_line_errors("The notes"):
    notes_ui(config)
