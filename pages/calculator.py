"""Calculator: parameters, shapes, FLOPs and memory of a conv stack, exact to Keras, and
what-ifs that make training fit a GPU. The configuration lives in the URL.

The page only draws: cnnlab.calc computes, cnnlab.calc.presets holds the networks and the URL
form, cnnlab.calc.charts builds the figures. No TensorFlow is imported here.
"""

import hashlib

import pandas as pd
import streamlit as st

from cnnlab import calc
from cnnlab.calc import GB, SpecError, presets
from cnnlab.calc import charts as calc_charts
from cnnlab.ui.navigation import ensure_app_navigation

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


def load_preset() -> None:
    name = st.session_state[KEYS["preset"]]
    apply_config(presets.preset_config(
        name, dtype=st.session_state[KEYS["dtype"]],
        optimizer=st.session_state[KEYS["optimizer"]], gpu_gb=st.session_state[KEYS["gpu"]]))


def load_text(text_key: str) -> None:
    lines = [line.strip() for line in st.session_state[text_key].splitlines()]
    try:
        layers = [calc.parse_layer(line, f"line {i} ({line})")
                  for i, line in enumerate(lines, start=1) if line and not line.startswith("#")]
        if not layers:
            raise SpecError("text: give at least one layer, one per line")
    except SpecError as error:
        st.session_state["calc_text_error"] = str(error)
        return
    st.session_state.pop("calc_text_error", None)
    state = st.session_state
    apply_config(presets.CalcConfig(
        (state[KEYS["h"]], state[KEYS["w"]], state[KEYS["c"]]), tuple(layers),
        state[KEYS["batch"]], state[KEYS["dtype"]], state[KEYS["optimizer"]],
        state[KEYS["gpu"]], state[KEYS["accum"]]))


if "calc_gen" not in st.session_state:  # first visit: the URL, else the default preset
    try:
        url = {key: st.query_params.get_all(key) for key in st.query_params}
        apply_config(presets.from_query(url) if url else
                     presets.preset_config(presets.DEFAULT_PRESET))
    except SpecError as error:
        st.session_state["calc_url_error"] = f"The link's configuration is not valid: {error}"
        apply_config(presets.preset_config(presets.DEFAULT_PRESET))

st.title("Calculator")
st.caption("Output shapes, parameters, multiply-accumulates and memory of a CNN. Every shape "
           "and parameter count equals what Keras builds (checked against `count_params()` "
           "on hundreds of random networks).")
if error := st.session_state.pop("calc_url_error", None):
    st.error(error, icon=":material/link_off:")

# --------------------------------------------------------------------------- controls
with st.container(border=True):
    top = st.columns([3, 1, 1, 1, 2])
    top[0].selectbox("Preset", list(presets.PRESETS), key=KEYS["preset"], on_change=load_preset,
                     help="Load a network; then edit it in the table.")
    top[1].number_input("Input height", min_value=1, step=1, key=KEYS["h"])
    top[2].number_input("Input width", min_value=1, step=1, key=KEYS["w"])
    top[3].number_input("Channels", min_value=1, step=1, key=KEYS["c"])
    top[4].button("Reset to preset", icon=":material/restart_alt:", on_click=load_preset,
                  help="Throw away edits and reload the preset")
    bottom = st.columns(5)
    bottom[0].number_input("Batch size", min_value=1, step=1, key=KEYS["batch"])
    bottom[1].number_input("Gradient accumulation steps", min_value=1, step=1,
                           key=KEYS["accum"], help="Micro-batch = batch / steps; the update "
                           "still uses the whole batch.")
    bottom[2].selectbox("dtype", list(calc.DTYPES), key=KEYS["dtype"],
                        help="mixed_float16: 16-bit activations, 32-bit master weights")
    bottom[3].selectbox("Optimizer", list(calc.OPTIMIZER_SLOTS), key=KEYS["optimizer"],
                        help="Slots per trainable parameter: SGD 0, momentum 1, Adam 2")
    bottom[4].number_input("GPU memory (GB)", min_value=presets.MIN_GPU_GB,
                           max_value=float(presets.MAX_GPU_GB), step=1.0, format="%.1f",
                           key=KEYS["gpu"])

# --------------------------------------------------------------------------- layer table
st.subheader("Layers")
st.caption("Edit any cell, add or delete rows. Blank cells take Keras' defaults (conv stride "
           "1, pool stride = pool size, padding valid). `inputs` names earlier layers "
           "(default: the previous one) for concat and add; `options` takes key=value pairs "
           "such as `groups=2`, `bias=off`, `pad=1`, `depth_radius=2 alpha=2e-05 beta=0.75`.")
