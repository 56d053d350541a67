"""Architectures: LeNet-5 -> AlexNet -> GoogLeNet -> ResNet, what each invented, and three
live experiments (CNN vs dense, max pool vs strided conv, LRN).

Two ways to read it: the whole page at once, or a walk-through a lecturer steps through with
Back/Next or the keyboard (→ ←, space, PageDown/PageUp): the overview, each network by what
it invented, the block diagram, an inception module assembled branch by branch, a residual
unit before and after its shortcut, the three experiments (cnnlab.nets.steps). Presenter mode
always walks through. The step and every choice are in the URL (`architectures?step=8`).

Everything above the experiments comes from the pure-Python calculator (cnnlab.nets), so the
page draws before TensorFlow is imported; TensorFlow loads only when an experiment is run.
Published numbers come from cnnlab.facts, each shown with its source.
"""

import streamlit as st

from cnnlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

st.title("Architectures")
notice_slot = st.empty()

# Imported after the title: plotly and Pillow take about 0.45 s to import on a cold server
# process, and the title should not wait for them.
from cnnlab.calc.spec import SpecError  # noqa: E402
from cnnlab.nets import builders, page_text, step_charts, steps, summary  # noqa: E402
from cnnlab.nets import charts as arch_charts  # noqa: E402
from cnnlab.ui import experiments, present, url_state, walkthrough  # noqa: E402
from cnnlab.ui.experiments import NO_DELTA, shape_text  # noqa: E402
from cnnlab.ui.safe import plain  # noqa: E402
from cnnlab.ui.url_state import Param, choice, integer  # noqa: E402
from cnnlab.vision import images  # noqa: E402

FAMILIES = {"LeNet-5 (1998)": "lenet5", "AlexNet (2012)": "alexnet",
            "GoogLeNet (2014)": "googlenet", "ResNet (2015)": "resnet"}
INCEPTION_LABELS = ["#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj"]
INCEPTION_NAMES = ["f1x1", "f3reduce", "f3x3", "f5reduce", "f5x5", "fpool"]   # in the URL
NETWORKS = {net.title: net.key for net in builders.all_networks()} | {
    "GoogLeNet + aux": "googlenet_aux"}
DEFAULT_NETWORK = "ResNet-50"
PHOTOS = [*images.sample_titles(), "upload"]

view = url_state.UrlView("architectures")
STEP = Param("step", "arch_step", integer(steps.FIRST, steps.LAST))
PARAMS = {
    "net": Param("net", "diagram_net", choice(list(NETWORKS), NETWORKS.get), DEFAULT_NETWORK,
                 NETWORKS.get),
    "depth": Param("depth", "invent_depth", choice(list(builders.RESNET_UNITS)), 50),
    "hw": Param("hw", "inc_hw", integer(1, 512), 28),
    "c": Param("c", "inc_c", integer(1, 4096), 192),
    "module": Param("module", "inc_preset", choice(list(builders.GOOGLENET_MODULES)), "3a"),
    "res_hw": Param("res_hw", "res_hw", integer(1, 512), 56),
    "res_c": Param("res_c", "res_c", integer(1, 4096), 256),
    "res_f": Param("res_f", "res_f", integer(1, 2048), 64),
    "stride": Param("stride", "res_stride", choice([1, 2]), 1),
    "unit": Param("unit", "res_kind", choice(["bottleneck", "basic"]), "bottleneck"),
    "photo": Param("photo", "photo_source", choice(PHOTOS), PHOTOS[0]),
    **{f"exp{i}": Param(f"exp{i}", f"exp{i}", url_state.flag, None, url_state.flag_text)
       for i in (1, 2, 3)},
}


def bind(name: str) -> None:
    view.bind(PARAMS[name])


def walk_ui() -> int | None:
    """The step to draw, or None for the whole page. Presenter mode always walks through."""
    view.bind(STEP)
    if st.session_state.get(STEP.key) is None and not present.on():
        walkthrough.release_keys()
        present.note(page_text_intro())
        st.button("Walk through it step by step", key="arch_walk", icon=":material/slideshow:",
                  on_click=st.session_state.__setitem__, args=(STEP.key, steps.FIRST),
                  help="One idea per screen, Back/Next or the keys → ← (a lecture's steps; "
                       "each step has its own URL).")
        return None
    number = walkthrough.nav_ui(STEP.key, steps.FIRST, steps.LAST, steps.title,
                                "architectures")
    if not present.on():
        st.button("Show the whole page", key="arch_all", icon=":material/view_agenda:",
                  type="tertiary", on_click=walkthrough.leave_walk, args=(view, STEP))
    return number


