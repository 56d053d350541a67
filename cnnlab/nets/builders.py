"""LeNet-5, AlexNet, GoogLeNet, ResNet and VGG-16 as calculator specifications.

One source of truth: each network is a list of `calc.LayerSpec` (a DAG: concat and add name
their inputs) plus a grouping of those layers into blocks and stages (`network.Network`). The
calculator computes its parameters, FLOPs and memory from that list, `calc.keras_oracle.to_keras`
builds the Keras model from the same list, and the tests check the two agree (and that
`resnet(50)` has exactly the parameters of `keras.applications.ResNet50`).

Pure Python: Keras is imported only by `Network.keras_model()`. Building never needs weights.
Published numbers (papers' errors, constants) come from `cnnlab.facts`.
"""

from __future__ import annotations

import functools

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import LayerSpec, SpecError
from cnnlab.facts import all_facts, fact, source
from cnnlab.nets.network import Network, Paper, SpecBuilder

# Keras' ResNet uses BatchNormalization(epsilon=1.001e-5); the epsilon does not change counts.
RESNET_UNITS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# Inception v1 modules (Szegedy et al. 2014, Table 1):
# #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# VGG-16 (Simonyan & Zisserman 2014, Table 1, configuration D): (filters, 3x3 convs) per block.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _alexnet_lrn() -> dict[str, float | int]:
    """AlexNet's LRN (k, n, alpha, beta: cnnlab.facts "alexnet.lrn") as LayerSpec fields.

    TF's depth_radius is n // 2, and TF does not divide alpha by n (as the paper's formula).
    """
    paper = fact("alexnet.lrn").value
    return {"depth_radius": paper["n"] // 2, "lrn_bias": float(paper["k"]),
            "alpha": float(paper["alpha"]), "beta": float(paper["beta"])}


ALEXNET_LRN = _alexnet_lrn()
ALEXNET_INPUT = 227  # the paper's 224 does not give its 55x55 conv1 maps (see alexnet())


# ------------------------------------------------------------------------------ blocks


def inception_module(prefix: str, source: str, f1: int, f3_reduce: int, f3: int,
                     f5_reduce: int, f5: int, pool_proj: int, *,
                     bottleneck: bool = True) -> list[LayerSpec]:
    """An Inception v1 module reading layer `source` ("input" for a standalone module).

    Four branches concatenated on channels: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5;
    3x3 max pool -> 1x1 projection. Without the 1x1 bottlenecks (the paper's "naive" module,
    Fig. 2a) the 3x3 and 5x5 convolutions read all input channels and the pool branch passes
    its input through, so the output has f1 + f3 + f5 + C_in channels.
    """
    for what, value in (("#1x1", f1), ("#3x3", f3), ("#5x5", f5)) + (
            (("#3x3 reduce", f3_reduce), ("#5x5 reduce", f5_reduce), ("pool proj", pool_proj))
            if bottleneck else ()):
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"inception module {prefix}: {what} must be a positive integer, "
                            f"got {value!r}")
    relu = {"activation": "relu", "padding": "same"}
    layers = [LayerSpec("conv", f"{prefix}_1x1", filters=f1, inputs=(source,), **relu)]
    if bottleneck:
        layers += [
            LayerSpec("conv", f"{prefix}_3x3_reduce", filters=f3_reduce, inputs=(source,), **relu),
            LayerSpec("conv", f"{prefix}_3x3", filters=f3, kernel=(3, 3), **relu),
            LayerSpec("conv", f"{prefix}_5x5_reduce", filters=f5_reduce, inputs=(source,), **relu),
            LayerSpec("conv", f"{prefix}_5x5", filters=f5, kernel=(5, 5), **relu),
            LayerSpec("maxpool", f"{prefix}_pool", kernel=(3, 3), strides=(1, 1),
                      padding="same", inputs=(source,)),
            LayerSpec("conv", f"{prefix}_pool_proj", filters=pool_proj, **relu),
        ]
        branches = ("_1x1", "_3x3", "_5x5", "_pool_proj")
    else:
        layers += [
            LayerSpec("conv", f"{prefix}_3x3", filters=f3, kernel=(3, 3), inputs=(source,), **relu),
            LayerSpec("conv", f"{prefix}_5x5", filters=f5, kernel=(5, 5), inputs=(source,), **relu),
            LayerSpec("maxpool", f"{prefix}_pool", kernel=(3, 3), strides=(1, 1),
                      padding="same", inputs=(source,)),
        ]
        branches = ("_1x1", "_3x3", "_5x5", "_pool")
    layers.append(LayerSpec("concat", f"{prefix}_output",
                            inputs=tuple(prefix + b for b in branches)))
    return layers


