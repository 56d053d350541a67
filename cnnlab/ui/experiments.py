"""The three live experiments of the Architectures page, on a photo: CNN vs dense net
(parameters and translation), max pooling vs a strided convolution, Local Response
Normalization. Each runs on a click (TensorFlow loads then), in its own fragment, and a
failure is one line on the page.
"""

from __future__ import annotations

import functools

import streamlit as st

from cnnlab.nets import builders, page_text
from cnnlab.nets import charts as arch_charts
from cnnlab.ui import present
from cnnlab.ui.guard import one_line_errors
from cnnlab.ui.safe import plain
from cnnlab.vision import images

NO_DELTA = {"delta_color": "off", "delta_arrow": "off"}


def shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


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
        with one_line_errors("The experiment"):  # one line, no server path
            experiment(*args)
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
    present.chart(arch_charts.heatmaps(
        [r.image, r.shifted, r.conv_map, r.conv_map_shifted, r.dense_map, r.dense_map_shifted],
        ["photo", "moved", "conv", "conv, moved", "dense", "dense, moved"], "Greys_r",
        scale="none"),
        width="stretch", key="exp1_maps", download="the feature maps")
    present.note("r: correlation between the response to the moved photo and the original "
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
    present.chart(arch_charts.heatmaps(
        [maps[..., channel], r.pooled[..., channel], r.strided[..., shown]],
        [f"feature map ({names[channel]})", f"max pool {kernel}x{kernel} /{stride}",
         f"strided conv {kernel}x{kernel} /{stride}, channel {shown}"]),
        width="stretch", key="exp2_maps")
    present.note("Same input (ReLU of 8 Gabor edge filters on the photo), same output size. "
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
    present.chart(arch_charts.channel_bars(names, r.pixel_before, r.pixel_after,
                                           f"Channels at the strongest pixel {r.pixel}"),
                  width="stretch", key="exp3_pixel", container=left)
    present.chart(arch_charts.channel_bars(names, r.mean_before, r.mean_after,
                                           "Mean activation per channel"),
                  width="stretch", key="exp3_mean", container=right)
    present.chart(arch_charts.heatmaps(
        [r.before[..., strongest], r.after[..., strongest]],
        [f"{names[strongest]} before", f"{names[strongest]} after"]),
        width="stretch", key="exp3_maps")
    present.note(page_text.lrn_caption())
