"""Architectures: LeNet-5 -> AlexNet -> GoogLeNet -> ResNet, what each invented, and three
live experiments (CNN vs dense, max pool vs strided conv, LRN).

Everything above the experiments comes from the pure-Python calculator (cnnlab.nets), so the
page draws before TensorFlow is imported; TensorFlow loads only when an experiment is run.
Published numbers come from cnnlab.facts, each shown with its source.
"""

import functools

import streamlit as st

from cnnlab.ui.navigation import ensure_app_navigation
from cnnlab.ui.safe import plain

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

st.title("Architectures")
st.caption("Three networks that shaped image classification, by what each invented. Every "
           "number is computed from the network's specification; the same specification "
           "builds the Keras model, and the tests check both agree.")

# Imported after the title: plotly and Pillow take about 0.45 s to import on a cold server
# process, and the title should not wait for them.
from cnnlab.calc.spec import SpecError  # noqa: E402
from cnnlab.nets import builders, page_text, summary  # noqa: E402
from cnnlab.nets import charts as arch_charts  # noqa: E402
from cnnlab.vision import images  # noqa: E402

FAMILIES = {"LeNet-5 (1998)": "lenet5", "AlexNet (2012)": "alexnet",
            "GoogLeNet (2014)": "googlenet", "ResNet (2015)": "resnet"}
INCEPTION_LABELS = ["#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj"]
NO_DELTA = {"delta_color": "off", "delta_arrow": "off"}


def shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


@st.cache_data(show_spinner=False)
def overview_rows() -> list[dict]:
    return summary.overview()


def overview_ui() -> None:
    rows = overview_rows()
    st.dataframe(rows, hide_index=True, width="stretch", column_config={
        "parameters": st.column_config.NumberColumn(format="localized"),
    })
    st.plotly_chart(arch_charts.overview_figure(rows), width="stretch", key="overview_chart")
    st.caption(page_text.overview_caption())


def inventions_ui() -> None:
    st.header("What each one invented")
    for tab, key in zip(st.tabs(list(FAMILIES)), FAMILIES.values(), strict=True):
        with tab:
            if key == "resnet":
                depth = st.segmented_control("Depth", list(builders.RESNET_UNITS), default=50,
                                             key="invent_depth") or 50
                key = f"resnet{depth}"
            st.markdown("\n".join(f"- {line}" for line in page_text.inventions(key)))
            st.caption(page_text.paper_caption(builders.network(key)))


def block_diagram_ui() -> None:
    st.header("Block diagram")
    networks = {net.title: net.key for net in builders.all_networks()}
    left, right = st.columns([1, 1])
    title = left.selectbox("Network", [*networks, "GoogLeNet + aux"], index=5, key="diagram_net")
    net = (builders.googlenet(aux=True) if title == "GoogLeNet + aux"
           else builders.network(networks[title]))
    stage = right.selectbox("Stage", net.stages(), index=min(1, len(net.stages()) - 1),
                            key=f"diagram_stage_{net.key}")
    st.plotly_chart(arch_charts.block_diagram(net, stage), width="stretch", key="block_diagram")
    rows = summary.stage_table(net, stage)
    totals = summary.stage_totals(net, stage)
    st.caption(f"Stage **{stage}**: {totals.layers} layers, {totals.params:,} parameters, "
               f"{totals.macs / 1e6:,.1f} M mult-adds. Hover a box for its numbers.")
    st.dataframe(rows, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)))