def shortcut_layers(prefix: str) -> tuple[str, str]:
    """The names of residual unit `prefix`'s projection shortcut: a 1x1 conv and its BN."""
    return f"{prefix}_0_conv", f"{prefix}_0_bn"


def needs_projection(in_channels: int, filters: int, stride: int = 1,
                     bottleneck: bool = True) -> bool:
    """Whether a residual unit's shortcut is a 1x1 projection (its output shape differs from
    its input's) rather than the input itself. Keras' stack1 gives the first unit of every
    stage one (conv_shortcut)."""
    return stride != 1 or in_channels != (4 * filters if bottleneck else filters)


def residual_unit(prefix: str, source: str, in_channels: int, filters: int, *, stride: int = 1,
                  bottleneck: bool = True, use_bias: bool = True) -> list[LayerSpec]:
    """A ResNet v1 residual unit reading layer `source` with `in_channels` channels.

    bottleneck: 1x1 (filters, stride) -> 3x3 (filters) -> 1x1 (4*filters), as Keras' ResNet50;
    basic: 3x3 (filters, stride) -> 3x3 (filters). Every conv is followed by batch
    normalization. The shortcut is the input itself (identity, 0 parameters) when shapes
    match, else a 1x1 convolution with the stride and batch normalization (projection). The
    sum goes through a ReLU.
    """
    if not isinstance(filters, int) or filters < 1:
        raise SpecError(f"residual unit {prefix}: filters must be a positive integer, got {filters!r}")
    if stride not in (1, 2):
        raise SpecError(f"residual unit {prefix}: stride must be 1 or 2, got {stride!r}")
    out_channels = 4 * filters if bottleneck else filters
    bn = {"kind": "batchnorm"}
    layers: list[LayerSpec] = []
    shortcut = source
    if needs_projection(in_channels, filters, stride, bottleneck):
        conv, shortcut = shortcut_layers(prefix)
        layers += [
            LayerSpec("conv", conv, filters=out_channels, strides=(stride, stride),
                      use_bias=use_bias, inputs=(source,)),
            LayerSpec(name=shortcut, **bn),
        ]
    if bottleneck:
        convs = [(filters, (1, 1), (stride, stride), "valid"), (filters, (3, 3), (1, 1), "same"),
                 (out_channels, (1, 1), (1, 1), "valid")]
    else:
        convs = [(filters, (3, 3), (stride, stride), "same"), (filters, (3, 3), (1, 1), "same")]
    for i, (n, kernel, strides, padding) in enumerate(convs, start=1):
        layers.append(LayerSpec("conv", f"{prefix}_{i}_conv", filters=n, kernel=kernel,
                                strides=strides, padding=padding, use_bias=use_bias,
                                inputs=(source,) if i == 1 else ()))
        layers.append(LayerSpec(name=f"{prefix}_{i}_bn", **bn))
        if i < len(convs):
            layers.append(LayerSpec("activation", f"{prefix}_{i}_relu", activation="relu"))
    last_bn = layers[-1].name
    layers.append(LayerSpec("add", f"{prefix}_add", inputs=(shortcut, last_bn)))
    layers.append(LayerSpec("activation", f"{prefix}_out", activation="relu"))
    return layers


# ------------------------------------------------------------------------------ papers


def _paper(source_key: str, subject: str) -> Paper:
    """The paper and, where it publishes them, `subject`'s top-5 errors (cnnlab.facts)."""
    facts = all_facts()
    return Paper(source(source_key), facts.get(f"{subject}.top5_error"),
                 facts.get(f"{subject}.ilsvrc_top5_error"))


# ------------------------------------------------------------------------------ networks