def page_text_intro() -> str:
    return ("Three networks that shaped image classification, by what each invented. Every "
            "number is computed from the network's specification; the same specification "
            "builds the Keras model, and the tests check both agree.")


@st.cache_data(show_spinner=False)
def overview_rows() -> list[dict]:
    return summary.overview()


def overview_ui() -> None:
    rows = overview_rows()
    with present.fold("The numbers (table)", ":material/table:"):
        st.dataframe(rows, hide_index=True, width="stretch", column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
        })
    present.chart(arch_charts.overview_figure(rows), width="stretch", key="overview_chart",
                  download="the overview figure")
    present.note(page_text.overview_caption())


def invention_ui(key: str) -> None:
    """One network: what it invented (ResNet: at the chosen depth) and its paper."""
    if key == "resnet":
        bind("depth")
        depth = st.segmented_control("Depth", list(builders.RESNET_UNITS), default=50,
                                     key="invent_depth") or 50
        key = f"resnet{depth}"
    st.markdown("\n".join(f"- {line}" for line in page_text.inventions(key)))
    present.note(page_text.paper_caption(builders.network(key)), "The paper")


def inventions_ui() -> None:
    st.header("What each one invented")
    for tab, key in zip(st.tabs(list(FAMILIES)), FAMILIES.values(), strict=True):
        with tab:
            invention_ui(key)


def network_step_ui(key: str) -> None:
    """One network's step: what it invented, its numbers and its blocks."""
    invention_ui(key)
    depth = st.session_state.get("invent_depth") or 50
    net = builders.network(f"resnet{depth}" if key == "resnet" else key)
    row = next(r for r in overview_rows() if r["network"] == net.title)
    a, b, c, d = st.columns(4)
    a.metric("Parameters", f"{row['parameters']:,}")
    flops = net.stats().flops
    b.metric("FLOPs per image", f"{flops / 1e9:,.2f} G" if flops >= 1e8 else f"{flops / 1e6:,.2f} M")
    c.metric("Weight layers (depth)", row["depth"])
    top5 = row["top-5 % (1 model)"] or row["top-5 % (ILSVRC)"]
    if top5 is not None:
        d.metric("Top-5 error (ImageNet)", f"{top5} %")
    present.chart(arch_charts.block_diagram(net), width="stretch", key="network_diagram",
                  download=f"the {net.title} diagram")


def block_diagram_ui(header: bool = True) -> None:
    if header:
        st.header("Block diagram")
    left, right = st.columns([1, 1])
    bind("net")
    title = left.selectbox("Network", list(NETWORKS), index=5, key="diagram_net")
    net = (builders.googlenet(aux=True) if title == "GoogLeNet + aux"
           else builders.network(NETWORKS[title]))
    stages = net.stages()
    default = stages[min(1, len(stages) - 1)]
    view.bind(Param("stage", f"diagram_stage_{net.key}", choice(stages), default))
    stage = right.selectbox("Stage", stages, index=stages.index(default),
                            key=f"diagram_stage_{net.key}")
    present.chart(arch_charts.block_diagram(net, stage), width="stretch", key="block_diagram",
                  download="the block diagram")
    rows = summary.stage_table(net, stage)
    totals = summary.stage_totals(net, stage)
    present.note(f"Stage **{stage}**: {totals.layers} layers, {totals.params:,} parameters, "
                 f"{totals.macs / 1e6:,.1f} M mult-adds. Hover a box for its numbers.")
    with present.fold("The stage's layers (table)", ":material/table:"):
        st.dataframe(rows, hide_index=True, width="stretch",
                     height=min(420, 38 + 35 * len(rows)))


def sized(compute, *args, **kwargs):
    """`compute(*args, **kwargs)` for the sizes a user set, or None after one line saying why
    the calculator refuses them."""
    try:
        return compute(*args, **kwargs)
    except SpecError as error:
        st.error(plain(str(error)))
        return None