def inception_module_ui() -> None:
    st.header("An inception module, your sizes")
    st.caption("Four branches side by side, concatenated. The 1x1 \"reduce\" convolutions shrink "
               "the channels before the expensive 3x3 and 5x5 ones; the naive module (paper "
               "Fig. 2a) has none, and its pool branch passes every input channel through.")
    cols = st.columns(3)
    h = cols[0].number_input("Input height = width", 1, 512, 28, key="inc_hw")
    c_in = cols[1].number_input("Input channels", 1, 4096, 192, key="inc_c")
    preset = cols[2].selectbox("Start from GoogLeNet's module", list(builders.GOOGLENET_MODULES),
                               key="inc_preset")
    defaults = builders.GOOGLENET_MODULES[preset]
    cols = st.columns(6)
    filters = [cols[i].number_input(label, 1, 2048, defaults[i], key=f"inc_{i}_{preset}")
               for i, label in enumerate(INCEPTION_LABELS)]
    try:
        module = summary.compare_inception((int(h), int(h), int(c_in)), [int(f) for f in filters])
    except SpecError as error:
        st.error(str(error))
        return
    with_b, naive = module.bottleneck, module.naive
    a, b, c = st.columns(3)
    a.metric("Parameters with 1x1 bottlenecks", f"{with_b.total_params:,}",
             f"{module.params_vs_naive:,} vs naive", delta_color="inverse")
    b.metric("GFLOPs with bottlenecks", f"{with_b.flops / 1e9:.3f}",
             f"naive: {naive.flops / 1e9:.3f} ({module.flops_ratio:.1f}x)", **NO_DELTA)
    c.metric("Output shape", shape_text(with_b.output_shape),
             f"naive: {shape_text(naive.output_shape)}", **NO_DELTA)
    with st.expander("Layers of both modules"):
        for label, stats in (("with bottlenecks", with_b), ("naive", naive)):
            st.markdown(f"**{label}**")
            st.dataframe(summary.layer_rows(stats), hide_index=True, width="stretch")


def residual_unit_ui() -> None:
    st.header("A residual unit, your sizes")
    st.caption("y = ReLU(F(x) + shortcut(x)). The shortcut is x itself when the shapes match (0 "
               "parameters), else a 1x1 convolution with the stride (a projection).")
    cols = st.columns(5)
    hw = cols[0].number_input("Input height = width", 1, 512, 56, key="res_hw")
    c_in = cols[1].number_input("Input channels", 1, 4096, 256, key="res_c")
    filters = cols[2].number_input("Filters", 1, 2048, 64, key="res_f")
    stride = cols[3].selectbox("Stride", [1, 2], key="res_stride")
    kind = cols[4].selectbox("Unit", ["bottleneck", "basic"], key="res_kind")
    try:
        unit = summary.residual_unit_summary((int(hw), int(hw), int(c_in)), int(filters),
                                             stride=int(stride), bottleneck=kind == "bottleneck")
    except SpecError as error:
        st.error(str(error))
        return
    a, b, c, d = st.columns(4)
    a.metric("Output shape", shape_text(unit.stats.output_shape))
    b.metric("Parameters", f"{unit.stats.total_params:,}")
    c.metric("GFLOPs", f"{unit.stats.flops / 1e9:.3f}")
    d.metric("Shortcut", unit.shortcut, f"{unit.shortcut_params:,} parameters", **NO_DELTA)
    st.dataframe(summary.layer_rows(unit.stats, kinds=True), hide_index=True, width="stretch")


# --------------------------------------------------------------------------- experiments