gen = st.session_state["calc_gen"]
table = pd.DataFrame(calc.layers_to_rows(st.session_state["calc_base_layers"]),
                     columns=list(calc.TABLE_COLUMNS))
table = table.astype({"filters/units": "Int64", "rate": "Float64"})
text_columns = [c for c in calc.TABLE_COLUMNS if c not in ("filters/units", "rate")]
table[text_columns] = table[text_columns].astype(object)
edited = st.data_editor(
    table, key=f"calc_layers_{gen}", num_rows="dynamic", width="stretch", hide_index=True,
    placeholder="",
    column_config={
        "name": st.column_config.TextColumn("name", help="Unique; blank = kind + number"),
        "kind": st.column_config.SelectboxColumn("kind", options=list(calc.KINDS),
                                                 required=True),
        "filters/units": st.column_config.NumberColumn(
            "filters/units", help="conv: feature maps; dense: units", step=1, format="%d"),
        "kernel": st.column_config.TextColumn("kernel", help="conv kernel or pool size: 3 or 3x5"),
        "stride": st.column_config.TextColumn("stride", help="2 or 2x1; blank = default"),
        "padding": st.column_config.SelectboxColumn("padding", options=list(calc.PADDINGS)),
        "activation": st.column_config.SelectboxColumn("activation",
                                                       options=list(calc.ACTIVATIONS)),
        "rate": st.column_config.NumberColumn("rate", help="dropout rate in [0, 1)",
                                              format="%.2f"),
        "inputs": st.column_config.TextColumn("inputs", help="e.g. a, b (concat / add)"),
        "options": st.column_config.TextColumn("options", help="key=value ..."),
    },
)

state = st.session_state
try:
    records = edited.astype(object).where(edited.notna(), None).to_dict("records")
    layers = calc.rows_to_layers(records)
    if not layers:
        raise SpecError("the network has no layers: add a row")
    config = presets.CalcConfig(
        (int(state[KEYS["h"]]), int(state[KEYS["w"]]), int(state[KEYS["c"]])), tuple(layers),
        int(state[KEYS["batch"]]), state[KEYS["dtype"]], state[KEYS["optimizer"]],
        float(state[KEYS["gpu"]]), int(state[KEYS["accum"]]))
    stats = calc.analyze(config.input_shape, config.layers, batch=config.batch,
                         dtype=config.dtype, optimizer=config.optimizer,
                         accum_steps=config.accum_steps)
except SpecError as error:
    st.error(str(error), icon=":material/error:")
    good = state.get("calc_last_good")
    if good is None:
        st.stop()
    config, stats = good
    st.caption(":material/history: Below: the last valid network, until the table is fixed.")
else:
    state["calc_last_good"] = (config, stats)
    preset = presets.match_preset(config.input_shape, config.layers)
    st.query_params.from_dict(presets.to_query(
        presets.CalcConfig(**{**config.__dict__, "preset": preset})))

with st.expander("Edit as text (the command-line grammar)", icon=":material/edit_note:"):
    text = "\n".join(calc.format_layer(s) for s in config.layers)
    # Keyed by its text, so that the box follows edits made in the table.
    text_key = f"calc_text_{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    st.text_area("One layer per line", text, key=text_key, height=200,
                 help="conv:FILTERS:KERNEL[:STRIDE[:PADDING]], maxpool:SIZE[:STRIDE[:PADDING]], "
                 "avgpool:..., dense:UNITS, flatten, globalavgpool, batchnorm, dropout:RATE, "
                 "activation:NAME, lrn, zeropad:P, concat:in=A,B, add:in=A,B; "
                 "key=value fields: act=relu, groups=2, bias=off, name=NAME")
    st.button("Use this text", on_click=load_text, args=(text_key,), icon=":material/check:")
    if text_error := state.get("calc_text_error"):
        st.error(text_error, icon=":material/error:")

# --------------------------------------------------------------------------- totals
gpu_bytes = config.gpu_gb * GB
m = stats.memory
largest = stats.max_batch(gpu_bytes)
st.subheader("Totals")
row1, row2 = st.columns(3), st.columns(3)
row1[0].metric("Parameters", f"{stats.total_params:,}",
               help=f"{stats.trainable_params:,} trainable, {stats.non_trainable_params:,} "
               f"non-trainable; {calc.format_bytes(m.params_bytes)} as float32")
row1[1].metric("FLOPs per instance", f"{stats.flops / 1e9:,.3f} G",
               help=f"FLOPs = 2 x MACs; {stats.total_macs:,} multiply-accumulates")