def lenet5() -> Network:
    """LeNet-5 (LeCun et al. 1998) on 32x32 grey images, 10 classes.

    Deviations: C3 connects to all 6 maps (the paper wires each of its 16 maps to a subset),
    S2/S4 are plain average pools (the paper's have a trainable gain and bias), and the
    output is a softmax dense layer (the paper's is an RBF layer).
    """
    s = SpecBuilder()
    tanh = {"activation": "tanh"}
    with s.block("C1_S2", "C1 + S2", "conv"):      # 28x28x6 -> 14x14x6
        s.add("conv", "C1", filters=6, kernel=(5, 5), **tanh)
        s.add("avgpool", "S2", kernel=(2, 2))
    with s.block("C3_S4", "C3 + S4", "conv"):      # 10x10x16 -> 5x5x16
        s.add("conv", "C3", filters=16, kernel=(5, 5), **tanh)
        s.add("avgpool", "S4", kernel=(2, 2))
    with s.block("C5", "C5", "conv"):              # 1x1x120
        s.add("conv", "C5", filters=120, kernel=(5, 5), **tanh)
        s.add("flatten", "C5_flatten")
    with s.block("F6_output", "F6 + output", "dense"):
        s.add("dense", "F6", units=84, **tanh)
        s.add("dense", "output", units=10, activation="softmax")
    return Network("lenet5", "LeNet-5", (32, 32, 1), tuple(s.layers), tuple(s.blocks),
                   _paper("lecun1998", "lenet5"), notes=(
                       "C3 is fully connected to the 6 maps of S2 (the paper's C3 uses a "
                       "fixed sparse table), S2/S4 are plain average pools and the output "
                       "is softmax instead of RBF units.",))


def alexnet() -> Network:
    """AlexNet (Krizhevsky et al. 2012): the paper's layout on 227x227x3, with both GPUs.

    The two GPUs appear as grouped convolutions (groups=2) in conv2, conv4 and conv5, where
    each GPU's kernels read only that GPU's half of the previous maps; conv3 and the dense
    layers read both halves. LRN follows conv1 and conv2, max pools (3x3, stride 2: the
    overlapping pooling of section 3.4) follow the LRNs and conv5; dropout 0.5 in fc6, fc7.
    """
    s = SpecBuilder()
    relu = {"activation": "relu"}
    with s.block("conv1", "conv1", "conv"):        # 55x55x96 -> 27x27x96
        s.add("conv", "conv1", filters=96, kernel=(11, 11), strides=(4, 4), **relu)
        s.add("lrn", "norm1", **ALEXNET_LRN)
        s.add("maxpool", "pool1", kernel=(3, 3), strides=(2, 2))
    with s.block("conv2", "conv2", "conv"):        # 27x27x256 -> 13x13x256
        s.add("conv", "conv2", filters=256, kernel=(5, 5), padding="same", groups=2, **relu)
        s.add("lrn", "norm2", **ALEXNET_LRN)
        s.add("maxpool", "pool2", kernel=(3, 3), strides=(2, 2))
    with s.block("conv3", "conv3", "conv"):        # 13x13x384
        s.add("conv", "conv3", filters=384, kernel=(3, 3), padding="same", **relu)
    with s.block("conv4", "conv4", "conv"):        # 13x13x384
        s.add("conv", "conv4", filters=384, kernel=(3, 3), padding="same", groups=2, **relu)
    with s.block("conv5", "conv5", "conv"):        # 13x13x256 -> 6x6x256
        s.add("conv", "conv5", filters=256, kernel=(3, 3), padding="same", groups=2, **relu)
        s.add("maxpool", "pool5", kernel=(3, 3), strides=(2, 2))
        s.add("flatten", "flatten")
    with s.block("fc6", "fc6", "dense"):
        s.add("dense", "fc6", units=4096, **relu)
        s.add("dropout", "drop6", rate=0.5)
    with s.block("fc7", "fc7", "dense"):
        s.add("dense", "fc7", units=4096, **relu)
        s.add("dropout", "drop7", rate=0.5)
    with s.block("fc8", "fc8", "head"):
        s.add("dense", "fc8", units=1000, activation="softmax")
    return Network("alexnet", "AlexNet", (ALEXNET_INPUT, ALEXNET_INPUT, 3), tuple(s.layers),
                   tuple(s.blocks), _paper("krizhevsky2012", "alexnet"),
                   notes=(_alexnet_input_note(s.layers[0]),))


def _alexnet_input_note(conv1: LayerSpec) -> str:
    """Why the input is 227, not the paper's 224 (its crops, Section 4.1): only 227 gives conv1
    the paper's 55x55 maps."""
    k, stride = conv1.kernel[0], conv1.strides[0]
    paper = fact("alexnet.augmentation").value["crop"]
    out = (ALEXNET_INPUT - k) // stride + 1
    return (f"Input {ALEXNET_INPUT}x{ALEXNET_INPUT}: the paper says {paper}, but {k}x{k} kernels "
            f"at stride {stride} give its {out}x{out} maps only from {ALEXNET_INPUT}.")