def inception_sizes_ui() -> tuple[int, int, list[int]]:
    """Input size, channels and the six filter counts (from one of GoogLeNet's modules)."""
    cols = st.columns(3)
    for name in ("hw", "c", "module"):
        bind(name)
    h = cols[0].number_input("Input height = width", 1, 512, 28, key="inc_hw")
    c_in = cols[1].number_input("Input channels", 1, 4096, 192, key="inc_c")
    preset = cols[2].selectbox("Start from GoogLeNet's module", list(builders.GOOGLENET_MODULES),
                               key="inc_preset")
    defaults = builders.GOOGLENET_MODULES[preset]
    cols = st.columns(6)
    filters = []
    for i, label in enumerate(INCEPTION_LABELS):
        view.bind(Param(INCEPTION_NAMES[i], f"inc_{i}_{preset}", integer(1, 2048), defaults[i]))
        filters.append(cols[i].number_input(label, 1, 2048, defaults[i], key=f"inc_{i}_{preset}"))
    return int(h), int(c_in), [int(f) for f in filters]


def inception_module_ui() -> None:
    st.header("An inception module, your sizes")
    present.note("Four branches side by side, concatenated. The 1x1 \"reduce\" convolutions "
                 "shrink the channels before the expensive 3x3 and 5x5 ones; the naive module "
                 "(paper Fig. 2a) has none, and its pool branch passes every input channel "
                 "through.")
    h, c_in, filters = inception_sizes_ui()
    module = sized(summary.compare_inception, (h, h, c_in), filters)
    if module is None:
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


def inception_step_ui(part: str) -> None:
    """The module assembled branch by branch: parameters so far, with and without reduces."""
    with present.fold("Sizes: input and filters", ":material/tune:"):
        h, c_in, filters = inception_sizes_ui()
    totals = sized(steps.inception_build_up, (h, h, c_in), filters)
    if totals is None:
        return
    shown = len(steps.BRANCHES) + 1 if part == "concat" else int(part)
    now = totals[min(shown, len(totals)) - 1]
    a, b, c = st.columns(3)
    if part == "concat":
        a.metric("Parameters with 1x1 reduces", f"{now.params:,}",
                 f"{now.params - now.naive_params:,} vs naive", delta_color="inverse")
        b.metric("Naive module (no reduces)", f"{now.naive_params:,}",
                 f"{now.naive_macs / max(now.macs, 1):.1f}x the mult-adds", **NO_DELTA)
        c.metric("Output shape", f"{h} x {h} x {now.channels}",
                 f"naive: {h} x {h} x {now.naive_channels}", **NO_DELTA)
    else:
        a.metric("Parameters so far, with reduces", f"{now.params:,}",
                 f"+{now.branch_params:,} for this branch", **NO_DELTA)
        b.metric("Without the reduces", f"{now.naive_params:,}",
                 f"+{now.branch_naive_params:,} for this branch", **NO_DELTA)
        c.metric("Channels so far", f"{now.channels}", f"naive: {now.naive_channels}",
                 **NO_DELTA)
    present.chart(step_charts.inception_build_up_figure(totals, shown, f"{h}x{h}x{c_in}"),
                  width="stretch", key="inception_build_up", download="the inception module")


def residual_sizes_ui() -> tuple[int, int, int, int, str]:
    cols = st.columns(5)
    for name in ("res_hw", "res_c", "res_f", "stride", "unit"):
        bind(name)
    hw = cols[0].number_input("Input height = width", 1, 512, 56, key="res_hw")
    c_in = cols[1].number_input("Input channels", 1, 4096, 256, key="res_c")
    filters = cols[2].number_input("Filters", 1, 2048, 64, key="res_f")
    stride = cols[3].selectbox("Stride", [1, 2], key="res_stride")
    kind = cols[4].selectbox("Unit", ["bottleneck", "basic"], key="res_kind")
    return int(hw), int(c_in), int(filters), int(stride), kind


def residual_unit_ui() -> None:
    st.header("A residual unit, your sizes")
    present.note("y = ReLU(F(x) + shortcut(x)). The shortcut is x itself when the shapes match "
                 "(0 parameters), else a 1x1 convolution with the stride (a projection).")
    hw, c_in, filters, stride, kind = residual_sizes_ui()
    unit = sized(summary.residual_unit_summary, (hw, hw, c_in), filters, stride=stride,
                 bottleneck=kind == "bottleneck")
    if unit is None:
        return
    a, b, c, d = st.columns(4)
    a.metric("Output shape", shape_text(unit.stats.output_shape))
    b.metric("Parameters", f"{unit.stats.total_params:,}")
    c.metric("GFLOPs", f"{unit.stats.flops / 1e9:.3f}")
    d.metric("Shortcut", unit.shortcut, f"{unit.shortcut_params:,} parameters", **NO_DELTA)
    with present.fold("The unit's layers (table)", ":material/table:"):
        st.dataframe(summary.layer_rows(unit.stats, kinds=True), hide_index=True,
                     width="stretch")


