"""The Architectures page's sentences: what each network invented, the papers' captions and
the notes under the tables.

Every number is either computed from the specs (cnnlab.nets) or read from cnnlab.facts, and a
published number is followed by where it is published.
"""

from __future__ import annotations

from dataclasses import replace

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import INPUT_NAME
from cnnlab.facts import Fact, fact
from cnnlab.nets.builders import (
    ALEXNET_LRN,
    GOOGLENET_MODULES,
    all_networks,
    googlenet,
    inception_module,
    network,
    residual_unit,
)
from cnnlab.nets.network import Network
from cnnlab.nets.summary import block_summaries, params_of

# The residual unit compared in ResNet's inventions: conv2 of ResNet-50 (56x56, 256 channels,
# 64 filters in the bottleneck).
UNIT_HW, UNIT_CHANNELS, UNIT_FILTERS = 56, 256, 64


def sci(x: float) -> str:
    """A number as the papers write small constants: 1e-4, 2.5e-3."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def cited(f: Fact) -> str:
    """ "(He et al. 2015, Table 2)": where a number is published, after the number."""
    return f"({f.citation})"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _lenet5(net: Network) -> list[str]:
    st = net.stats()
    return [
        f"Convolutions with shared weights, pooling and a few dense layers: {st.total_params:,} "
        f"parameters and {st.flops / 1e6:.2f} MFLOPs read a {_shape(net.input_shape[:2])} digit.",
        "Trained end-to-end by backpropagation, it read cheques in US banks in the late 1990s.",
    ]


def _alexnet(net: Network) -> list[str]:
    st = net.stats()
    shapes = {s.name: s.output_shape for s in st.layers}
    lenet = network("lenet5").stats()
    fc = params_of(net, "dense")
    dropout = [s for s in net.layers if s.kind == "dropout"]
    split = [s.name for s in net.layers if s.groups > 1]
    ungrouped = analyze(net.input_shape, [replace(s, groups=1) for s in net.layers]).total_params
    relu, gpu, lrn_gain = (fact("alexnet.relu_speedup"), fact("alexnet.gpu_memory_gb"),
                           fact("alexnet.lrn_top5_gain"))
    crops = fact("alexnet.augmentation")
    image, crop = crops.value["image"], crops.value["crop"]
    return [
        f"Far bigger than LeNet-5: {st.total_params:,} parameters "
        f"({st.total_params / lenet.total_params:,.0f}x) and {st.flops / 1e9:.2f} GFLOPs "
        f"({st.flops / lenet.flops:,.0f}x) on {_shape(net.input_shape[:2])} colour photos.",
        f"ReLU instead of tanh in all {net.depth - 1} hidden weight layers: the paper reports "
        f"{relu.value}x faster training to the same error on CIFAR-10 {cited(relu)}.",
        f"Stacked convolutions: conv3, conv4 and conv5 follow each other on "
        f"{_shape(shapes['conv3'][:2])} maps with no pooling in between.",
        f"Dropout ({dropout[0].rate}) in {' and '.join(d.name.replace('drop', 'fc') for d in dropout)}: "
        f"the three dense layers hold {fc:,} of the {st.total_params:,} parameters "
        f"({100 * fc / st.total_params:.0f}%), where over-fitting lives.",
        # every crop position, each also mirrored
        f"Data augmentation: random {crop}x{crop} crops of {image}x{image} images and their "
        f"mirror images ({(image - crop) ** 2 * 2:,} versions of each photo), plus PCA colour "
        f"noise {cited(crops)}.",
        f"LRN after conv1 and conv2: {params_of(net, 'lrn')} parameters; the paper credits it "
        f"with {lrn_gain.value} points lower top-5 error {cited(lrn_gain)}.",
        f"Two GPUs of {gpu.value} GB each {cited(gpu)}: {', '.join(split)} are split in two "
        f"groups, each half reading only its own GPU's maps, which saves "
        f"{ungrouped - st.total_params:,} parameters.",
    ]


def _googlenet(net: Network) -> list[str]:
    st = net.stats()
    shapes = {s.name: s.output_shape for s in st.layers}
    alex = network("alexnet")
    alex_fc = params_of(alex, "dense")
    first = next(b for b in net.blocks if b.kind == "inception")
    module = first.name.removeprefix("inception_")
    entry = next(s for s in net.layers if s.name == first.layers[0]).inputs[0]
    shape = shapes[entry]
    with_b = analyze(shape, inception_module("m", INPUT_NAME, *GOOGLENET_MODULES[module]))
    naive = analyze(shape, inception_module("m", INPUT_NAME, *GOOGLENET_MODULES[module],
                                            bottleneck=False))
    classifier = params_of(net, "dense")
    with_aux = googlenet(aux=True)
    aux = [b.name.removeprefix("aux_") for b in with_aux.blocks if b.kind == "aux"]
    return [
        f"Inception modules: {sum(b.kind == 'inception' for b in net.blocks)} of them; each "
        "runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side and "
        "concatenates their maps.",
        f"1x1 bottlenecks: module {module} on {_shape(shape)} has {with_b.total_params:,} "
        f"parameters and {with_b.flops / 1e9:.2f} GFLOPs; without its 1x1 reductions it would "
        f"need {naive.total_params:,} and {naive.flops / 1e9:.2f} GFLOPs "
        f"({naive.flops / with_b.flops:.1f}x), and its output would grow to "
        f"{naive.output_shape[-1]} channels instead of {with_b.output_shape[-1]}.",
        f"Global average pooling instead of big dense layers: the classifier has "
        f"{classifier:,} parameters, against {alex_fc:,} in AlexNet's three dense layers.",
        f"{net.depth} layers deep with {st.total_params:,} parameters: "
        f"{alex.stats().total_params / st.total_params:.1f}x fewer than AlexNet, for "
        f"{st.flops / 1e9:.2f} GFLOPs.",
        f"Two auxiliary classifiers on {' and '.join(aux)} push gradient into the middle of the "
        f"network during training: {with_aux.stats().total_params - st.total_params:,} "
        "extra parameters, dropped at inference.",
    ]


def _resnet(net: Network) -> list[str]:
    st = net.stats()
    blocks = [b for b in block_summaries(net) if b.kind == "residual"]
    projections = [b for b in blocks if b.shortcut == "projection"]
    bn = [s for s in st.layers if s.kind == "batchnorm"]
    shape = (UNIT_HW, UNIT_HW, UNIT_CHANNELS)
    bottle = analyze(shape, residual_unit("r", INPUT_NAME, UNIT_CHANNELS, UNIT_FILTERS))
    basic = analyze(shape, residual_unit("r", INPUT_NAME, UNIT_CHANNELS, UNIT_CHANNELS,
                                         bottleneck=False))
    vgg = network("vgg16")
    top1 = fact("resnet.table2_top1_error")
    e = top1.value
    return [
        f"Skip connections: each of the {len(blocks)} residual units adds its input to its "
        f"output, y = F(x) + x. {len(blocks) - len(projections)} use the input itself (0 "
        f"parameters), {len(projections)} a 1x1 projection where the shape changes "
        f"({sum(b.shortcut_params for b in projections):,} parameters).",
        "Residual learning: a unit only learns the change F(x) = H(x) - x. Without shortcuts "
        f"the paper's plain 34-layer net was worse than its 18-layer one ({e['plain34']}% vs "
        f"{e['plain18']}% top-1 error); with them ResNet-34 beat ResNet-18 ({e['resnet34']}% vs "
        f"{e['resnet18']}%; {top1.citation}).",
        f"Batch normalization after every convolution: {len(bn)} BN layers, "
        f"{sum(s.params for s in bn):,} parameters ({sum(s.non_trainable_params for s in bn):,} "
        "of them moving statistics, not trained).",
        f"The bottleneck unit (ResNet-50 and deeper): 1x1 {UNIT_CHANNELS}->{UNIT_FILTERS}, 3x3 on "
        f"{UNIT_FILTERS}, 1x1 {UNIT_FILTERS}->{UNIT_CHANNELS} has {bottle.total_params:,} "
        f"parameters and {bottle.flops / 1e9:.2f} GFLOPs on {UNIT_HW}x{UNIT_HW} maps; two 3x3 "
        f"convolutions on {UNIT_CHANNELS} channels would have {basic.total_params:,} and "
        f"{basic.flops / 1e9:.2f} ({basic.total_params / bottle.total_params:.1f}x).",
        f"Why {net.depth} layers train: through the additions the gradient reaches the first "
        f"layers unchanged (d(x + F(x))/dx = 1 + dF/dx). ResNet-{net.depth} needs "
        f"{st.flops / 1e9:.1f} GFLOPs, VGG-16 ({vgg.depth} layers) {vgg.stats().flops / 1e9:.1f}.",
    ]


def inventions(key: str) -> list[str]:
    """What the network invented, each sentence tied to a number computed from the specs or
    published (with its source)."""
    net = network(key)  # raises SpecError for an unknown key
    for prefix, sentences in (("lenet5", _lenet5), ("alexnet", _alexnet),
                              ("googlenet", _googlenet), ("resnet", _resnet)):
        if key.startswith(prefix):
            return sentences(net)
    raise ValueError(f"no inventions written for {key!r}")


def reported_params(net: Network) -> str:
    """What the network's paper reports about its size, and where."""
    if net.key == "lenet5":
        layers = fact("lenet5.layer_params")
        return (f"{sum(layers.value.values()):,} trainable parameters with its sparse C3 and "
                f"trainable S2/S4 ({layers.where})")
    if net.key == "alexnet":
        params = fact("alexnet.params")
        return f"{params.value / 1e6:.0f} million parameters ({params.where})"
    if net.key.startswith("googlenet"):
        table, budget = fact("googlenet.table1_params"), fact("googlenet.budget_gmacs")
        return (f"about {sum(table.value.values()) / 1000:.1f} million parameters "
                f"({table.where}), {budget.value:g} billion multiply-adds ({budget.where})")
    if net.key.startswith("resnet"):
        flops = fact("resnet.flops")
        depth = int(net.key.removeprefix("resnet").removesuffix("_nobias"))
        return f"{flops.value[depth]:g} billion FLOPs (multiply-adds, {flops.where})"
    return ""