def googlenet(aux: bool = False) -> Network:
    """GoogLeNet / Inception v1 (Szegedy et al. 2014, Table 1) on 224x224x3.

    aux=True adds the two auxiliary classifiers on 4a and 4d (5x5/3 average pool, 1x1 conv
    128, dense 1024, dropout 0.7, softmax 1000). The calculator's spec has one output, so
    the model's output is the three softmax vectors concatenated: [main, aux 4a, aux 4d],
    3000 values, each 1000-slice a distribution.
    """
    s = SpecBuilder()
    relu = {"activation": "relu", "padding": "same"}
    lrn = {"depth_radius": 2, "lrn_bias": 1.0, "alpha": 1e-4 / 5, "beta": 0.75}  # Caffe's LRN
    with s.block("stem", "stem", "stem"):          # 112x112x64 -> 56x56x192 -> 28x28x192
        s.add("conv", "conv1_7x7", filters=64, kernel=(7, 7), strides=(2, 2), **relu)
        s.add("maxpool", "pool1", kernel=(3, 3), strides=(2, 2), padding="same")
        s.add("lrn", "norm1", **lrn)
        s.add("conv", "conv2_3x3_reduce", filters=64, **relu)
        s.add("conv", "conv2_3x3", filters=192, kernel=(3, 3), **relu)
        s.add("lrn", "norm2", **lrn)
        s.add("maxpool", "pool2", kernel=(3, 3), strides=(2, 2), padding="same")
    aux_outputs = []
    x = s.last  # the main path; aux heads branch off it
    for stage, names in (("inception 3", ("3a", "3b")),
                         ("inception 4", ("4a", "4b", "4c", "4d", "4e")),
                         ("inception 5", ("5a", "5b"))):
        for module in names:                        # 3: 28x28, 4: 14x14, 5: 7x7
            with s.block(f"inception_{module}", stage, "inception"):
                x = s.extend(inception_module(f"inception_{module}", x,
                                              *GOOGLENET_MODULES[module]))
            if aux and module in ("4a", "4d"):
                with s.block(f"aux_{module}", stage, "aux"):
                    aux_outputs.append(_aux_head(s, f"aux_{module}", x))
        if stage != "inception 5":
            with s.block(f"pool_{stage[-1]}", stage, "pool"):
                x = s.add("maxpool", f"pool{stage[-1]}", x, kernel=(3, 3), strides=(2, 2),
                          padding="same")
    with s.block("head", "head", "head"):
        s.add("globalavgpool", "avg_pool", x)
        s.add("dropout", "dropout", rate=0.4)
        s.add("dense", "classifier", units=1000, activation="softmax")
        if aux_outputs:
            s.add("concat", "outputs", "classifier", *aux_outputs)
    key, title = ("googlenet_aux", "GoogLeNet + aux") if aux else ("googlenet", "GoogLeNet")
    notes = ("LRN as in the reference Caffe model (size 5, alpha 1e-4 averaged over the 5 "
             "maps, beta 0.75); the classifier follows global average pooling directly (the "
             "paper's extra linear layer is the classifier itself).",)
    if aux:
        notes += ("The output concatenates the three softmax vectors [main, aux 4a, aux 4d] "
                  "(3000 values), because a calculator spec has one output.",)
    return Network(key, title, (224, 224, 3), tuple(s.layers), tuple(s.blocks),
                   _paper("szegedy2014", "googlenet"), notes=notes)


def _aux_head(s: SpecBuilder, prefix: str, source: str) -> str:
    s.add("avgpool", f"{prefix}_pool", source, kernel=(5, 5), strides=(3, 3))  # 14 -> 4
    s.add("conv", f"{prefix}_conv", filters=128, activation="relu")
    s.add("flatten", f"{prefix}_flatten")
    s.add("dense", f"{prefix}_fc", units=1024, activation="relu")
    s.add("dropout", f"{prefix}_dropout", rate=0.7)
    return s.add("dense", f"{prefix}_classifier", units=1000, activation="softmax")


