"""The architecture builders against Keras and against the papers' published numbers."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import SpecError
from cnnlab.facts import fact
from cnnlab.nets import builders as A
from cnnlab.nets import summary as S
from cnnlab.nets.network import Network
from tests import ROOT
from tests.keras_oracle import assert_equals_keras

NETWORK_KEYS = list(A.BUILDERS)


@pytest.fixture(scope="module")
def keras_models():
    """Each network's Keras model, built once for the module (ResNet-152 takes seconds)."""
    cache: dict[str, object] = {}

    def get(net: Network):
        if net.key not in cache:
            cache[net.key] = net.keras_model()
        return cache[net.key]

    return get


def _variants() -> list[Network]:
    return [*A.all_networks(), A.googlenet(aux=True), A.resnet(18, conv_bias=False)]


@pytest.mark.slow
@pytest.mark.parametrize("net", _variants(), ids=lambda n: n.key)
def test_calculator_equals_keras_model(net, keras_models):
    """One source of truth: the calculator's totals and every layer's output shape and
    parameters equal the Keras model built from the same spec."""
    assert_equals_keras(net.input_shape, list(net.layers), keras_models(net))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [50, 101, 152])
def test_resnet_matches_keras_applications_layer_by_layer(depth, keras_models):
    import keras

    reference = getattr(keras.applications, f"ResNet{depth}")(weights=None)
    ours = keras_models(A.resnet(depth))
    assert ours.count_params() == reference.count_params()
    ours_layers = {layer.name: layer for layer in ours.layers}
    for ref in reference.layers:
        mine = ours_layers[ref.name if ref.name != reference.layers[0].name else "input"]
        assert mine.count_params() == ref.count_params(), ref.name
        assert tuple(mine.output.shape) == tuple(ref.output.shape), ref.name
    assert len(ours.layers) == len(reference.layers)


def test_resnet50_has_keras_resnet50_parameter_count():
    assert A.resnet(50).stats().total_params == 25_636_712


@pytest.mark.parametrize("depth, trainable", fact("resnet.torchvision_params").value.items())
def test_resnet_without_conv_bias_matches_published_torchvision_counts(depth, trainable):
    # torchvision's resnet*() count (convs without bias; BN running stats are buffers).
    assert A.resnet(depth, conv_bias=False).stats().trainable_params == trainable


@pytest.mark.parametrize("depth, gmacs", fact("resnet.flops").value.items())
def test_resnet_flops_match_paper_table_1(depth, gmacs):
    # He et al. 2015, Table 1 "FLOPs" are multiply-adds.
    assert A.resnet(depth).stats().total_macs / 1e9 == pytest.approx(gmacs, rel=0.03)


def test_alexnet_matches_caffe_reference_and_two_gpu_layout():
    net = A.alexnet()
    stats = {layer.name: layer for layer in net.stats().layers}
    assert net.stats().total_params == 60_965_224  # Caffe's bvlc_alexnet, "60 million"
    assert stats["conv1"].output_shape == (55, 55, 96)
    assert stats["pool5"].output_shape == (6, 6, 256)
    # conv2 reads one GPU's 48 maps per kernel: groups=2 halves its weights.
    assert stats["conv2"].params == 5 * 5 * 48 * 256 + 256
    assert stats["conv3"].params == 3 * 3 * 256 * 384 + 384
    kinds = [spec.kind for spec in net.layers]
    assert kinds.count("lrn") == 2 and kinds.count("dropout") == 2


def test_lenet5_parameters():
    stats = A.lenet5().stats()
    assert stats.total_params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    assert stats.output_shape == (10,)


@pytest.mark.parametrize("module, mops", fact("googlenet.table1_ops").value.items())
def test_googlenet_module_ops_match_paper_table_1(module, mops):
    net = A.googlenet()
    block = next(b for b in net.blocks if b.name == f"inception_{module}")
    stats = {layer.name: layer for layer in net.stats().layers}
    macs = sum(stats[name].macs for name in block.layers)
    assert macs / 1e6 == pytest.approx(mops, rel=0.06)


def test_googlenet_shapes_and_budget():
    net = A.googlenet()
    stats = {layer.name: layer for layer in net.stats().layers}
    assert stats["inception_3a_output"].output_shape == (28, 28, 256)
    assert stats["inception_4e_output"].output_shape == (14, 14, 832)
    assert stats["inception_5b_output"].output_shape == (7, 7, 1024)
    # the paper's "computational budget" of multiply-adds at inference time
    assert net.stats().total_macs / 1e9 == pytest.approx(fact("googlenet.budget_gmacs").value,
                                                         rel=0.06)
    # global average pooling: the classifier is the only dense layer, 1024*1000 + 1000
    dense = [s for s in net.stats().layers if s.kind == "dense"]
    assert [d.params for d in dense] == [1_025_000]
    assert net.stats().total_params < A.alexnet().stats().total_params / 8