def paper_caption(net: Network) -> str:
    """Under a network's inventions: its paper, what the paper reports, our deviations."""
    return (f"{net.paper.title} ({net.paper.year}); paper: {reported_params(net)}. "
            + " ".join(net.notes))


def citations(facts: list[Fact]) -> str:
    """Where numbers come from, each source once: "He et al. 2015, Table 3; Table 5"."""
    by_source: dict[str, list[str]] = {}
    for f in facts:
        wheres = by_source.setdefault(f.source.cite, [])
        if f.where not in wheres:
            wheres.append(f.where)
    return "; ".join(f"{cite}, {'; '.join(wheres)}" for cite, wheres in by_source.items())


def top5_sources(networks: list[Network] | None = None) -> str:
    """Where each network's top-5 errors are published, networks with the same source
    together: "AlexNet: Krizhevsky et al. 2012, Table 2; ..."."""
    by_citation: dict[str, list[str]] = {}
    for net in networks or all_networks():
        cited_in = citations(net.paper.top5_facts())
        if cited_in:
            by_citation.setdefault(cited_in, []).append(net.title)
    return "; ".join(f"{', '.join(titles)}: {where}" for where, titles in by_citation.items())


def overview_caption() -> str:
    """Under the overview chart: what its numbers mean, where they are published, and why two
    networks have no point."""
    mnist = fact("lenet5.mnist_test_error")
    return ("FLOPs = 2 x multiply-adds (the papers' \"FLOPs\" are multiply-adds, shown as "
            "G mult-adds). Top-5 error: one model, 10 crops, ILSVRC-2012 validation, from each "
            "paper; the ILSVRC entries were ensembles on the test set. LeNet-5 read digits "
            f"({mnist.value}% error on MNIST, {mnist.citation}) and ResNet-18 has only a top-1 "
            "error in its paper, so neither has a point on the left. Sources of the top-5 "
            f"errors: {top5_sources()}.")


def lrn_caption() -> str:
    """Under the LRN experiment: the paper's constants, and what the experiment shows."""
    lrn = fact("alexnet.lrn")
    return (f"AlexNet's values {cited(lrn)}: r={ALEXNET_LRN['depth_radius']} "
            f"(n={lrn.value['n']} maps), k={lrn.value['k']}, alpha={sci(lrn.value['alpha'])}, "
            f"beta={lrn.value['beta']}. Where neighbouring maps respond strongly at the same "
            "pixel, every one of them is divided a lot; where they are quiet, only by k^β. "
            "Strong responses inhibit their neighbours, so after LRN the weaker edges (right "
            "map) are no longer swamped by the few strongest ones.")
