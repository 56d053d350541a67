"""LeNet-5, AlexNet, GoogLeNet and ResNet as calculator specifications, and their Keras models.

One source of truth: each network is a list of `calc.LayerSpec` (a DAG: concat and add name
their inputs) plus a grouping of those layers into blocks and stages. The calculator computes
its parameters, FLOPs and memory from that list, `calc_keras.to_keras` builds the Keras model
from the same list, and the tests check the two agree (and that `resnet(50)` has exactly the
parameters of `keras.applications.ResNet50`).

Pure Python: Keras is imported only by `Network.keras_model()`. Building never needs weights.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.spec import INPUT_NAME, LayerSpec, SpecError

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
# AlexNet's LRN (Krizhevsky et al. 2012, 3.3): k=2, n=5, alpha=1e-4, beta=0.75. TF's
# depth_radius is n // 2, and TF does not divide alpha by n (as the paper's formula).
ALEXNET_LRN = {"depth_radius": 2, "lrn_bias": 2.0, "alpha": 1e-4, "beta": 0.75}
WEIGHT_KINDS = ("conv", "dense")


@dataclass(frozen=True)
class Block:
    """A group of layers the diagram draws as one box (a stem, a module, a residual unit)."""

    name: str
    stage: str
    kind: str  # "stem" | "conv" | "dense" | "inception" | "residual" | "pool" | "head" | "aux"
    layers: tuple[str, ...]
    shortcut: str | None = None  # residual units: "identity" or "projection"


@dataclass(frozen=True)
class Paper:
    """Published facts, with where they come from."""

    year: int
    title: str
    top5_error: float | None  # the headline ILSVRC result, % (conditions in top5_note)
    top5_note: str
    # single model, 10 crops, ILSVRC-2012 validation (the comparable column; ResNet Table 3)
    single_top5_error: float | None
    single_note: str
    reported_params: str  # what the paper or the usual reference says, for the text


@dataclass(frozen=True)
class Network:
    key: str
    title: str
    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    blocks: tuple[Block, ...]
    paper: Paper
    notes: tuple[str, ...] = field(default=())  # deviations from the paper, stated on the page

    def stats(self) -> ModelStats:
        """Parameters, shapes, MACs and memory from the calculator (pure Python)."""
        return _stats(self)

    def keras_model(self):
        """The Keras model built from the same specification (no weights)."""
        from cnnlab.calc.keras_oracle import to_keras

        return to_keras(self.input_shape, list(self.layers))

    @property
    def depth(self) -> int:
        """Weight layers (conv, dense) on the longest path from input to output."""
        return weight_depth(self.layers)

    def stages(self) -> list[str]:
        return list(dict.fromkeys(block.stage for block in self.blocks))

    def stage_layers(self, stage: str) -> list[str]:
        return [name for b in self.blocks if b.stage == stage for name in b.layers]


@functools.lru_cache(maxsize=32)
def _stats(network: Network) -> ModelStats:
    return analyze(network.input_shape, network.layers)


def weight_depth(layers: tuple[LayerSpec, ...] | list[LayerSpec]) -> int:
    """Longest path counted in conv/dense layers: the "depth" papers quote (AlexNet 8, ResNet-50 50)."""
    depth: dict[str, int] = {INPUT_NAME: 0}
    previous = INPUT_NAME
    for spec in layers:
        sources = spec.inputs or (previous,)
        depth[spec.name] = max(depth[s] for s in sources) + (spec.kind in WEIGHT_KINDS)
        previous = spec.name
    return depth[previous]


class _Spec:
    """Collects layers and the block each belongs to while a builder runs."""

    def __init__(self) -> None:
        self.layers: list[LayerSpec] = []
        self.blocks: list[Block] = []
        self._open: dict | None = None

    @property
    def last(self) -> str:
        return self.layers[-1].name if self.layers else INPUT_NAME

    def add(self, kind: str, name: str, *inputs: str, **fields) -> str:
        if not name:
            raise ValueError("every architecture layer is named")
        self.layers.append(LayerSpec(kind=kind, name=name, inputs=tuple(inputs), **fields))
        if self._open is not None:
            self._open["layers"].append(name)
        return name

    def extend(self, layers: list[LayerSpec]) -> str:
        for spec in layers:
            self.layers.append(spec)
            if self._open is not None:
                self._open["layers"].append(spec.name)
        return self.last

    @contextmanager
    def block(self, name: str, stage: str, kind: str) -> Iterator[dict]:
        self._open = {"name": name, "stage": stage, "kind": kind, "layers": [], "shortcut": None}
        try:
            yield self._open
        finally:
            b = self._open
            self.blocks.append(Block(b["name"], b["stage"], b["kind"], tuple(b["layers"]),
                                     b["shortcut"]))
            self._open = None


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
    # Keras' stack1 gives the first unit of every stage a projection shortcut (conv_shortcut).
    if stride != 1 or in_channels != out_channels:
        layers += [
            LayerSpec("conv", f"{prefix}_0_conv", filters=out_channels, strides=(stride, stride),
                      use_bias=use_bias, inputs=(source,)),
            LayerSpec(name=f"{prefix}_0_bn", **bn),
        ]
        shortcut = f"{prefix}_0_bn"
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


# ------------------------------------------------------------------------------ networks

PAPERS: dict[str, Paper] = {
    "lenet5": Paper(
        1998, "LeCun et al., Gradient-based learning applied to document recognition",
        None, "no ImageNet result: LeNet-5 read 32x32 digits (0.95% test error on MNIST)",
        None, "", "about 60,000 parameters (with its sparse C3 and RBF output)"),
    "alexnet": Paper(
        2012, "Krizhevsky, Sutskever, Hinton, ImageNet classification with deep CNNs",
        15.3, "ILSVRC-2012 test, ensemble of 7 CNNs (2 pre-trained on ImageNet Fall 2011)",
        18.2, "1 CNN, 10 patches, ILSVRC-2012 validation (paper Table 2)",
        "60 million parameters"),
    "googlenet": Paper(
        2014, "Szegedy et al., Going deeper with convolutions",
        6.67, "ILSVRC-2014 test, ensemble of 7 models, 144 crops",
        9.15, "1 model, 10 crops, ILSVRC-2012 validation (paper Table 3)",
        "about 6.8 million parameters (Table 1), 1.5 billion multiply-adds"),
}
_RESNET_SINGLE = {34: 7.46, 50: 6.71, 101: 6.05, 152: 5.71}  # He et al. 2015, Table 3 (10-crop)
_RESNET_MADDS = {18: "1.8", 34: "3.6", 50: "3.8", 101: "7.6", 152: "11.3"}  # Table 1, x10^9


def _resnet_paper(depth: int) -> Paper:
    single = _RESNET_SINGLE.get(depth)
    return Paper(
        2015, "He, Zhang, Ren, Sun, Deep residual learning for image recognition",
        # The winning entry was an ensemble; the paper attributes it to ResNet-152 (Table 5).
        3.57 if depth == 152 else None,
        ("ILSVRC-2015 test, ensemble of 6 models of different depth (2 of them ResNet-152)"
         if depth == 152 else "the ILSVRC-2015 entry was an ensemble led by ResNet-152"),
        single,
        (f"ResNet-{depth}, 10 crops, ILSVRC-2012 validation (paper Table 3)" if single else
         "the paper gives ResNet-18 only a top-1 error (27.88%, Table 2)"),
        f"{_RESNET_MADDS[depth]} billion FLOPs (multiply-adds, Table 1)")


def lenet5() -> Network:
    """LeNet-5 (LeCun et al. 1998) on 32x32 grey images, 10 classes.

    Deviations: C3 connects to all 6 maps (the paper wires each of its 16 maps to a subset),
    S2/S4 are plain average pools (the paper's have a trainable gain and bias), and the
    output is a softmax dense layer (the paper's is an RBF layer).
    """
    s = _Spec()
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
                   PAPERS["lenet5"], notes=(
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
    s = _Spec()
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
    return Network("alexnet", "AlexNet", (227, 227, 3), tuple(s.layers), tuple(s.blocks),
                   PAPERS["alexnet"], notes=(
                       "Input 227x227: the paper says 224, but 11x11 kernels at stride 4 give "
                       "its 55x55 maps only from 227.",))


def googlenet(aux: bool = False) -> Network:
    """GoogLeNet / Inception v1 (Szegedy et al. 2014, Table 1) on 224x224x3.

    aux=True adds the two auxiliary classifiers on 4a and 4d (5x5/3 average pool, 1x1 conv
    128, dense 1024, dropout 0.7, softmax 1000). The calculator's spec has one output, so
    the model's output is the three softmax vectors concatenated: [main, aux 4a, aux 4d],
    3000 values, each 1000-slice a distribution.
    """
    s = _Spec()
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
                   PAPERS["googlenet"], notes=notes)


def _aux_head(s: _Spec, prefix: str, source: str) -> str:
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
    s = _Spec()
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
                block["shortcut"] = ("projection" if any(x.name == f"{name}_0_conv" for x in layers)
                                     else "identity")
            channels = 4 * filters if bottleneck else filters
    with s.block("head", "head", "head"):
        s.add("globalavgpool", "avg_pool")
        s.add("dense", "predictions", units=1000, activation="softmax")
    suffix = "" if conv_bias else " (no conv bias)"
    return Network(f"resnet{depth}" + ("" if conv_bias else "_nobias"), f"ResNet-{depth}{suffix}",
                   (224, 224, 3), tuple(s.layers), tuple(s.blocks), _resnet_paper(depth),
                   notes=("Keras' layout: conv biases before BatchNormalization (redundant, "
                          "but they are in keras.applications.ResNet50's 25,636,712).",))


# ------------------------------------------------------------------------------ registry

BUILDERS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "googlenet": googlenet,
    **{f"resnet{d}": functools.partial(resnet, d) for d in RESNET_UNITS},
}


@functools.lru_cache(maxsize=16)
def network(key: str) -> Network:
    """A network by key ("lenet5", "alexnet", "googlenet", "resnet18" ... "resnet152")."""
    if key not in BUILDERS:
        raise SpecError(f"unknown network {key!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[key]()


def all_networks() -> list[Network]:
    """LeNet-5 -> AlexNet -> GoogLeNet -> ResNet-18 ... ResNet-152, in history order."""
    return [network(key) for key in BUILDERS]


# ------------------------------------------------------------------------------ what the page shows

MB = 10**6


def overview(networks: list[Network] | None = None) -> list[dict]:
    """One row per network: the paper's facts next to the calculator's numbers."""
    rows = []
    for net in networks or all_networks():
        stats = net.stats()
        rows.append({
            "network": net.title,
            "year": net.paper.year,
            "depth": net.depth,
            "input": "x".join(map(str, net.input_shape)),
            "parameters": stats.total_params,
            "GFLOPs": round(stats.flops / 1e9, 4),  # 2 x multiply-adds
            "G mult-adds": round(stats.total_macs / 1e9, 4),  # what the papers call FLOPs
            # every layer's output for one image, float32: what training keeps for backprop
            "activations MB/image": round(4 * stats.activation_elems / MB, 2),
            "top-5 % (1 model)": net.paper.single_top5_error,
            "top-5 % (ILSVRC)": net.paper.top5_error,
        })
    return rows


def _describe(spec: LayerSpec) -> str:
    """The layer's settings in the field's words, e.g. "64 x 7x7 /2 same, relu"."""
    k = "x".join(map(str, spec.kernel))
    stride = spec.strides or ((1, 1) if spec.kind == "conv" else spec.kernel)
    s = f" /{stride[0]}" if stride[0] != 1 else ""
    if spec.kind == "conv":
        groups = f", {spec.groups} groups" if spec.groups > 1 else ""
        act = f", {spec.activation}" if spec.activation else ""
        bias = "" if spec.use_bias else ", no bias"
        return f"{spec.filters} x {k}{s} {spec.padding}{groups}{act}{bias}"
    if spec.kind in ("maxpool", "avgpool"):
        return f"{k}{s} {spec.padding}"
    if spec.kind == "dense":
        return f"{spec.units} units" + (f", {spec.activation}" if spec.activation else "")
    if spec.kind == "dropout":
        return f"rate {spec.rate}"
    if spec.kind == "activation":
        return spec.activation or ""
    if spec.kind == "lrn":
        return (f"depth_radius {spec.depth_radius}, bias {spec.lrn_bias:g}, alpha {spec.alpha:g}, "
                f"beta {spec.beta:g}")
    if spec.kind == "zeropad":
        return "pad " + ",".join(map(str, spec.pad))
    if spec.kind in ("concat", "add"):
        return " + ".join(spec.inputs)
    return ""


def stage_table(net: Network, stage: str) -> list[dict]:
    """The layers of one stage: what each does, its output shape, parameters and MACs."""
    if stage not in net.stages():
        raise SpecError(f"{net.title} has no stage {stage!r}; stages: {', '.join(net.stages())}")
    stats = {s.name: s for s in net.stats().layers}
    specs = {s.name: s for s in net.layers}
    block_of = {name: b.name for b in net.blocks for name in b.layers}
    return [{
        "block": block_of[name],
        "layer": name,
        "kind": specs[name].kind,
        "settings": _describe(specs[name]),
        "output shape": " x ".join(map(str, stats[name].output_shape)),
        "parameters": stats[name].params,
        "MMACs": round(stats[name].macs / 1e6, 2),
    } for name in net.stage_layers(stage)]


@dataclass(frozen=True)
class BlockSummary:
    name: str
    stage: str
    kind: str
    label: str                       # short text for the box
    output_shape: tuple[int, ...]
    params: int
    macs: int
    shortcut: str | None
    shortcut_params: int             # the projection's conv + BN (0 for identity)
    branches: tuple[tuple[str, int], ...]  # inception: (branch, channels) in concat order


def block_summaries(net: Network) -> list[BlockSummary]:
    """Per block: its output, parameters, MACs, shortcut and inception branches, from the stats."""
    stats = {s.name: s for s in net.stats().layers}
    summaries = []
    for block in net.blocks:
        last = block.layers[-1]
        branches: tuple[tuple[str, int], ...] = ()
        if block.kind == "inception":
            concat = next(s for s in net.layers if s.name == last)
            branches = tuple((name.rsplit("_", 1)[-1] if not name.endswith("pool_proj")
                              else "pool", stats[name].output_shape[-1])
                             for name in concat.inputs)
        label = block.name
        if block.kind == "inception":
            label = block.name.removeprefix("inception_")
        elif block.kind == "residual":
            label = block.name.rsplit("block", 1)[-1]
        elif block.kind == "aux":
            label = "aux"
        summaries.append(BlockSummary(
            name=block.name, stage=block.stage, kind=block.kind, label=label,
            output_shape=stats[last].output_shape,
            params=sum(stats[n].params for n in block.layers),
            macs=sum(stats[n].macs for n in block.layers),
            shortcut=block.shortcut,
            shortcut_params=sum(stats[n].params for n in block.layers
                                if n.endswith(("_0_conv", "_0_bn"))),
            branches=branches,
        ))
    return summaries


def _params(net: Network, kind: str | None = None, names: tuple[str, ...] = ()) -> int:
    return sum(s.params for s in net.stats().layers
               if (kind is None or s.kind == kind) and (not names or s.name in names))


def inventions(key: str) -> list[str]:
    """What the network invented, each sentence tied to a number computed from the specs."""
    net = network(key)
    st = net.stats()
    if key == "lenet5":
        return [
            f"Convolutions with shared weights, pooling and a few dense layers: {st.total_params:,} "
            f"parameters and {st.flops / 1e6:.2f} MFLOPs read a 32x32 digit.",
            "Trained end-to-end by backpropagation, it read cheques in US banks in the late 1990s.",
        ]
    if key == "alexnet":
        lenet = network("lenet5").stats()
        fc = _params(net, names=("fc6", "fc7", "fc8"))
        split = ("conv2", "conv4", "conv5")
        ungrouped = analyze(net.input_shape, [replace(s, groups=1) for s in net.layers]).total_params
        return [
            f"Far bigger than LeNet-5: {st.total_params:,} parameters "
            f"({st.total_params / lenet.total_params:,.0f}x) and {st.flops / 1e9:.2f} GFLOPs "
            f"({st.flops / lenet.flops:,.0f}x) on 227x227 colour photos.",
            "ReLU instead of tanh in all 7 hidden weight layers: the paper reports 6x faster "
            "training to the same error on CIFAR-10.",
            "Stacked convolutions: conv3, conv4 and conv5 follow each other on 13x13 maps with "
            "no pooling in between.",
            f"Dropout (0.5) in fc6 and fc7: the three dense layers hold {fc:,} of the "
            f"{st.total_params:,} parameters ({100 * fc / st.total_params:.0f}%), where "
            "over-fitting lives.",
            "Data augmentation: random 224x224 crops of 256x256 images and their mirror images "
            "(2,048 versions of each photo), plus PCA colour noise.",
            "LRN after conv1 and conv2: 0 parameters; the paper credits it with 1.2 points "
            "lower top-5 error.",
            f"Two GPUs (3 GB each): {', '.join(split)} are split in two groups, each half reading "
            f"only its own GPU's maps, which saves {ungrouped - st.total_params:,} parameters.",
        ]
    if key.startswith("googlenet"):
        alex = network("alexnet")
        alex_fc = _params(alex, "dense")
        shape = (28, 28, 192)
        with_b = analyze(shape, inception_module("m", INPUT_NAME, *GOOGLENET_MODULES["3a"]))
        naive = analyze(shape, inception_module("m", INPUT_NAME, *GOOGLENET_MODULES["3a"],
                                                bottleneck=False))
        classifier = _params(net, "dense")
        return [
            f"Inception modules: {sum(b.kind == 'inception' for b in net.blocks)} of them; each "
            "runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side and "
            "concatenates their maps.",
            f"1x1 bottlenecks: module 3a on 28x28x192 has {with_b.total_params:,} parameters and "
            f"{with_b.flops / 1e9:.2f} GFLOPs; without its 1x1 reductions it would need "
            f"{naive.total_params:,} and {naive.flops / 1e9:.2f} GFLOPs "
            f"({naive.flops / with_b.flops:.1f}x), and its output would grow to "
            f"{naive.output_shape[-1]} channels instead of {with_b.output_shape[-1]}.",
            f"Global average pooling instead of big dense layers: the classifier has "
            f"{classifier:,} parameters, against {alex_fc:,} in AlexNet's three dense layers.",
            f"{net.depth} layers deep with {st.total_params:,} parameters: "
            f"{alex.stats().total_params / st.total_params:.1f}x fewer than AlexNet, for "
            f"{st.flops / 1e9:.2f} GFLOPs.",
            f"Two auxiliary classifiers on 4a and 4d push gradient into the middle of the network "
            f"during training: {googlenet(aux=True).stats().total_params - network('googlenet').stats().total_params:,} "
            "extra parameters, dropped at inference.",
        ]
    if key.startswith("resnet"):
        from cnnlab.calc.presets import vgg16

        units = [b for b in net.blocks if b.kind == "residual"]
        projections = [b for b in units if b.shortcut == "projection"]
        proj_params = sum(s.params for s in st.layers if s.name.endswith(("_0_conv", "_0_bn")))
        bn = [s for s in st.layers if s.kind == "batchnorm"]
        bottle = analyze((56, 56, 256), residual_unit("r", INPUT_NAME, 256, 64))
        basic = analyze((56, 56, 256), residual_unit("r", INPUT_NAME, 256, 256, bottleneck=False))
        vgg = analyze(*vgg16())
        return [
            f"Skip connections: each of the {len(units)} residual units adds its input to its "
            f"output, y = F(x) + x. {len(units) - len(projections)} use the input itself (0 "
            f"parameters), {len(projections)} a 1x1 projection where the shape changes "
            f"({proj_params:,} parameters).",
            "Residual learning: a unit only learns the change F(x) = H(x) - x. Without shortcuts "
            "the paper's plain 34-layer net was worse than its 18-layer one (28.54% vs 27.94% "
            "top-1 error); with them ResNet-34 beat ResNet-18 (25.03% vs 27.88%).",
            f"Batch normalization after every convolution: {len(bn)} BN layers, "
            f"{sum(s.params for s in bn):,} parameters ({sum(s.non_trainable_params for s in bn):,} "
            "of them moving statistics, not trained).",
            f"The bottleneck unit (ResNet-50 and deeper): 1x1 256->64, 3x3 on 64, 1x1 64->256 has "
            f"{bottle.total_params:,} parameters and {bottle.flops / 1e9:.2f} GFLOPs on 56x56 maps; "
            f"two 3x3 convolutions on 256 channels would have {basic.total_params:,} and "
            f"{basic.flops / 1e9:.2f} ({basic.total_params / bottle.total_params:.1f}x).",
            f"Why {net.depth} layers train: through the additions the gradient reaches the first "
            f"layers unchanged (d(x + F(x))/dx = 1 + dF/dx). ResNet-{net.depth} needs "
            f"{st.flops / 1e9:.1f} GFLOPs, VGG-16 (16 layers) {vgg.flops / 1e9:.1f}.",
        ]
    raise SpecError(f"unknown network {key!r}")