def test_googlenet_aux_heads_add_two_classifiers():
    plain, aux = A.googlenet(), A.googlenet(aux=True)
    assert aux.stats().output_shape == (3000,)
    head = 128 * 512 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    heads = head + (128 * 528 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000)
    assert aux.stats().total_params - plain.stats().total_params == heads
    assert {b.name for b in aux.blocks if b.kind == "aux"} == {"aux_4a", "aux_4d"}


@pytest.mark.parametrize("key, depth", [
    ("lenet5", 5), ("alexnet", 8), ("googlenet", 22), ("resnet18", 18), ("resnet34", 34),
    ("resnet50", 50), ("resnet101", 101), ("resnet152", 152),
])
def test_depth_is_the_papers_depth(key, depth):
    assert A.network(key).depth == depth


def test_papers_facts():
    assert A.network("alexnet").paper.year == 2012
    assert A.network("alexnet").paper.top5_error == 15.3
    assert A.network("googlenet").paper.top5_error == 6.67
    assert A.network("resnet152").paper.top5_error == 3.57
    assert A.network("resnet152").paper.single_top5_error == 5.71
    assert A.network("lenet5").paper.top5_error is None


def test_blocks_cover_every_layer_once():
    for net in _variants():
        names = [name for block in net.blocks for name in block.layers]
        assert sorted(names) == sorted(spec.name for spec in net.layers), net.key
    r50 = A.resnet(50)
    units = [b for b in r50.blocks if b.kind == "residual"]
    assert len(units) == 16
    assert [b.shortcut for b in units].count("projection") == 4
    assert r50.stages() == ["stem", "conv2", "conv3", "conv4", "conv5", "head"]


def test_inception_module_bottleneck_cuts_parameters_and_flops():
    shape = (28, 28, 192)
    with_b = analyze(shape, A.inception_module("m", "input", 64, 96, 128, 16, 32, 32))
    naive = analyze(shape, A.inception_module("m", "input", 64, 96, 128, 16, 32, 32,
                                              bottleneck=False))
    assert with_b.output_shape == (28, 28, 256)
    assert naive.output_shape == (28, 28, 64 + 128 + 32 + 192)
    assert naive.total_params == (192 * 64 + 64) + (9 * 192 * 128 + 128) + (25 * 192 * 32 + 32)
    assert with_b.total_params < naive.total_params / 2
    assert with_b.total_macs < naive.total_macs / 2


@pytest.mark.slow
def test_blocks_build_in_keras():
    for shape, layers in [
        ((28, 28, 192), A.inception_module("m", "input", 64, 96, 128, 16, 32, 32)),
        ((28, 28, 192), A.inception_module("m", "input", 64, 96, 128, 16, 32, 32,
                                           bottleneck=False)),
        ((56, 56, 256), A.residual_unit("r", "input", 256, 64)),
        ((56, 56, 256), A.residual_unit("r", "input", 256, 128, stride=2)),
        ((56, 56, 64), A.residual_unit("r", "input", 64, 64, bottleneck=False)),
    ]:
        assert_equals_keras(shape, layers)


def test_residual_unit_shortcuts():
    identity = analyze((56, 56, 256), A.residual_unit("r", "input", 256, 64))
    assert identity.output_shape == (56, 56, 256)
    assert not any(s.name == "r_0_conv" for s in identity.layers)
    projection = analyze((56, 56, 256), A.residual_unit("r", "input", 256, 128, stride=2))
    assert projection.output_shape == (28, 28, 512)
    proj = next(s for s in projection.layers if s.name == "r_0_conv")
    assert proj.params == 256 * 512 + 512


def test_bad_arguments_give_one_line_errors():
    with pytest.raises(SpecError, match="depth 42"):
        A.resnet(42)
    with pytest.raises(SpecError, match="#3x3 must be a positive integer"):
        A.inception_module("m", "input", 64, 96, 0, 16, 32, 32)
    with pytest.raises(SpecError, match="stride must be 1 or 2"):
        A.residual_unit("r", "input", 64, 64, stride=3)
    with pytest.raises(SpecError, match="unknown network"):
        A.network("vgg99")
    with pytest.raises(SpecError) as info:
        analyze((8, 8, 3), A.inception_module("m", "input", 4, 4, 4, 4, 4, 4)[:2])
    assert "\n" not in str(info.value)