def photo_ui():
    """The photo the experiments run on, and its cache key; None until there is one."""
    titles = images.sample_titles()
    source = st.radio("Photo", [*titles, "upload"], horizontal=True, key="photo_source",
                      format_func=lambda k: "Upload your own" if k == "upload"
                      else titles[k].split(" (")[0])
    if source != "upload":
        return images.sample_photo(source), source
    upload = st.file_uploader(f"A photo ({images.FORMAT_NAMES}, up to "
                              f"{images.MAX_UPLOAD_BYTES // 2**20} MB)", key="photo_upload",
                              max_upload_size=images.MAX_UPLOAD_BYTES // 2**20)
    if upload is None:
        st.info("Choose a file, or pick one of the sample photos.")
        return None
    try:
        return images.decode_image(upload.getvalue(), upload.name), f"upload:{upload.file_id}"
    except images.ImageError as error:
        st.error(plain(str(error)))
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def photo_pixels(_photo, key: str, size: int):
    from cnnlab.nets import concepts

    return concepts.prepare_photo(_photo, size)


@st.cache_data(show_spinner=False, max_entries=8)
def photo_maps(_pixels, key: str):
    from cnnlab.nets import concepts

    return concepts.feature_maps(_pixels)


@st.cache_data(show_spinner=False, max_entries=32)
def shift_result(_photo, key: str, dy: int, dx: int):
    from cnnlab.nets import concepts

    return concepts.shift_experiment(_photo, dy, dx)


@st.cache_data(show_spinner=False, max_entries=32)
def pool_result(_maps, key: str, kernel: int, stride: int, c_out: int):
    from cnnlab.nets import concepts

    return concepts.pool_vs_strided_conv(_maps, kernel, stride, c_out)


@st.cache_data(show_spinner=False, max_entries=32)
def lrn_result(_maps, key: str, radius: int, bias: float, alpha: float, beta: float):
    from cnnlab.nets import concepts

    return concepts.lrn_experiment(_maps, radius, bias, alpha, beta)


def guarded(experiment):
    """Run an experiment; an unexpected failure is one line on the page, never a traceback."""
    @functools.wraps(experiment)
    def run(*args) -> None:
        try:
            experiment(*args)
        except Exception as error:  # noqa: BLE001  (the page must survive any failure)
            st.error(f"The experiment failed: {type(error).__name__}: "
                     f"{str(error).splitlines()[0] if str(error) else ''}")
    return run


def run_button(label: str, key: str) -> bool:
    """True once the experiment was started; until then a button (TensorFlow loads on click)."""
    if st.session_state.get(key):
        return True
    # on_click runs before the rerun, so that very rerun already shows the experiment
    st.button(label, key=f"{key}_button", icon=":material/play_arrow:",
              on_click=st.session_state.__setitem__, args=(key, True))
    return False


@st.fragment
@guarded
def shift_experiment_ui(photo, photo_key: str) -> None:
    st.subheader("1. CNN vs dense net: parameters and translation")
    from cnnlab.nets import concepts

    counts = concepts.dense_vs_conv_params(224, 224, 3, filters=32, kernel=3, units=1000)
    a, b, c = st.columns(3)
    a.metric("Conv 3x3, 32 filters on 224x224x3", f"{counts['conv']:,} parameters")
    b.metric("Dense, 1,000 units on the same image", f"{counts['dense_units']:,}")
    c.metric("Dense with the conv's 224x224x32 output", f"{counts['dense_same_output']:,}")
    if not run_button("Run experiment 1", "exp1"):
        return
    a, b = st.columns(2)
    dy = a.slider("Move the camera down (pixels)", -8, 8, 4, key="exp1_dy")
    dx = b.slider("Move the camera right (pixels)", -8, 8, -3, key="exp1_dx")
    with st.spinner("Running a Conv2D and a Dense layer..."):
        r = shift_result(photo_pixels(photo, photo_key, 56), photo_key, dy, dx)
    a, b = st.columns(2)
    a.metric("Conv: response moves with the image", f"r = {r.conv_equivariance:.3f}",
             f"{r.conv_params:,} parameters (one 5x5 filter + bias)", **NO_DELTA)
    b.metric("Dense: response moves with the image", f"r = {r.dense_equivariance:.3f}",
             f"{r.dense_params:,} parameters (40x40 in, 40x40 out)", **NO_DELTA)
    st.plotly_chart(arch_charts.heatmaps(
        [r.image, r.shifted, r.conv_map, r.conv_map_shifted, r.dense_map, r.dense_map_shifted],
        ["photo", "moved", "conv", "conv, moved", "dense", "dense, moved"], "Greys_r",
        scale="none"),
        width="stretch", key="exp1_maps")
    st.caption("r: correlation between the response to the moved photo and the original "
               "response moved by the same amount (away from the borders). 1.000 means the "
               "feature map moved exactly with the image. The dense layer has no notion of "
               "position: its weights are different for every pixel.")


@st.fragment
@guarded
def pool_experiment_ui(pixels, photo_key: str) -> None:
    st.subheader("2. Max pooling vs a strided convolution")
    if not run_button("Run experiment 2", "exp2"):
        return
    from cnnlab.nets import concepts

    cols = st.columns(4)
    kernel = cols[0].slider("Window k", 1, 5, 2, key="exp2_k")
    stride = cols[1].slider("Stride", 1, 4, 2, key="exp2_s")
    c_out = cols[2].slider("Conv output channels", 1, 64, 8, key="exp2_cout")
    names = concepts.orientation_labels()
    channel = cols[3].selectbox("Channel shown", range(len(names)),
                                format_func=lambda i: f"edges at {names[i]}", key="exp2_ch")
    with st.spinner("Computing feature maps..."):
        maps = photo_maps(pixels, photo_key)
        r = pool_result(maps, photo_key, kernel, stride, c_out)
    a, b = st.columns(2)
    a.metric("MaxPooling2D parameters", f"{r.pool_params:,}",
             f"output {shape_text(r.pooled.shape)}", **NO_DELTA)
    b.metric("Conv2D (stride) parameters", f"{r.conv_params:,}",
             f"{r.conv_formula}; output {shape_text(r.strided.shape)}", **NO_DELTA)
    shown = min(channel, c_out - 1)
    st.plotly_chart(arch_charts.heatmaps(
        [maps[..., channel], r.pooled[..., channel], r.strided[..., shown]],
        [f"feature map ({names[channel]})", f"max pool {kernel}x{kernel} /{stride}",
         f"strided conv {kernel}x{kernel} /{stride}, channel {shown}"]),
        width="stretch", key="exp2_maps")
    st.caption("Same input (ReLU of 8 Gabor edge filters on the photo), same output size. "
               "The pool keeps each window's strongest response for free; the convolution "
               "(untrained, Glorot weights) must learn what to keep, with its parameters.")


@st.fragment
@guarded
def lrn_experiment_ui(pixels, photo_key: str) -> None:
    st.subheader("3. Local Response Normalization")
    from cnnlab.nets import concepts

    st.latex(concepts.LRN_FORMULA)
    if not run_button("Run experiment 3", "exp3"):
        return
    paper = builders.ALEXNET_LRN
    cols = st.columns(4)
    radius = cols[0].slider("depth_radius r", 0, 7, paper["depth_radius"], key="exp3_r")
    bias = cols[1].slider("bias k", 0.01, 5.0, paper["lrn_bias"], key="exp3_k")
    alpha = cols[2].select_slider("alpha", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
                                  value=paper["alpha"], format_func=lambda v: f"{v:g}",
                                  key="exp3_alpha")
    beta = cols[3].slider("beta", 0.0, 2.0, paper["beta"], key="exp3_beta")
    try:
        with st.spinner("tf.nn.local_response_normalization..."):
            r = lrn_result(photo_maps(pixels, photo_key), photo_key, radius, bias, alpha, beta)
    except ValueError as error:
        st.error(str(error))
        return
    names = concepts.orientation_labels()
    strongest = r.strongest_channel
    a, b, c, d = st.columns(4)
    a.metric(f"Strongest activation, at {r.pixel}", f"{r.pixel_before[strongest]:.1f} → "
             f"{r.pixel_after[strongest]:.1f}", f"divided by {r.divisor:.2f}", **NO_DELTA)
    b.metric("Divisor where neighbours are silent", f"{r.quiet_divisor:.2f}", "k^β", **NO_DELTA)
    c.metric("Activity kept", f"{100 * r.kept:.1f}%")
    d.metric("TF vs the formula", f"max |diff| = {r.max_abs_error:.1e}")
    left, right = st.columns(2)
    left.plotly_chart(arch_charts.channel_bars(names, r.pixel_before, r.pixel_after,
                                               f"Channels at the strongest pixel {r.pixel}"),
                      width="stretch", key="exp3_pixel")
    right.plotly_chart(arch_charts.channel_bars(names, r.mean_before, r.mean_after,
                                                "Mean activation per channel"),
                       width="stretch", key="exp3_mean")
    st.plotly_chart(arch_charts.heatmaps(
        [r.before[..., strongest], r.after[..., strongest]],
        [f"{names[strongest]} before", f"{names[strongest]} after"]),
        width="stretch", key="exp3_maps")
    st.caption(page_text.lrn_caption())


def experiments_ui() -> None:
    st.header("Experiments on a photo")
    st.caption("Computed live with Keras layers and tf.nn on a real photo. TensorFlow loads the "
               "first time you run one (a few seconds).")
    chosen = photo_ui()
    if chosen is None:
        return
    photo, photo_key = chosen
    st.image(photo, width=220, caption=f"{photo.size[0]} x {photo.size[1]} pixels")
    pixels = photo_pixels(photo, photo_key, 128)
    shift_experiment_ui(photo, photo_key)
    pool_experiment_ui(pixels, photo_key)
    lrn_experiment_ui(pixels, photo_key)


overview_ui()
inventions_ui()
block_diagram_ui()
inception_module_ui()
residual_unit_ui()
experiments_ui()