def residual_layer_text(filters: int, stride: int, bottleneck: bool) -> list[str]:
    s = f" /{stride}" if stride != 1 else ""
    if bottleneck:
        return [f"1x1 conv {filters}{s}, BN, ReLU", f"3x3 conv {filters}, BN, ReLU",
                f"1x1 conv {4 * filters}, BN"]
    return [f"3x3 conv {filters}{s}, BN, ReLU", f"3x3 conv {filters}, BN"]


def residual_step_ui(part: str) -> None:
    """F(x) first, then the shortcut added: identity, then projection."""
    with present.fold("Sizes: input, filters, stride", ":material/tune:"):
        hw, c_in, filters, stride, kind = residual_sizes_ui()
    bottleneck = kind == "bottleneck"
    if part == "projection" and not builders.needs_projection(c_in, filters, stride, bottleneck):
        stride = 2      # these sizes pass x through: the projection a stride of 2 would need
    unit = sized(steps.residual_build_up, (hw, hw, c_in), filters, stride=stride,
                 bottleneck=bottleneck)
    if unit is None:
        return
    a, b, c = st.columns(3)
    a.metric("F(x): parameters", f"{unit.residual_params:,}",
             f"{unit.residual_macs / 1e6:,.1f} M mult-adds", **NO_DELTA)
    if part == "f":
        b.metric("Input", shape_text(unit.input_shape))
        c.metric("F(x) output", shape_text(unit.output_shape))
    elif part == "identity":
        b.metric("Identity shortcut", "0 parameters", f"needs input {shape_text(unit.identity_input)}"
                 f" and stride 1", **NO_DELTA)
        c.metric("Your sizes", unit.shortcut, "shapes match" if unit.shortcut == "identity"
                 else "shapes differ: a projection is needed", **NO_DELTA)
    else:
        b.metric(f"Projection shortcut (1x1 conv /{unit.projection_stride} + BN)",
                 f"{unit.projection_params:,}", "parameters", **NO_DELTA)
        c.metric("Unit with projection", f"{unit.residual_params + unit.projection_params:,}",
                 "parameters", **NO_DELTA)
    layers = residual_layer_text(filters, stride, bottleneck)
    present.chart(step_charts.residual_figure(unit, part, layers), width="stretch",
                  key="residual_build_up", download="the residual unit")


def photo_ui():
    bind("photo")
    return experiments.photo_ui()


def experiments_ui(only: int | None = None) -> None:
    if only is None:
        st.header("Experiments on a photo")
    present.note("Computed live with Keras layers and tf.nn on a real photo. TensorFlow loads "
                 "the first time you run one (a few seconds).")
    for i in (1, 2, 3):
        bind(f"exp{i}")
    chosen = photo_ui()
    if chosen is None:
        return
    photo, photo_key = chosen
    st.image(photo, width=220, caption=f"{photo.size[0]} x {photo.size[1]} pixels")
    pixels = experiments.photo_pixels(photo, photo_key, 128)
    if only in (None, 1):
        experiments.shift_experiment_ui(photo, photo_key)
    if only in (None, 2):
        experiments.pool_experiment_ui(pixels, photo_key)
    if only in (None, 3):
        experiments.lrn_experiment_ui(pixels, photo_key)


def step_ui(number: int) -> None:
    s = steps.step(number)
    st.header(s.title)
    if s.section == "overview":
        overview_ui()
    elif s.section == "network":
        network_step_ui(s.part)
    elif s.section == "diagram":
        block_diagram_ui(header=False)
    elif s.section == "inception":
        inception_step_ui(s.part)
    elif s.section == "residual":
        residual_step_ui(s.part)
    else:
        experiments_ui(only=int(s.part))


number = walk_ui()
if number is None:
    overview_ui()
    inventions_ui()
    block_diagram_ui()
    inception_module_ui()
    residual_unit_ui()
    experiments_ui()
else:
    step_ui(number)
view.sync()
view.notice(notice_slot)