def test_specs_and_stats_do_not_import_tensorflow():
    code = ("import sys; from cnnlab.nets import builders as A\n"
            "[n.stats() for n in A.all_networks()]\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.stdout.strip() == "False False", out.stderr[-2000:]


def test_block_diagram_is_drawn_from_the_spec():
    from cnnlab.nets import charts as arch_charts

    fig = arch_charts.block_diagram(A.resnet(50), "conv3")
    arcs = [s for s in fig.layout.shapes if s.type == "path" and s.line.color in
            (arch_charts.IDENTITY, arch_charts.PROJECTION)]
    assert len(arcs) == 16  # one shortcut per residual unit
    assert sum(s.line.dash == "dash" for s in arcs) == 4  # the projections
    thick = [s for s in fig.layout.shapes if s.type == "rect" and s.line.width == 3]
    assert len(thick) == 4  # conv3's units are highlighted
    hover = " ".join(fig.data[0].hovertext)
    assert "conv4_block1</b> (conv4)<br>output 14x14x1024" in hover

    fig = arch_charts.block_diagram(A.googlenet(), None)
    x = A.GOOGLENET_MODULES["3a"]
    stripes = [s for s in fig.layout.shapes if s.type == "rect" and s.fillcolor in
               arch_charts.BRANCH_COLOURS.values()][:4]
    widths = [s.x1 - s.x0 for s in stripes]
    channels = [x[0], x[2], x[4], x[5]]  # 1x1, 3x3, 5x5, pool proj of module 3a
    assert [round(w / sum(widths), 6) for w in widths] == \
        [round(c / sum(channels), 6) for c in channels]


def test_overview_figure_plots_computed_parameters():
    from cnnlab.nets import charts as arch_charts

    rows = S.overview()
    fig = arch_charts.overview_figure(rows)
    scatter = fig.data[0]
    assert "LeNet-5" not in scatter.text and "ResNet-18" not in scatter.text  # no top-5 error
    assert dict(zip(scatter.text, scatter.x, strict=True))["ResNet-50"] == 25_636_712
    bars = fig.data[2]
    assert list(bars.x) == [n.title for n in A.all_networks()]


@pytest.mark.parametrize("preset, key", [("LeNet-5", "lenet5"), ("AlexNet", "alexnet")])
def test_calculator_presets_are_the_architectures_specs(preset, key):
    """One source of truth: the calculator's preset is this page's spec, layer for layer."""
    from cnnlab.calc.presets import PRESETS

    shape, layers = PRESETS[preset]
    from cnnlab.calc.grammar import format_layer

    assert shape == A.network(key).input_shape
    assert [format_layer(x) for x in layers] == [format_layer(x) for x in A.network(key).layers]
    assert analyze(shape, layers).total_params == {"lenet5": 61_706, "alexnet": 60_965_224}[key]


def test_stage_totals_add_up_the_stage_table_and_the_network():
    net = A.resnet(50)
    for stage in net.stages():
        rows, totals = S.stage_table(net, stage), S.stage_totals(net, stage)
        assert totals.layers == len(rows)
        assert totals.params == sum(r["parameters"] for r in rows)
        assert totals.macs / 1e6 == pytest.approx(sum(r["MMACs"] for r in rows), abs=0.005 * len(rows))
    totals = [S.stage_totals(net, stage) for stage in net.stages()]
    assert sum(t.params for t in totals) == net.stats().total_params
    assert sum(t.macs for t in totals) == net.stats().total_macs
    with pytest.raises(SpecError, match="no stage 'conv9'"):
        S.stage_totals(net, "conv9")


@pytest.mark.parametrize("shape, filters, stride, bottleneck, kind, shortcut_params", [
    ((56, 56, 256), 64, 1, True, "identity", 0),
    ((56, 56, 256), 64, 2, True, "projection", 256 * 256 + 256 + 4 * 256),    # 1x1 conv + BN
    ((56, 56, 64), 64, 1, True, "projection", 64 * 256 + 256 + 4 * 256),      # 64 -> 4 x 64
    ((56, 56, 64), 64, 1, False, "identity", 0),
    ((56, 56, 64), 128, 2, False, "projection", 64 * 128 + 128 + 4 * 128),
])
def test_residual_unit_summary_finds_the_projection(shape, filters, stride, bottleneck, kind,
                                                    shortcut_params):
    unit = S.residual_unit_summary(shape, filters, stride=stride, bottleneck=bottleneck)
    assert unit.shortcut == kind
    assert unit.shortcut_params == shortcut_params
    assert unit.stats == analyze(shape, A.residual_unit(S.UNIT, "input", shape[-1], filters,
                                                        stride=stride, bottleneck=bottleneck))
    # the same rule draws the arcs of the diagram: ResNet-50's conv3 starts with a projection
    blocks = {b.name: b for b in S.block_summaries(A.resnet(50))}
    assert blocks["conv3_block1"].shortcut == "projection"
    assert blocks["conv3_block1"].shortcut_params == 256 * 512 + 512 + 4 * 512
    assert blocks["conv3_block2"].shortcut_params == 0


def test_compare_inception_and_layer_rows():
    module = S.compare_inception((28, 28, 192), A.GOOGLENET_MODULES["3a"])
    with_b = analyze((28, 28, 192), A.inception_module("m", "input", *A.GOOGLENET_MODULES["3a"]))
    assert module.bottleneck == with_b
    assert module.params_vs_naive == with_b.total_params - module.naive.total_params < 0
    assert module.flops_ratio == pytest.approx(module.naive.flops / with_b.flops)
    rows = S.layer_rows(with_b)
    assert [r["layer"] for r in rows] == [s.name for s in with_b.layers]
    assert sum(r["parameters"] for r in rows) == with_b.total_params
    assert "kind" not in rows[0] and S.layer_rows(with_b, kinds=True)[0]["kind"] == "conv"
    with pytest.raises(SpecError, match="#3x3 must be a positive integer"):
        S.compare_inception((28, 28, 192), (64, 96, 0, 16, 32, 32))


def test_vgg16_is_a_network_and_the_calculator_preset():
    from cnnlab.calc.presets import PRESETS

    vgg = A.network("vgg16")
    assert vgg.depth == 16
    assert (vgg.input_shape, list(vgg.layers)) == PRESETS["VGG16"]
    assert "vgg16" not in [n.key for n in A.all_networks()]  # the page's list is unchanged


def test_one_alexnet_lrn_from_the_papers_constants():
    from cnnlab.nets import concepts

    paper = fact("alexnet.lrn").value
    lrn = [s for s in A.alexnet().layers if s.kind == "lrn"]
    assert {(s.depth_radius, s.lrn_bias, s.alpha, s.beta) for s in lrn} == \
        {(paper["n"] // 2, paper["k"], paper["alpha"], paper["beta"])}
    # one definition: the LRN experiment's defaults are the builder's
    assert concepts.ALEXNET_LRN is A.ALEXNET_LRN
    defaults = inspect.signature(concepts.lrn_experiment).parameters
    assert [defaults[k].default for k in ("depth_radius", "bias", "alpha", "beta")] == \
        [A.ALEXNET_LRN[k] for k in ("depth_radius", "lrn_bias", "alpha", "beta")]


def test_page_text_cites_every_published_number_it_shows():
    from cnnlab.nets import page_text

    resnet = " ".join(page_text.inventions("resnet34"))
    table2 = fact("resnet.table2_top1_error")
    for value in table2.value.values():
        assert f"{value}%" in resnet
    assert table2.citation in resnet
    alexnet = " ".join(page_text.inventions("alexnet"))
    for key in ("alexnet.relu_speedup", "alexnet.gpu_memory_gb", "alexnet.lrn_top5_gain",
                "alexnet.augmentation"):
        assert fact(key).citation in alexnet, key
    crops = fact("alexnet.augmentation").value
    assert f"({crops['factor']:,} versions" in alexnet  # computed from the crop sizes
    assert fact("lenet5.mnist_test_error").citation in page_text.overview_caption()
    assert "Section II.B" in page_text.paper_caption(A.lenet5())
    assert fact("alexnet.lrn").citation in page_text.lrn_caption()
    assert "alpha=1e-4" in page_text.lrn_caption()
    sources = page_text.top5_sources()
    assert "ResNet-34, ResNet-50, ResNet-101: He et al. 2015, Table 3; " in sources
    assert "ResNet-152: He et al. 2015, Table 3; Table 5" in sources
    assert "LeNet-5" not in sources and "ResNet-18" not in sources  # no top-5 error published
    assert sources in page_text.overview_caption()
    with pytest.raises(SpecError, match="unknown network"):
        page_text.inventions("vgg99")