row1[2].metric("Predict one instance", calc.format_bytes(m.inference_bytes),
               help=f"peak live activations {calc.format_bytes(m.inference_activation_bytes)} "
               f"+ parameters {calc.format_bytes(m.params_bytes)}")
row2[0].metric(f"Train one batch of {m.batch}", calc.format_bytes(m.training_bytes),
               delta=f"{m.training_bytes / gpu_bytes:.0%} of {config.gpu_gb:g} GB",
               delta_color="inverse" if m.training_bytes > gpu_bytes else "off",
               delta_arrow="off", help="activations, input batch, parameters, gradients, "
               "optimizer slots: see Training memory below")
row2[1].metric("Largest batch that fits", f"{largest:,}",
               help=f"training, {m.dtype}, {m.optimizer}, in {config.gpu_gb:g} GB")
row2[2].metric("Parameter memory", calc.format_bytes(m.params_bytes),
               help="float32 (4 bytes) per parameter, also under mixed precision")

if presets.match_preset(config.input_shape, config.layers) == "seed exercise":
    seed = stats.at(dtype="float32", accum_steps=1).memory  # the exercise is in float32
    st.info(
        f"**The seed's exercise, computed** (float32, as the exercise). Parameters: 2,800 + "
        f"180,200 + 720,400 = **{stats.total_params:,}** (the seed says 6,100). Feature maps "
        "of one instance: "
        + ", ".join(calc.format_bytes(4 * layer.activation_elems) for layer in stats.layers)
        + f". Predicting one instance needs **{calc.format_bytes(seed.inference_bytes)}** "
        f"(two consecutive maps + parameters; the seed says 9.6 MB). Training a batch of "
        f"{seed.batch} keeps every map: {calc.format_bytes(seed.activations_bytes)} + "
        f"{calc.format_bytes(seed.input_batch_bytes)} of input images + "
        f"{calc.format_bytes(seed.params_bytes)} of parameters = "
        f"**{calc.format_bytes(seed.before_gradients_bytes)}** before gradients and optimizer "
        + ("state (the seed says 480 MB)" if seed.batch == 50 else
           "state (the exercise asks about a batch of 50)")
        + "; the totals above add those.", icon=":material/school:")

# --------------------------------------------------------------------------- per layer
st.subheader("Per layer")
st.dataframe(
    pd.DataFrame(calc.stats_rows(stats)), hide_index=True, width="stretch",
    column_config={
        "params": st.column_config.NumberColumn(format="localized"),
        "trainable": st.column_config.NumberColumn(format="localized"),
        "non-trainable": st.column_config.NumberColumn(format="localized"),
        "MACs": st.column_config.NumberColumn(format="localized"),
        "activation MB": st.column_config.NumberColumn(format="%.3f",
                                                       help=f"one instance, {m.dtype}"),
        "receptive field": st.column_config.TextColumn(
            help="input pixels one output value sees (h x w)"),
    })
st.plotly_chart(calc_charts.layer_figure(stats), width="stretch")

# --------------------------------------------------------------------------- memory
st.subheader("Training memory")
st.dataframe(
    pd.DataFrame([{"term": term, "MB": value / calc.MB, "how": how}
                  for term, value, how in m.training_terms()]
                 + [{"term": "total", "MB": m.training_bytes / calc.MB, "how": ""}]),
    hide_index=True, width="stretch",
    column_config={"MB": st.column_config.NumberColumn(format="%.2f", width="small"),
                   "how": st.column_config.TextColumn(width="large")})
st.plotly_chart(calc_charts.memory_vs_batch_figure(stats, gpu_bytes), width="stretch")

st.subheader("Make it fit")
st.caption(f"Training needs {calc.format_bytes(m.training_bytes)}; the GPU has "
           f"{config.gpu_gb:g} GB. Each remedy alone, at the smallest change that fits:")
options = calc.fit_options(config.input_shape, config.layers, batch=config.batch,
                           dtype=config.dtype, optimizer=config.optimizer, gpu_bytes=gpu_bytes)
st.dataframe(
    pd.DataFrame([{"remedy": o.remedy, "change": o.change,
                   "training memory": calc.format_bytes(o.training_bytes), "fits": o.fits,
                   "cost": o.cost} for o in options]),
    hide_index=True, width="stretch",
    column_config={"fits": st.column_config.CheckboxColumn("fits")})

with st.expander("Assumptions of the memory model", icon=":material/info:"):
    st.markdown("\n".join(f"- {line}" for line in calc.MEMORY_ASSUMPTIONS))
with st.expander("The same numbers on the command line", icon=":material/terminal:"):
    st.code(presets.cli_command(config), language="bash")