def resnet(depth: int = 50, *, conv_bias: bool = True) -> Network:
    """ResNet v1 (He et al. 2015) with 18, 34, 50, 101 or 152 layers on 224x224x3.

    The layout is Keras' `keras.applications.ResNet50/101/152` (ZeroPadding, conv biases,
    BatchNormalization, projection shortcut in the first unit of every stage), so resnet(50)
    has exactly ResNet50's 25,636,712 parameters. 18 and 34 use the paper's basic unit in
    the same style. conv_bias=False drops the conv biases (BN makes them redundant), which
    is the layout of the published PyTorch counts (resnet18: 11,689,512 trainable).
    """
    if depth not in RESNET_UNITS:
        raise SpecError(f"ResNet depth {depth!r} is not one of "
                        f"{', '.join(map(str, RESNET_UNITS))}")
    unit, counts = RESNET_UNITS[depth]
    bottleneck = unit == "bottleneck"
    s = SpecBuilder()
    with s.block("stem", "stem", "stem"):          # 112x112x64 -> 56x56x64
        s.add("zeropad", "conv1_pad", pad=(3, 3, 3, 3))
        s.add("conv", "conv1_conv", filters=64, kernel=(7, 7), strides=(2, 2), use_bias=conv_bias)
        s.add("batchnorm", "conv1_bn")
        s.add("activation", "conv1_relu", activation="relu")
        s.add("zeropad", "pool1_pad", pad=(1, 1, 1, 1))
        s.add("maxpool", "pool1_pool", kernel=(3, 3), strides=(2, 2))
    channels = 64
    # conv2: 56x56, conv3: 28x28, conv4: 14x14, conv5: 7x7 (x4 channels for bottlenecks)
    for stage_index, (filters, units) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
        stage = f"conv{stage_index + 2}"
        for u in range(1, units + 1):
            stride = 2 if u == 1 and stage_index > 0 else 1
            name = f"{stage}_block{u}"
            layers = residual_unit(name, s.last, channels, filters, stride=stride,
                                   bottleneck=bottleneck, use_bias=conv_bias)
            with s.block(name, stage, "residual") as block:
                s.extend(layers)
                block["shortcut"] = ("projection" if needs_projection(channels, filters, stride,
                                                                      bottleneck) else "identity")
            channels = 4 * filters if bottleneck else filters
    with s.block("head", "head", "head"):
        s.add("globalavgpool", "avg_pool")
        s.add("dense", "predictions", units=1000, activation="softmax")
    suffix = "" if conv_bias else " (no conv bias)"
    keras_resnet50 = (analyze((224, 224, 3), s.layers) if depth == 50 and conv_bias
                      else network("resnet50").stats()).total_params
    return Network(f"resnet{depth}" + ("" if conv_bias else "_nobias"), f"ResNet-{depth}{suffix}",
                   (224, 224, 3), tuple(s.layers), tuple(s.blocks), _paper("he2015", f"resnet{depth}"),
                   notes=("Keras' layout: conv biases before BatchNormalization (redundant, "
                          f"but they are in keras.applications.ResNet50's {keras_resnet50:,}).",))


def vgg16() -> Network:
    """VGG-16 (Simonyan & Zisserman 2014, configuration D) as keras.applications.VGG16:
    thirteen 3x3 SAME convolutions in five blocks, each block ending in a 2x2 max pool, then
    two dense layers of 4096 and the 1000-way softmax. 138,357,544 parameters."""
    s = SpecBuilder()
    for b, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):   # 224 -> 112 ... -> 7
        with s.block(f"block{b}", f"block{b}", "conv"):
            for i in range(1, convs + 1):
                s.add("conv", f"block{b}_conv{i}", filters=filters, kernel=(3, 3),
                      strides=(1, 1), padding="same", activation="relu")
            s.add("maxpool", f"block{b}_pool", kernel=(2, 2), strides=(2, 2))
    with s.block("classifier", "head", "dense"):
        s.add("flatten", "flatten")
        s.add("dense", "fc1", units=4096, activation="relu")
        s.add("dense", "fc2", units=4096, activation="relu")
        s.add("dense", "predictions", units=1000, activation="softmax")
    return Network("vgg16", "VGG-16", (224, 224, 3), tuple(s.layers), tuple(s.blocks),
                   _paper("simonyan2014", "vgg16"))


# ------------------------------------------------------------------------------ registry

# The networks of the Architectures page, in history order.
BUILDERS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "googlenet": googlenet,
    **{f"resnet{d}": functools.partial(resnet, d) for d in RESNET_UNITS},
}
# Networks the page compares against but does not list.
OTHER_BUILDERS = {"vgg16": vgg16}


@functools.lru_cache(maxsize=16)
def network(key: str) -> Network:
    """A network by key ("lenet5", "alexnet", "googlenet", "resnet18" ... "resnet152",
    "vgg16")."""
    builders = BUILDERS | OTHER_BUILDERS
    if key not in builders:
        raise SpecError(f"unknown network {key!r}; known: {', '.join(builders)}")
    return builders[key]()


def all_networks() -> list[Network]:
    """LeNet-5 -> AlexNet -> GoogLeNet -> ResNet-18 ... ResNet-152, in history order."""
    return [network(key) for key in BUILDERS]
