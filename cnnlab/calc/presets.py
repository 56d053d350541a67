"""Ready-made networks for the calculator, and the calculator's configuration as a URL
query string (so a lecturer can bookmark a preset and a student open the same view; a long
layer list travels packed, as `cnnlab.calc.bookmark` says).

`PRESETS[name] -> (input_shape, [LayerSpec, ...])`. Each count is checked against Keras in
tests/test_calc_keras.py (VGG16 against `keras.applications.VGG16(weights=None)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cnnlab.calc import bookmark
from cnnlab.calc.analysis import analyze
from cnnlab.calc.grammar import (
    format_layer,
    format_layers_text,
    parse_input_shape,
    parse_layer,
    parse_layers_text,
    where_text,
)
from cnnlab.calc.memory import DTYPES, OPTIMIZER_SLOTS
from cnnlab.calc.spec import (
    MAX_BATCH,
    MAX_GPU_GB,
    MAX_LAYERS,
    MIN_GPU_GB,
    LayerSpec,
    LimitError,
    SpecError,
    shown,
)
from cnnlab.nets.builders import alexnet as alexnet_network
from cnnlab.nets.builders import lenet5 as lenet5_network
from cnnlab.nets.builders import vgg16 as vgg16_network


def _conv(filters: int, kernel: int, stride: int = 1, padding: str = "valid",
          activation: str | None = "relu", **kw) -> LayerSpec:
    return LayerSpec("conv", filters=filters, kernel=(kernel, kernel), strides=(stride, stride),
                     padding=padding, activation=activation, **kw)


def _pool(kind: str, size: int, stride: int | None = None) -> LayerSpec:
    stride = stride or size
    return LayerSpec(kind, kernel=(size, size), strides=(stride, stride))


def _canonical(layers: Sequence[LayerSpec]) -> list[LayerSpec]:
    """The layers as the URL and the table give them back (defaults spelled out), so a
    bookmarked preset is recognised as that preset."""
    return [parse_layer(format_layer(spec)) for spec in layers]


def seed_exercise() -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """The seed's exercise 2: 200x300 RGB, three 3x3 stride-2 SAME convs, 100/200/400 maps.
    903,400 parameters (2,800 + 180,200 + 720,400)."""
    return (200, 300, 3), [LayerSpec("conv", filters=f, kernel=(3, 3), strides=(2, 2),
                                     padding="same") for f in (100, 200, 400)]


def lenet5() -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """LeNet-5 (LeCun et al., 1998), the Architectures page's spec: tanh, average pooling,
    C5 as a 5x5 conv to 120 maps. 61,706 parameters."""
    net = lenet5_network()
    return net.input_shape, _canonical(net.layers)


def alexnet() -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """AlexNet (Krizhevsky et al., 2012), the Architectures page's spec: 227x227 input, LRN
    after conv1 and conv2, conv2/4/5 split in two groups (the paper's two GPUs).
    60,965,224 parameters."""
    net = alexnet_network()
    return net.input_shape, _canonical(net.layers)


def seed_mnist_cnn() -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """The seed's exercise 7 model, layer for layer. 225,034 parameters."""
    return (28, 28, 1), [
        _conv(32, 3), _pool("maxpool", 2),  # 26x26x32 -> 13x13x32
        _conv(64, 3), _pool("maxpool", 2),  # 11x11x64 -> 5x5x64
        LayerSpec("flatten"),               # 1600
        LayerSpec("dense", units=128, activation="relu"),
        LayerSpec("dense", units=10, activation="softmax"),
    ]


def vgg16() -> tuple[tuple[int, int, int], list[LayerSpec]]:
    """VGG16 (Simonyan & Zisserman, 2014) as keras.applications.VGG16: 138,357,544
    parameters."""
    net = vgg16_network()
    return net.input_shape, list(net.layers)


PRESETS: dict[str, tuple[tuple[int, int, int], list[LayerSpec]]] = {
    "seed exercise": seed_exercise(),
    "LeNet-5": lenet5(),
    "AlexNet": alexnet(),
    "seed MNIST CNN": seed_mnist_cnn(),
    "VGG16": vgg16(),
}
# The batch each preset's source trained with (the seed's exercise asks about 50).
PRESET_BATCH: dict[str, int] = {"seed exercise": 50, "LeNet-5": 32, "AlexNet": 128,
                                "seed MNIST CNN": 64, "VGG16": 256}
PRESET_NOTES: dict[str, str] = {
    "seed exercise": "The seed's exercise 2: 200x300 RGB images, three 3x3 convolutions with "
                     "stride 2 and SAME padding, 100 / 200 / 400 feature maps, batch 50.",
    "LeNet-5": "LeCun et al. 1998: the first CNN to read digits (cheques) in production.",
    "AlexNet": "Krizhevsky et al. 2012: LRN, and conv2/4/5 split in two groups, one per GPU "
               "(60,965,224 parameters, as Caffe's bvlc_alexnet).",
    "seed MNIST CNN": "The seed's exercise 7 model, trained on the Train page.",
    "VGG16": "Simonyan & Zisserman 2014: only 3x3 convolutions, 16 weight layers; "
             "as keras.applications.VGG16.",
}
DEFAULT_PRESET = "seed exercise"


@dataclass(frozen=True)
class CalcConfig:
    """Everything the calculator page shows, as one value (and one URL)."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    batch: int = 1
    dtype: str = "float32"
    optimizer: str = "adam"
    gpu_gb: float = 16.0  # decimal GB
    accum_steps: int = 1
    preset: str | None = None  # the preset it was loaded from, if unchanged
    extra: dict[str, str] = field(default_factory=dict, compare=False)


def preset_config(name: str, **overrides) -> CalcConfig:
    """The configuration of preset `name` (its usual batch; other settings default)."""
    if name not in PRESETS:
        raise SpecError(f"preset: unknown preset {shown(name)}; known: {', '.join(PRESETS)}")
    input_shape, layers = PRESETS[name]
    settings = {"batch": PRESET_BATCH[name], "preset": name} | overrides
    return CalcConfig(input_shape, tuple(layers), **settings)


def to_query(config: CalcConfig) -> dict[str, str | list[str]]:
    """The URL query parameters of `config`: layers as repeated `layer=` in the CLI grammar,
    or, past `bookmark.PACK_ABOVE` characters, as one `packed=` value. (The page checks
    `bookmark.too_large` before writing it.)"""
    query: dict[str, str | list[str]] = {}
    if config.preset:
        query["preset"] = config.preset
    query["input"] = "x".join(map(str, config.input_shape))
    query["layer"] = [format_layer(spec) for spec in config.layers]
    if bookmark.query_chars(query) > bookmark.PACK_ABOVE:
        del query["layer"]
        query[bookmark.PACKED_KEY] = bookmark.pack(format_layers_text(config.layers))
    query["batch"] = str(config.batch)
    query["dtype"] = config.dtype
    query["optimizer"] = config.optimizer
    query["gpu"] = f"{config.gpu_gb:g}"
    if config.accum_steps != 1:
        query["accum"] = str(config.accum_steps)
    return query


def _one(query: Mapping[str, str | Sequence[str]], key: str) -> str | None:
    value = query.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value[-1] if value else None


def from_query(query: Mapping[str, str | Sequence[str]]) -> CalcConfig:
    """The configuration in URL query parameters; raises SpecError (one line) if bad,
    including a network the calculator refuses (`analyze`'s checks and limits).

    `?preset=VGG16` alone opens a preset; `layer=` (or `packed=`) and `input=` override its
    network.
    """
    preset = _one(query, "preset")
    base = preset_config(preset if preset is not None else DEFAULT_PRESET)
    layers_text = query.get("layer")
    if isinstance(layers_text, str):
        layers_text = [layers_text]
    packed = _one(query, bookmark.PACKED_KEY)
    if packed is not None and layers_text:
        raise SpecError(f"layer/{bookmark.PACKED_KEY}: give the layers one way, not both")
    if len(layers_text or ()) > MAX_LAYERS:
        raise LimitError(f"layer: {len(layers_text):,} layers, more than the calculator's "
                         f"limit of {MAX_LAYERS:,}")
    input_text = _one(query, "input")
    input_shape = parse_input_shape(input_text) if input_text else base.input_shape
    if packed is not None:
        layers = tuple(parse_layers_text(bookmark.unpack(packed)))
    else:
        layers = tuple(parse_layer(text, where_text(f"layer {i}", text))
                       for i, text in enumerate(layers_text or [], start=1)) or base.layers
    batch_text, gpu_text, accum_text = _one(query, "batch"), _one(query, "gpu"), _one(query, "accum")
    try:
        batch = int(batch_text) if batch_text else base.batch
        accum = int(accum_text) if accum_text else 1
    except ValueError:  # not an integer, or past Python's 4,300 digits
        raise SpecError(f"batch/accum: must be positive integers, got {shown(batch_text)}, "
                        f"{shown(accum_text)}") from None
    try:
        gpu_gb = float(gpu_text) if gpu_text else base.gpu_gb
    except ValueError:
        raise SpecError(f"gpu: must be a number of GB, got {shown(gpu_text)}") from None
    dtype = _one(query, "dtype") or base.dtype
    optimizer = _one(query, "optimizer") or base.optimizer
    if dtype not in DTYPES:
        raise SpecError(f"dtype: must be one of {', '.join(DTYPES)}, got {shown(dtype)}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise SpecError(f"optimizer: must be one of {', '.join(OPTIMIZER_SLOTS)}, "
                        f"got {shown(optimizer)}")
    # Bounds keep every value inside what the page's number inputs can show.
    if not 1 <= batch <= MAX_BATCH or not 1 <= accum <= batch:
        raise SpecError(f"batch/accum: batch must be 1..{MAX_BATCH:,} and accum 1..batch, "
                        f"got {shown(batch)}, {shown(accum)}")
    if not MIN_GPU_GB <= gpu_gb <= MAX_GPU_GB:
        raise SpecError(f"gpu: must be between {MIN_GPU_GB} and {MAX_GPU_GB:,} GB, "
                        f"got {shown(gpu_text)}")
    analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer,
            accum_steps=accum)  # a network the calculator refuses is a bad link
    unchanged = preset is not None and layers == base.layers and input_shape == base.input_shape
    return CalcConfig(input_shape, layers, batch, dtype, optimizer, gpu_gb, accum,
                      preset if unchanged else None)


def spec_text(config: CalcConfig) -> str:
    """The configuration as a text file: its settings as `#` comments, then one layer per line
    (what the page's *Edit as text* box and `parse_layers_text` read; comments are skipped).
    The page offers it when a network is too large to bookmark."""
    settings = (f"input {'x'.join(map(str, config.input_shape))}, batch {config.batch}, "
                f"accum {config.accum_steps}, dtype {config.dtype}, optimizer "
                f"{config.optimizer}, gpu {config.gpu_gb:g} GB")
    return (f"# cnnlab calculator: {settings}\n# {len(config.layers):,} layers, one per line\n"
            f"{format_layers_text(config.layers)}\n")


def match_preset(input_shape: Sequence[int], layers: Sequence[LayerSpec]) -> str | None:
    """The name of the preset that is exactly this network, if any."""
    # Compared in the text grammar: a default left as None in a spec and the same value
    # spelled out by the URL or the table are the same network.
    text = [format_layer(spec) for spec in layers]
    for name, (shape, preset_layers) in PRESETS.items():
        if tuple(input_shape) == shape and text == [format_layer(s) for s in preset_layers]:
            return name
    return None


def cli_command(config: CalcConfig) -> str:
    """The `python -m cnnlab calc` command line that prints the same numbers."""
    parts = ["python -m cnnlab calc", f"--input {'x'.join(map(str, config.input_shape))}"]
    parts += [f"--layer '{format_layer(spec)}'" if any(c in format_layer(spec) for c in " ,")
              else f"--layer {format_layer(spec)}" for spec in config.layers]
    parts.append(f"--batch {config.batch}")
    if config.dtype != "float32":
        parts.append(f"--dtype {config.dtype}")
    if config.optimizer != "adam":
        parts.append(f"--optimizer {config.optimizer}")
    if config.accum_steps != 1:
        parts.append(f"--accum {config.accum_steps}")
    parts.append(f"--gpu {config.gpu_gb:g}")
    return " \\\n    ".join(parts)
