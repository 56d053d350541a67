"""The CNN calculator: output shapes, parameters, multiply-accumulates, receptive fields
and memory of a layer stack, exact to what Keras builds. Pure Python (no TensorFlow).

The pipeline is `LayerSpec -> LayerStats -> ModelStats` (as in torchinfo): `analyze`
walks the specs once, in order, and every later question (memory at another batch
size, the largest batch that fits a GPU, what-ifs) reuses that walk.

Conventions (also shown on the calculator page):

* Shapes and parameters follow Keras 3 exactly: Conv2D ``valid`` gives
  ``floor((n - k) / s) + 1``, ``same`` gives ``ceil(n / s)``; pools likewise with the
  pool size as kernel; BatchNormalization has 4 parameters per channel, 2 trainable
  (gamma, beta) and 2 not (moving mean and variance). ``tests/test_calc_keras.py``
  checks all of it against ``keras.Model.count_params()`` and the layers' output shapes.
* MACs (multiply-accumulates) count the weight layers only, Conv2D and Dense, for one
  instance: ``H_out * W_out * C_out * kh * kw * C_in / groups`` and ``N_in * units``.
  Bias additions, pooling, normalisation and activations are not counted.
  **FLOPs = 2 x MACs** (one multiply and one add per MAC).
* Sizes are decimal, as in the seed exercise: 1 MB = 10**6 bytes, 1 GB = 10**9 bytes.

Memory model (an estimate of what the tensors need; framework overhead such as the
CUDA context, cuDNN workspaces and allocator fragmentation is not included):

* Parameters are float32 (4 bytes) in both dtypes: mixed precision keeps 32-bit
  master weights. Activations take 4 bytes in float32 and 2 in ``mixed_float16``.
  The input images are fed as float32 (4 bytes) in both.
* Predicting one instance keeps only the tensors still needed: a layer's inputs, its
  output and any earlier output a later layer reads (a skip connection). For a plain
  stack this is the largest pair of consecutive activations. Inference memory is that
  peak plus the parameters.
* Training one batch keeps every layer's output for backpropagation, times the
  batch, plus the input batch, the parameters, one gradient per trainable parameter
  and the optimizer's slots per trainable parameter: SGD 0, momentum 1, Adam 2.
* Gradient accumulation over k steps runs micro-batches of ``ceil(batch / k)``, so
  activations and input scale with the micro-batch, and adds one accumulator buffer
  per trainable parameter (as Keras' ``gradient_accumulation_steps`` does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

KINDS: tuple[str, ...] = (
    "conv", "maxpool", "avgpool", "dense", "flatten", "globalavgpool", "globalmaxpool",
    "batchnorm", "dropout", "activation", "lrn", "zeropad", "concat", "add",
)
PADDINGS = ("valid", "same")
# Activation names Keras accepts as strings (keras.activations.get).
ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "tanh",
    "elu", "selu", "gelu", "swish", "silu", "softplus", "softsign", "leaky_relu", "mish",
    "exponential",
)
DTYPES: dict[str, int] = {"float32": 4, "mixed_float16": 2}  # bytes per activation
PARAM_BYTES = 4  # parameters, gradients, optimizer slots: float32 in both dtypes
INPUT_BYTES = 4  # images are fed as float32
OPTIMIZER_SLOTS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}
MB = 10**6
GB = 10**9
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
INPUT_NAME = "input"  # the model input, usable in `inputs`


class SpecError(ValueError):
    """A bad configuration. The message is one line that names the layer and the problem."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the user describes it. Defaults follow Keras."""

    kind: str
    name: str = ""  # unique; auto-named kind + per-kind index ("conv2") when empty
    filters: int = 0  # conv: number of feature maps
    units: int = 0  # dense
    kernel: tuple[int, int] = (1, 1)  # conv kernel; pool size for pools
    strides: tuple[int, int] | None = None  # conv default (1, 1); pools default = pool size
    padding: str = "valid"  # "valid" | "same"
    use_bias: bool = True  # conv, dense
    activation: str | None = None  # fused into conv/dense; the function of "activation"
    rate: float = 0.0  # dropout
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # zeropad: top, bottom, left, right
    inputs: tuple[str, ...] = ()  # earlier layer names ("input" = the model input); () = previous
    groups: int = 1  # conv: grouped convolution (AlexNet's two GPU halves)
    depth_radius: int = 5  # lrn, as tf.nn.local_response_normalization
    lrn_bias: float = 1.0  # lrn: k in  x / (k + alpha * sum(x^2)) ** beta
    alpha: float = 1.0  # lrn
    beta: float = 0.5  # lrn


@dataclass(frozen=True)
class LayerStats:
    """What one layer does to one instance."""

    name: str
    kind: str
    inputs: tuple[str, ...]  # resolved input names
    output_shape: tuple[int, ...]  # (H, W, C) or (N,)
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int  # multiply-accumulates for one instance; FLOPs = 2 * macs
    activation_elems: int  # elements of the output for one instance
    receptive_field: int | None  # max(h, w) of the input window one output sees; None: all
    receptive_field_hw: tuple[int, int] | None
    jump: tuple[int, int] | None  # input pixels between neighbouring outputs (product of strides)

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one configuration of batch, dtype, optimizer and accumulation steps."""

    batch: int
    dtype: str
    optimizer: str
    accum_steps: int
    micro_batch: int
    params_bytes: int  # all parameters, float32
    inference_activation_bytes: int  # peak of live activations, one instance
    inference_bytes: int  # one instance: that peak + parameters
    activations_bytes: int  # every layer's output kept for backprop, x micro-batch
    input_batch_bytes: int  # the (micro-)batch of input images, float32
    gradients_bytes: int  # one float32 gradient per trainable parameter
    optimizer_bytes: int  # optimizer slots per trainable parameter
    accumulator_bytes: int  # gradient accumulation buffer (0 without accumulation)
    training_bytes: int  # the sum of the five terms above plus parameters
    per_sample_bytes: int  # training bytes that grow with each sample of the micro-batch
    fixed_bytes: int  # training bytes that do not depend on the batch

    @property
    def before_gradients_bytes(self) -> int:
        """Activations + input batch + parameters: the seed exercise's "about 566 MB"."""
        return self.activations_bytes + self.input_batch_bytes + self.params_bytes

    def training_terms(self) -> list[tuple[str, int, str]]:
        """(term, bytes, how it is computed), in the order the seed exercise adds them."""
        act = "2-byte" if self.dtype == "mixed_float16" else "4-byte"
        samples = (f"{self.micro_batch} samples (the micro-batch)" if self.accum_steps > 1
                   else f"{self.batch} samples")
        slots = OPTIMIZER_SLOTS[self.optimizer]
        return [
            ("activations", self.activations_bytes,
             f"every layer's output kept for backprop, {act} values, x {samples}"),
            ("input batch", self.input_batch_bytes, f"the input images of {samples}, float32"),
            ("parameters", self.params_bytes, "every parameter, float32"),
            ("gradients", self.gradients_bytes, "one float32 gradient per trainable parameter"),
            ("optimizer slots", self.optimizer_bytes,
             f"{self.optimizer}: {slots} float32 slot(s) per trainable parameter"),
            ("accumulator", self.accumulator_bytes,
             f"gradient accumulation over {self.accum_steps} steps: one buffer per trainable "
             "parameter" if self.accum_steps > 1 else "no gradient accumulation"),
        ]


@dataclass(frozen=True)
class ModelStats:
    """Per-layer stats, totals and the memory estimate of one network."""

    input_shape: tuple[int, int, int]
    layers: list[LayerStats]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    activation_elems: int  # sum of every layer's output, one instance
    memory: MemoryEstimate
    # dtype -> peak bytes of live activations predicting one instance (see _live_peak)
    _inference_peak: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.total_macs

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def params_bytes(self) -> int:
        return self.memory.params_bytes

    @property
    def inference_bytes(self) -> int:
        return self.memory.inference_bytes

    @property
    def training_bytes(self) -> int:
        return self.memory.training_bytes

    def at(self, *, batch: int | None = None, dtype: str | None = None,
           optimizer: str | None = None, accum_steps: int | None = None) -> ModelStats:
        """The same network with another memory configuration (no layer walk again)."""
        m = self.memory
        memory = _memory(self, batch if batch is not None else m.batch,
                         dtype if dtype is not None else m.dtype,
                         optimizer if optimizer is not None else m.optimizer,
                         accum_steps if accum_steps is not None else m.accum_steps)
        return replace(self, memory=memory)

    def max_batch(self, gpu_bytes: float) -> int:
        """The largest batch (no accumulation) whose training memory fits `gpu_bytes`; 0 if none."""
        m = self.at(batch=1, accum_steps=1).memory
        room = gpu_bytes - m.fixed_bytes
        if room < m.per_sample_bytes:
            return 0
        return int(room // m.per_sample_bytes)


# ----------------------------------------------------------------------------- checks


def _where(index: int, name: str) -> str:
    return f"layer {index} ({name})" if name else f"layer {index}"


class _LazyWhere:
    """'layer 3 (conv2)', formatted only if a message needs it (analyze's hot loop)."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str) -> None:
        self.index, self.name = index, name

    def __str__(self) -> str:
        return _where(self.index, self.name)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pair(value: object, what: str, where: str, *, allow_zero: bool = False) -> tuple[int, int]:
    """An (h, w) pair of positive integers from an int or a 2-sequence."""
    if _is_int(value):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(map(_is_int, value)):
        raise SpecError(f"{where}: {what} must be an integer or a pair of integers, got {value!r}")
    low = 0 if allow_zero else 1
    if min(value) < low:
        text = "x".join(map(str, value))
        raise SpecError(f"{where}: {what} must be {'non-negative' if allow_zero else 'positive'}, "
                        f"got {text}")
    return int(value[0]), int(value[1])


def _positive(value: object, what: str, where: str) -> int:
    if not _is_int(value) or value < 1:
        raise SpecError(f"{where}: {what} must be a positive integer, got {value!r}")
    return int(value)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(H, W, C) of positive integers, or SpecError."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(_is_int(v) and v > 0 for v in shape):
        raise SpecError(f"input: shape must be three positive integers H x W x C, got {shape!r}")
    return shape  # type: ignore[return-value]


def _spatial(shape: tuple[int, ...], where: str, kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError(f"{where}: {kind} needs an H x W x C input, but its input is a vector "
                        f"of {shape[0]} (after a flatten, dense or global pooling layer)")
    return shape  # type: ignore[return-value]


def _window_out(n: int, k: int, s: int, padding: str, where: str, what: str,
                hw: tuple[tuple[int, int], tuple[int, int]]) -> int:
    """Keras' output length of a sliding window (conv or pool) along one axis."""
    if padding == "same":
        return -(-n // s)
    if k > n:
        (kh, kw), (ih, iw) = hw
        raise SpecError(f"{where}: {what} {kh}x{kw} is larger than its {ih}x{iw} VALID input")
    return (n - k) // s + 1


# ----------------------------------------------------------------------------- analysis


def _auto_names(layers: Sequence[LayerSpec]) -> list[str]:
    """Fill empty names with kind + per-kind index, skipping names the user took."""
    taken = {spec.name for spec in layers if isinstance(spec, LayerSpec) and spec.name}
    counters: dict[str, int] = {}
    names = []
    for spec in layers:
        if isinstance(spec, LayerSpec) and spec.name:
            names.append(spec.name)
            continue
        kind = spec.kind if isinstance(spec, LayerSpec) else "layer"
        while True:
            counters[kind] = counters.get(kind, 0) + 1
            candidate = f"{kind}{counters[kind]}"
            if candidate not in taken:
                break
        taken.add(candidate)
        names.append(candidate)
    return names


def resolve(layers: Sequence[LayerSpec]) -> list[LayerSpec]:
    """The specs with every name and `inputs` filled in, and the graph checked.

    Every name is unique; inputs name earlier layers (or "input"); concat and add take
    two or more inputs, other layers exactly one; every layer but the last feeds a later
    one (Keras would silently drop an unused branch, so the counts would disagree).
    """
    return [replace(spec, name=name, inputs=inputs) for spec, name, inputs in _resolve(layers)]


def _resolve(layers: Sequence[LayerSpec]) -> list[tuple[LayerSpec, str, tuple[str, ...]]]:
    """(spec, name, inputs) per layer, checked as `resolve` describes (no copies: fast)."""
    names = _auto_names(layers)
    seen: dict[str, int] = {}
    resolved: list[tuple[LayerSpec, str, tuple[str, ...]]] = []
    previous = INPUT_NAME
    for index, (spec, name) in enumerate(zip(layers, names, strict=True), start=1):
        if not isinstance(spec, LayerSpec):
            raise SpecError(f"layer {index}: expected a LayerSpec, got {type(spec).__name__}")
        if spec.kind not in KINDS:
            raise SpecError(f"{_where(index, name)}: unknown layer kind {spec.kind!r}; "
                            f"known: {', '.join(KINDS)}")
        if not isinstance(name, str) or not _NAME_RE.match(name) or name == INPUT_NAME:
            raise SpecError(f"{_where(index, name)}: name {name!r} must start with a letter or "
                            f"_ and use only letters, digits, _ . - (and not be {INPUT_NAME!r})")
        if name in seen:
            raise SpecError(f"{_where(index, name)}: name {name!r} is already used by layer "
                            f"{seen[name]}")
        inputs = tuple(spec.inputs) if spec.inputs else (previous,)
        for source in inputs:
            if source != INPUT_NAME and source not in seen:
                raise SpecError(f"{_where(index, name)}: input {source!r} is not the name of "
                                "an earlier layer")
        if len(inputs) > 1 and len(set(inputs)) != len(inputs):
            raise SpecError(f"{_where(index, name)}: the same input is listed twice in "
                            f"{', '.join(inputs)}")
        if spec.kind in ("concat", "add"):
            if len(inputs) < 2:
                raise SpecError(f"{_where(index, name)}: {spec.kind} needs two or more inputs, "
                                f"got {len(inputs)}")
        elif len(inputs) != 1:
            raise SpecError(f"{_where(index, name)}: {spec.kind} takes one input, got "
                            f"{len(inputs)}")
        seen[name] = index
        resolved.append((spec, name, inputs))
        previous = name
    used = {source for _, _, inputs in resolved for source in inputs}
    for index, (_, name, _) in enumerate(resolved[:-1], start=1):
        if name not in used:
            raise SpecError(f"{_where(index, name)}: its output is never used "
                            "(only the last layer may feed nothing)")
    return resolved


def _layer(spec: LayerSpec, where: str, in_shapes: list[tuple[int, ...]],
           in_rf: list[tuple[tuple[int, int], tuple[int, int]] | None]):
    """(output shape, trainable, non-trainable, macs, rf (size, jump) or None) of one layer."""
    kind = spec.kind
    shape = in_shapes[0]
    rf = in_rf[0]
    if kind in ("conv", "dense") and spec.activation is not None \
            and spec.activation not in ACTIVATIONS:
        raise SpecError(f"{where}: unknown activation {spec.activation!r}")
    if kind == "conv":
        h, w, c = _spatial(shape, where, "conv")
        filters = _positive(spec.filters, "filters", where)
        kh, kw = _pair(spec.kernel, "kernel", where)
        sh, sw = _pair(spec.strides if spec.strides is not None else (1, 1), "stride", where)
        groups = _positive(spec.groups, "groups", where)
        if spec.padding not in PADDINGS:
            raise SpecError(f"{where}: padding must be 'valid' or 'same', got {spec.padding!r}")
        if c % groups or filters % groups:
            raise SpecError(f"{where}: groups={groups} must divide both the {c} input channels "
                            f"and the {filters} filters")
        hw = ((kh, kw), (h, w))
        oh = _window_out(h, kh, sh, spec.padding, where, "kernel", hw)
        ow = _window_out(w, kw, sw, spec.padding, where, "kernel", hw)
        weights = kh * kw * (c // groups) * filters
        trainable = weights + (filters if spec.use_bias else 0)
        macs = oh * ow * weights
        return (oh, ow, filters), trainable, 0, macs, _grow(rf, (kh, kw), (sh, sw))
    if kind in ("maxpool", "avgpool"):
        h, w, c = _spatial(shape, where, kind)
        kh, kw = _pair(spec.kernel, "pool size", where)
        sh, sw = _pair(spec.strides if spec.strides is not None else (kh, kw), "stride", where)
        if spec.padding not in PADDINGS:
            raise SpecError(f"{where}: padding must be 'valid' or 'same', got {spec.padding!r}")
        hw = ((kh, kw), (h, w))
        oh = _window_out(h, kh, sh, spec.padding, where, "pool size", hw)
        ow = _window_out(w, kw, sw, spec.padding, where, "pool size", hw)
        return (oh, ow, c), 0, 0, 0, _grow(rf, (kh, kw), (sh, sw))
    if kind == "dense":
        units = _positive(spec.units, "units", where)
        n_in = shape[-1]
        positions = math.prod(shape[:-1])  # Keras' Dense acts on the last axis
        trainable = n_in * units + (units if spec.use_bias else 0)
        return (*shape[:-1], units), trainable, 0, positions * n_in * units, \
            (rf if len(shape) == 3 else None)
    if kind == "flatten":
        return (math.prod(shape),), 0, 0, 0, None
    if kind in ("globalavgpool", "globalmaxpool"):
        _spatial(shape, where, kind)
        return (shape[-1],), 0, 0, 0, None
    if kind == "batchnorm":
        channels = shape[-1]
        return shape, 2 * channels, 2 * channels, 0, rf
    if kind == "dropout":
        if isinstance(spec.rate, bool) or not isinstance(spec.rate, int | float) \
                or not 0 <= spec.rate < 1:
            raise SpecError(f"{where}: dropout rate must be a number in [0, 1), got {spec.rate!r}")
        return shape, 0, 0, 0, rf
    if kind == "activation":
        if spec.activation not in ACTIVATIONS:
            raise SpecError(f"{where}: unknown activation {spec.activation!r}; "
                            f"known: {', '.join(ACTIVATIONS)}")
        return shape, 0, 0, 0, rf
    if kind == "lrn":
        _spatial(shape, where, "lrn")
        if not _is_int(spec.depth_radius) or spec.depth_radius < 0:
            raise SpecError(f"{where}: depth_radius must be a non-negative integer, "
                            f"got {spec.depth_radius!r}")
        for what in ("lrn_bias", "alpha", "beta"):
            value = getattr(spec, what)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SpecError(f"{where}: {what} must be a non-negative number, got {value!r}")
        return shape, 0, 0, 0, rf
    if kind == "zeropad":
        h, w, c = _spatial(shape, where, "zeropad")
        if not isinstance(spec.pad, tuple | list) or len(spec.pad) != 4 \
                or not all(_is_int(p) and p >= 0 for p in spec.pad):
            raise SpecError(f"{where}: pad must be four non-negative integers top, bottom, "
                            f"left, right, got {spec.pad!r}")
        top, bottom, left, right = spec.pad
        return (h + top + bottom, w + left + right, c), 0, 0, 0, rf
    if kind == "concat":
        ranks = {len(s) for s in in_shapes}
        if len(ranks) != 1 or any(s[:-1] != shape[:-1] for s in in_shapes):
            listed = ", ".join("x".join(map(str, s)) for s in in_shapes)
            raise SpecError(f"{where}: concat needs inputs that differ only in channels, "
                            f"got {listed}")
        return (*shape[:-1], sum(s[-1] for s in in_shapes)), 0, 0, 0, _merge(in_rf)
    if kind == "add":
        if any(s != shape for s in in_shapes):
            listed = ", ".join("x".join(map(str, s)) for s in in_shapes)
            raise SpecError(f"{where}: add needs inputs of the same shape, got {listed}")
        return shape, 0, 0, 0, _merge(in_rf)
    raise SpecError(f"{where}: unknown layer kind {kind!r}")  # unreachable: resolve() checked


def _grow(rf, kernel: tuple[int, int], strides: tuple[int, int]):
    """Receptive field recurrence: r' = r + (k - 1) * j, j' = j * s (per axis)."""
    if rf is None:
        return None
    (rh, rw), (jh, jw) = rf
    return ((rh + (kernel[0] - 1) * jh, rw + (kernel[1] - 1) * jw),
            (jh * strides[0], jw * strides[1]))


def _merge(rfs):
    """Where branches meet, the larger receptive field and jump (the conservative bound)."""
    if any(rf is None for rf in rfs):
        return None
    return ((max(r[0][0] for r in rfs), max(r[0][1] for r in rfs)),
            (max(r[1][0] for r in rfs), max(r[1][1] for r in rfs)))


def analyze(input_shape: Sequence[int], layers: Sequence[LayerSpec], *, batch: int = 1,
            dtype: str = "float32", optimizer: str = "adam", accum_steps: int = 1) -> ModelStats:
    """Shapes, parameters, MACs, receptive fields and memory of `layers` on `input_shape`.

    Raises SpecError (one line naming the layer and the problem) for a bad configuration.
    See the module docstring for the memory model.
    """
    shape_in = check_input_shape(input_shape)
    shapes: dict[str, tuple[int, ...]] = {INPUT_NAME: shape_in}
    rfs: dict[str, object] = {INPUT_NAME: ((1, 1), (1, 1))}
    stats: list[LayerStats] = []
    for index, (spec, name, inputs) in enumerate(_resolve(layers), start=1):
        out, trainable, frozen, macs, rf = _layer(
            spec, _LazyWhere(index, name),  # type: ignore[arg-type]
            [shapes[s] for s in inputs], [rfs[s] for s in inputs])
        shapes[name] = out
        rfs[name] = rf
        # Positional: LayerStats' field order (faster than keywords in this hot loop).
        stats.append(LayerStats(
            name, spec.kind, inputs, out, trainable + frozen, trainable, frozen, macs,
            math.prod(out), max(rf[0]) if rf else None, rf[0] if rf else None,
            rf[1] if rf else None))
    model = ModelStats(
        input_shape=shape_in, layers=stats,
        total_params=sum(s.params for s in stats),
        trainable_params=sum(s.trainable_params for s in stats),
        non_trainable_params=sum(s.non_trainable_params for s in stats),
        total_macs=sum(s.macs for s in stats),
        activation_elems=sum(s.activation_elems for s in stats),
        memory=None,  # type: ignore[arg-type]  # filled just below
        _inference_peak=_live_peak(shape_in, stats),
    )
    return replace(model, memory=_memory(model, batch, dtype, optimizer, accum_steps))


def _live_peak(input_shape: tuple[int, int, int], stats: list[LayerStats]) -> dict[str, int]:
    """Peak bytes of live activations while predicting one instance, for each dtype.

    While layer i runs, its output and every earlier tensor still read by layer i or a
    later one are alive (for a plain stack: two consecutive activations). The input image
    is float32 in both dtypes, so the peak is found per dtype.
    """
    last_use: dict[str, int] = {INPUT_NAME: -1}
    for i, s in enumerate(stats):
        for source in s.inputs:
            last_use[source] = i
    input_elems = math.prod(input_shape)
    peaks = {dtype: INPUT_BYTES * input_elems for dtype in DTYPES}  # no layers: the input
    alive = 0  # elements of earlier layer outputs still needed
    sizes: dict[str, int] = {}
    for i, s in enumerate(stats):
        outputs = alive + s.activation_elems
        image = input_elems if last_use[INPUT_NAME] >= i else 0
        for dtype, act in DTYPES.items():
            peaks[dtype] = max(peaks[dtype] if i else 0, act * outputs + INPUT_BYTES * image)
        sizes[s.name] = s.activation_elems
        for source in s.inputs:
            if source != INPUT_NAME and last_use[source] == i:
                alive -= sizes[source]
        if last_use.get(s.name, -1) > i:
            alive += s.activation_elems
    return peaks


def _memory(model: ModelStats, batch: int, dtype: str, optimizer: str,
            accum_steps: int) -> MemoryEstimate:
    if not _is_int(batch) or batch < 1:
        raise SpecError(f"batch: must be a positive integer, got {batch!r}")
    if dtype not in DTYPES:
        raise SpecError(f"dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise SpecError(f"optimizer: must be one of {', '.join(OPTIMIZER_SLOTS)}, "
                        f"got {optimizer!r}")
    if not _is_int(accum_steps) or accum_steps < 1:
        raise SpecError(f"accumulation steps: must be a positive integer, got {accum_steps!r}")
    if accum_steps > batch:
        raise SpecError(f"accumulation steps: {accum_steps} is more than the batch of {batch}")
    act = DTYPES[dtype]
    micro = -(-batch // accum_steps)
    input_elems = math.prod(model.input_shape)
    params_bytes = PARAM_BYTES * model.total_params
    inference_act = model._inference_peak[dtype]
    gradients = PARAM_BYTES * model.trainable_params
    slots = PARAM_BYTES * OPTIMIZER_SLOTS[optimizer] * model.trainable_params
    accumulator = PARAM_BYTES * model.trainable_params if accum_steps > 1 else 0
    per_sample = act * model.activation_elems + INPUT_BYTES * input_elems
    fixed = params_bytes + gradients + slots + accumulator
    return MemoryEstimate(
        batch=batch, dtype=dtype, optimizer=optimizer, accum_steps=accum_steps,
        micro_batch=micro, params_bytes=params_bytes,
        inference_activation_bytes=inference_act, inference_bytes=inference_act + params_bytes,
        activations_bytes=micro * act * model.activation_elems,
        input_batch_bytes=micro * INPUT_BYTES * input_elems,
        gradients_bytes=gradients, optimizer_bytes=slots, accumulator_bytes=accumulator,
        training_bytes=fixed + micro * per_sample, per_sample_bytes=per_sample,
        fixed_bytes=fixed,
    )


# ----------------------------------------------------------------------------- text forms
#
# One grammar serves the command line, the URL query string and the page's table:
#   KIND[:POSITIONAL...][:KEY=VALUE...]
# e.g. conv:100:3:2:same, conv:256:5:1:same:act=relu:groups=2, maxpool:3:2, dense:10:act=softmax,
# dropout:0.5, lrn:2:alpha=2e-05:beta=0.75, zeropad:1, concat:in=a,b
# Positional fields follow Keras' argument order; keywords name any field.

_ALIASES = {"conv2d": "conv", "maxpool2d": "maxpool", "maxpooling2d": "maxpool",
            "avgpool2d": "avgpool", "averagepooling2d": "avgpool", "gap": "globalavgpool",
            "globalaveragepooling2d": "globalavgpool", "batchnormalization": "batchnorm",
            "bn": "batchnorm", "concatenate": "concat", "zeropadding2d": "zeropad"}
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "conv": ("filters", "kernel", "stride", "padding"),
    "maxpool": ("kernel", "stride", "padding"),
    "avgpool": ("kernel", "stride", "padding"),
    "dense": ("units",),
    "dropout": ("rate",),
    "activation": ("act",),
    "lrn": ("depth_radius",),
    "zeropad": ("pad", "pad", "pad", "pad"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "conv": ("filters", "kernel"), "maxpool": ("kernel",), "avgpool": ("kernel",),
    "dense": ("units",), "dropout": ("rate",), "activation": ("act",), "zeropad": ("pad",),
}
_COMMON_KEYS = ("name", "in")
_KEYS: dict[str, tuple[str, ...]] = {
    "conv": ("filters", "kernel", "stride", "padding", "act", "bias", "groups"),
    "maxpool": ("kernel", "stride", "padding"),
    "avgpool": ("kernel", "stride", "padding"),
    "dense": ("units", "act", "bias"),
    "dropout": ("rate",),
    "activation": ("act",),
    "lrn": ("depth_radius", "lrn_bias", "alpha", "beta"),
    "zeropad": ("pad",),
}


def _text_int(value: object, what: str, where: str, *, low: int = 1) -> int:
    """An integer >= low from 3, 3.0, '3' or a numpy integer; SpecError otherwise."""
    text = str(value).strip()
    number: int | None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    else:
        try:
            number = int(text)
        except ValueError:
            number = None
    if number is None or number < low:
        kind = "a positive" if low == 1 else "a non-negative"
        raise SpecError(f"{where}: {what} must be {kind} integer, got {text!r}")
    return int(number)


def _text_pair(value: object, what: str, where: str) -> tuple[int, int]:
    """'3' -> (3, 3); '3x5' -> (3, 5); also 3, 3.0 and (3, 5)."""
    if isinstance(value, tuple | list):
        parts: list[object] = list(value)
    elif isinstance(value, str):
        parts = [p for p in re.split(r"\s*[x×,]\s*", value.strip().lower())]
    else:
        parts = [value]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise SpecError(f"{where}: {what} must be N or NxM, got {value!r}")
    try:
        return (_text_int(parts[0], what, where), _text_int(parts[1], what, where))
    except SpecError:
        raise SpecError(f"{where}: {what} must be N or NxM of positive integers, "
                        f"got {str(value)!r}") from None


def _text_float(value: object, what: str, where: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise SpecError(f"{where}: {what} must be a number, got {str(value)!r}") from None
    if not math.isfinite(number):
        raise SpecError(f"{where}: {what} must be a finite number, got {str(value)!r}")
    return number


def _text_bool(value: object, what: str, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    raise SpecError(f"{where}: {what} must be on or off, got {str(value)!r}")


def _blank(value: object) -> bool:
    """None, '' and NaN (an empty table cell) mean "not given"."""
    return value is None or (isinstance(value, float) and value != value) \
        or (isinstance(value, str) and not value.strip()) \
        or type(value).__name__ == "NAType"  # pandas' missing value, without importing pandas


def build_layer(kind: str, fields: Mapping[str, object], where: str = "layer") -> LayerSpec:
    """A LayerSpec from text-ish fields (keys as in the grammar's keywords), checked.

    Raises SpecError naming `where` and the problem; blank fields are left at defaults.
    """
    raw_kind = str(kind).strip().lower() if not _blank(kind) else ""
    kind = _ALIASES.get(raw_kind, raw_kind) or raw_kind
    if kind not in KINDS:
        shown = raw_kind or "(empty)"
        raise SpecError(f"{where}: unknown layer kind {shown!r}; known: {', '.join(KINDS)}")
    given = {k: v for k, v in fields.items() if not _blank(v)}
    allowed = _KEYS.get(kind, ()) + _COMMON_KEYS
    for key in given:
        if key not in allowed:
            raise SpecError(f"{where}: {kind} has no option {key!r}; "
                            f"it takes {', '.join(allowed)}")
    for key in _REQUIRED.get(kind, ()):
        if key not in given:
            raise SpecError(f"{where}: {kind} needs {key}")
    args: dict[str, object] = {"kind": kind}
    for key, value in given.items():
        if key == "name":
            args["name"] = str(value).strip()
        elif key == "in":
            names = value if isinstance(value, tuple | list) else str(value).split(",")
            args["inputs"] = tuple(str(n).strip() for n in names if str(n).strip())
        elif key in ("filters", "units", "groups"):
            args[key] = _text_int(value, key, where)
        elif key == "kernel":
            args["kernel"] = _text_pair(value, "pool size" if "pool" in kind else "kernel", where)
        elif key == "stride":
            args["strides"] = _text_pair(value, "stride", where)
        elif key == "padding":
            padding = str(value).strip().lower()
            if padding not in PADDINGS:
                raise SpecError(f"{where}: padding must be 'valid' or 'same', got {value!r}")
            args["padding"] = padding
        elif key == "act":
            act = str(value).strip().lower()
            if act not in ACTIVATIONS:
                raise SpecError(f"{where}: unknown activation {act!r}; "
                                f"known: {', '.join(ACTIVATIONS)}")
            args["activation"] = act
        elif key == "bias":
            args["use_bias"] = _text_bool(value, "bias", where)
        elif key == "rate":
            rate = _text_float(value, "dropout rate", where)
            if not 0 <= rate < 1:
                raise SpecError(f"{where}: dropout rate must be in [0, 1), got {value!r}")
            args["rate"] = rate
        elif key == "depth_radius":
            args["depth_radius"] = _text_int(value, "depth_radius", where, low=0)
        elif key in ("lrn_bias", "alpha", "beta"):
            number = _text_float(value, key, where)
            if number < 0:
                raise SpecError(f"{where}: {key} must be non-negative, got {value!r}")
            args[key] = number
        elif key == "pad":
            parts = value if isinstance(value, tuple | list) else re.split(r"[,x ]+",
                                                                        str(value).strip())
            pads = [_text_int(p, "pad", where, low=0) for p in parts if str(p).strip()]
            if len(pads) == 1:
                pads = pads * 4
            elif len(pads) == 2:  # (vertical, horizontal), as Keras' ZeroPadding2D((a, b))
                pads = [pads[0], pads[0], pads[1], pads[1]]
            if len(pads) != 4:
                raise SpecError(f"{where}: pad must be 1, 2 or 4 non-negative integers, "
                                f"got {value!r}")
            args["pad"] = tuple(pads)
    if kind in ("conv", "maxpool", "avgpool") and "strides" not in args:
        # Explicit Keras defaults, so that text -> spec -> text -> spec is stable.
        args["strides"] = (1, 1) if kind == "conv" else args["kernel"]
    return LayerSpec(**args)  # type: ignore[arg-type]


def parse_layer(text: str, where: str | None = None) -> LayerSpec:
    """Parse one layer of the grammar, e.g. ``conv:100:3:2:same`` or ``dense:10:act=softmax``.

    Defaults follow Keras: conv stride 1 and ``valid``; pool stride = pool size.
    """
    where = where or f"layer {text!r}"
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: empty layer")
    kind, *parts = [p.strip() for p in text.strip().split(":")]
    kind = _ALIASES.get(kind.lower(), kind.lower()) or kind.lower()
    positional = _POSITIONAL.get(kind, ())
    fields: dict[str, object] = {}
    position = 0
    for part in parts:
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip().lower()
            if key in fields and key != "pad":
                raise SpecError(f"{where}: {key} is given twice")
            fields[key] = value
            continue
        if position >= len(positional):
            if kind not in KINDS:
                break  # reported as an unknown kind below
            raise SpecError(f"{where}: too many fields for {kind} (it takes "
                            f"{':'.join(dict.fromkeys(positional)) or 'none'})")
        key = positional[position]
        position += 1
        if key == "pad":
            fields["pad"] = f"{fields['pad']},{part}" if "pad" in fields else part
        else:
            fields[key] = part
    return build_layer(kind, fields, where)


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _num_text(number: float) -> str:
    return repr(int(number)) if float(number).is_integer() else repr(float(number))


def layer_fields(spec: LayerSpec) -> dict[str, str]:
    """The grammar keywords of `spec` whose values differ from the defaults (strings)."""
    fields: dict[str, str] = {}
    default = LayerSpec(spec.kind)
    kind = spec.kind
    if kind == "conv":
        fields["filters"] = str(spec.filters)
    if kind == "dense":
        fields["units"] = str(spec.units)
    if kind in ("conv", "maxpool", "avgpool"):
        kernel = _pair(spec.kernel, "kernel", "layer")
        fields["kernel"] = _pair_text(kernel)
        default_stride = (1, 1) if kind == "conv" else kernel
        if spec.strides is not None and tuple(spec.strides) != default_stride:
            fields["stride"] = _pair_text(tuple(spec.strides))  # type: ignore[arg-type]
        if spec.padding != "valid":
            if "stride" not in fields:  # so padding can stay positional: conv:64:3:1:same
                fields["stride"] = _pair_text(default_stride)
            fields["padding"] = spec.padding
    if kind in ("conv", "dense", "activation") and spec.activation:
        fields["act"] = spec.activation
    if kind in ("conv", "dense") and not spec.use_bias:
        fields["bias"] = "off"
    if kind == "conv" and spec.groups != 1:
        fields["groups"] = str(spec.groups)
    if kind == "dropout":
        fields["rate"] = _num_text(spec.rate)
    if kind == "lrn":
        for key in ("depth_radius", "lrn_bias", "alpha", "beta"):
            if getattr(spec, key) != getattr(default, key):
                fields[key] = _num_text(getattr(spec, key))
    if kind == "zeropad":
        fields["pad"] = ",".join(map(str, spec.pad))
    if spec.name:
        fields["name"] = spec.name
    if spec.inputs:
        fields["in"] = ",".join(spec.inputs)
    return fields


def format_layer(spec: LayerSpec) -> str:
    """The grammar text of `spec`; `parse_layer(format_layer(s)) == s`."""
    fields = layer_fields(spec)
    parts = [spec.kind]
    positional = list(dict.fromkeys(_POSITIONAL.get(spec.kind, ())))
    # Positional while there is no gap; conv and pools may skip stride with padding=.
    for key in positional:
        if key not in fields or key == "pad":
            break
        parts.append(fields.pop(key))
    parts += [f"{key}={value}" for key, value in fields.items()]
    return ":".join(parts)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'200x300x3' -> (200, 300, 3); 'HxW' means one channel."""
    parts = re.split(r"\s*[x×,]\s*", str(text).strip().lower())
    if len(parts) == 2:
        parts.append("1")
    if len(parts) != 3:
        raise SpecError(f"input: {text!r} must be HxWxC, e.g. 200x300x3")
    return tuple(_text_int(p, "every size", f"input {text!r}") for p in parts)  # type: ignore


# ----------------------------------------------------------------------------- table form

TABLE_COLUMNS: tuple[str, ...] = ("name", "kind", "filters/units", "kernel", "stride",
                                  "padding", "activation", "rate", "inputs", "options")
_OPTION_KEYS = ("groups", "bias", "depth_radius", "lrn_bias", "alpha", "beta", "pad")


def layers_to_rows(layers: Iterable[LayerSpec]) -> list[dict[str, object]]:
    """Rows for the page's layer table (one dict per layer, keys TABLE_COLUMNS)."""
    rows = []
    for spec in layers:
        fields = layer_fields(spec)
        size = fields.get("filters") or fields.get("units")
        options = " ".join(f"{k}={fields[k]}" for k in _OPTION_KEYS if k in fields)
        rows.append({
            "name": spec.name or None,
            "kind": spec.kind,
            "filters/units": int(size) if size else None,
            "kernel": fields.get("kernel"),
            "stride": fields.get("stride"),
            "padding": spec.padding if spec.kind in ("conv", "maxpool", "avgpool") else None,
            "activation": fields.get("act"),
            "rate": spec.rate if spec.kind == "dropout" else None,
            "inputs": ", ".join(spec.inputs) if spec.inputs else None,
            "options": options or None,
        })
    return rows


def rows_to_layers(rows: Iterable[Mapping[str, object]]) -> list[LayerSpec]:
    """LayerSpecs from table rows; cells a kind does not use are ignored.

    Raises SpecError naming the row ("layer 3 (conv2): ...") for a bad cell. Rows whose
    every cell is blank (a fresh row of the editor) are skipped.
    """
    filled = [row for row in rows if not all(_blank(v) for v in row.values())]
    kinds = []
    for row in filled:
        raw_kind = row.get("kind")
        kind = "" if _blank(raw_kind) else str(raw_kind).strip().lower()
        kinds.append(_ALIASES.get(kind, kind))
    # The names analyze() will give, so that a message names the row as the results do.
    shown = _auto_names([LayerSpec(kind or "layer", "" if _blank(row.get("name"))
                                   else str(row.get("name")).strip())
                         for kind, row in zip(kinds, filled, strict=True)])
    layers = []
    for row, kind, shown_name in zip(filled, kinds, shown, strict=True):
        name = row.get("name")
        # An unknown kind has no automatic name: then only an explicit one is shown.
        where = _where(len(layers) + 1, shown_name if kind in KINDS or not _blank(name) else "")
        keys = _KEYS.get(kind, ())
        fields: dict[str, object] = {"name": name, "in": row.get("inputs")}
        size = row.get("filters/units")
        if "filters" in keys:
            fields["filters"] = size
        if "units" in keys:
            fields["units"] = size
        for column, key in (("kernel", "kernel"), ("stride", "stride"), ("padding", "padding"),
                            ("activation", "act"), ("rate", "rate")):
            if key in keys:
                fields[key] = row.get(column)
        options = row.get("options")
        if not _blank(options):
            for item in str(options).replace(";", " ").split():
                key, sep, value = item.partition("=")
                if not sep:
                    raise SpecError(f"{where}: option {item!r} must look like key=value")
                fields[key.strip().lower()] = value
        layers.append(build_layer(kind, fields, where))
    return layers


# ----------------------------------------------------------------------------- display

MEMORY_ASSUMPTIONS: tuple[str, ...] = (
    "Sizes are decimal, as in the seed exercise: 1 MB = 10^6 bytes, 1 GB = 10^9 bytes.",
    "Parameters, gradients and optimizer slots are float32 (4 bytes) in both dtypes: "
    "mixed precision keeps 32-bit master weights and only stores activations in 16 bits.",
    "Input images are fed as float32 (4 bytes per value).",
    "Predicting one instance keeps a layer's inputs, its output and any earlier output a "
    "later layer still reads (a skip connection); for a plain stack that is the largest pair "
    "of consecutive activations. Add the parameters.",
    "Training one batch keeps every layer's output for backprop (x batch), the input batch, "
    "the parameters, one gradient per trainable parameter and the optimizer's slots per "
    "trainable parameter: SGD 0, momentum 1, Adam 2.",
    "Gradient accumulation over k steps runs micro-batches of ceil(batch / k): activations "
    "and input shrink with the micro-batch; one accumulator buffer per trainable parameter "
    "is added (Keras' gradient_accumulation_steps).",
    "MACs count conv and dense multiply-accumulates for one instance; FLOPs = 2 x MACs. "
    "Bias additions, pooling, normalisation and activations are not counted.",
    "Not included: the framework itself (CUDA context, cuDNN workspaces, allocator "
    "fragmentation), which can add hundreds of MB on a real GPU.",
)


def format_bytes(n: float | None) -> str:
    """'12.61 MB' below 1 GB, else '2.27 GB' (decimal units)."""
    if n is None:
        return "-"
    if abs(n) >= GB:
        return f"{n / GB:,.2f} GB"
    return f"{n / MB:,.2f} MB"


def stats_rows(stats: ModelStats) -> list[dict[str, object]]:
    """One row per layer for the page's table."""
    act = DTYPES[stats.memory.dtype]
    return [{
        "#": i, "layer": layer.name, "kind": layer.kind, "inputs": ", ".join(layer.inputs),
        "output": " x ".join(map(str, layer.output_shape)), "params": layer.params,
        "trainable": layer.trainable_params, "non-trainable": layer.non_trainable_params,
        "MACs": layer.macs, "activation MB": layer.activation_elems * act / MB,
        "receptive field": ("whole input" if layer.receptive_field is None
                            else _pair_text(layer.receptive_field_hw)),  # type: ignore[arg-type]
    } for i, layer in enumerate(stats.layers, start=1)]


# ----------------------------------------------------------------------------- make it fit


@dataclass(frozen=True)
class FitOption:
    """One computed what-if for fitting training into GPU memory."""

    remedy: str  # "smaller batch", "lower resolution", ...
    change: str  # what to set, e.g. "batch 22"
    training_bytes: int | None  # training memory with the change; None if none is possible
    fits: bool
    cost: str  # what it costs the model or the training


def scale_filters(layers: Sequence[LayerSpec], factor: float) -> list[LayerSpec]:
    """Every conv layer with about `factor` x its filters; the rest unchanged.

    Filters are rounded to a multiple of every conv layer's `groups` (their least common
    multiple, at least one multiple), so a grouped conv still divides the channels it gets.
    """
    groups = [spec.groups for spec in layers if spec.kind == "conv" and _is_int(spec.groups)
              and spec.groups > 0]
    unit = math.lcm(*groups) if groups else 1
    scaled = []
    for spec in layers:
        if spec.kind == "conv" and _is_int(spec.filters):
            spec = replace(spec, filters=unit * max(1, round(spec.filters * factor / unit)))
        scaled.append(spec)
    return scaled


def _largest(low: int, high: int, fits) -> int | None:
    """The largest n in [low, high] with fits(n), for a monotone fits (True then False)."""
    if not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def fit_options(input_shape: Sequence[int], layers: Sequence[LayerSpec], *, batch: int,
                dtype: str = "float32", optimizer: str = "adam",
                gpu_bytes: float) -> list[FitOption]:
    """The seed's answer 3 (GPU out of memory while training), computed for this network:
    each remedy alone, at the smallest change that makes training fit `gpu_bytes`.

    Raises SpecError if the network itself is bad.
    """
    base = analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer)
    h, w, c = base.input_shape
    options: list[FitOption] = []

    # Smaller batch: memory is fixed + batch x per-sample, so solve for the batch.
    largest = base.max_batch(gpu_bytes)
    if largest >= batch:
        options.append(FitOption("smaller batch", f"batch {batch} already fits",
                                 base.training_bytes, True, "none"))
    elif largest == 0:
        options.append(FitOption("smaller batch", "batch 1 does not fit either",
                                 base.at(batch=1).training_bytes, False,
                                 "parameters, gradients and optimizer state alone are too big"
                                 if base.memory.fixed_bytes > gpu_bytes else "-"))
    else:
        options.append(FitOption("smaller batch", f"batch {largest} (from {batch})",
                                 base.at(batch=largest).training_bytes, True,
                                 "fewer samples per step: noisier gradients, may need a "
                                 "lower learning rate"))

    # Lower resolution: the largest input height (width in proportion) that fits.
    def at_height(height: int) -> ModelStats | None:
        width = max(1, round(w * height / h))
        try:
            return analyze((height, width, c), layers, batch=batch, dtype=dtype,
                           optimizer=optimizer)
        except SpecError:
            return None

    def height_fits(height: int) -> bool:
        stats = at_height(height)
        # Too small for the kernels counts as "fits" so the search keeps going down the
        # memory slope; the answer is checked for validity below.
        return stats is None or stats.training_bytes <= gpu_bytes

    if base.training_bytes <= gpu_bytes:
        options.append(FitOption("lower resolution", f"{h}x{w} already fits",
                                 base.training_bytes, True, "none"))
    else:
        best = _largest(1, h, height_fits)
        stats = at_height(best) if best else None
        if stats is None:
            options.append(FitOption("lower resolution", "no input size fits", None, False,
                                     "the network needs a larger input than fits"))
        else:
            options.append(FitOption(
                "lower resolution", f"input {stats.input_shape[0]}x{stats.input_shape[1]} "
                f"(from {h}x{w})", stats.training_bytes, True,
                "the network sees less detail; the dense layers after a flatten shrink too"))

    # Fewer filters: the largest fraction (in 1/32 steps) of every conv layer's filters.
    has_conv = any(spec.kind == "conv" for spec in layers)

    def filters_at(k: int) -> ModelStats | None:
        try:
            return analyze(input_shape, scale_filters(layers, k / 32), batch=batch,
                           dtype=dtype, optimizer=optimizer)
        except SpecError:
            return None

    if not has_conv:
        options.append(FitOption("fewer filters", "no conv layers", None, False, "-"))
    elif base.training_bytes <= gpu_bytes:
        options.append(FitOption("fewer filters", "all filters already fit",
                                 base.training_bytes, True, "none"))
    else:
        best = _largest(1, 31, lambda k: (s := filters_at(k)) is not None
                        and s.training_bytes <= gpu_bytes)
        if best is None:
            stats = filters_at(1)
            options.append(FitOption("fewer filters", "even 1/32 of the filters does not fit",
                                     stats.training_bytes if stats else None, False, "-"))
        else:
            stats = filters_at(best)
            assert stats is not None
            options.append(FitOption("fewer filters", f"{best / 32:.0%} of every conv "
                                     "layer's filters", stats.training_bytes, True,
                                     "less capacity: fewer features per layer"))

    # Mixed precision: 16-bit activations, 32-bit master weights.
    if dtype == "mixed_float16":
        options.append(FitOption("mixed precision", "already mixed_float16",
                                 base.training_bytes, base.training_bytes <= gpu_bytes, "none"))
    else:
        mixed = base.at(dtype="mixed_float16")
        options.append(FitOption("mixed precision", "dtype mixed_float16",
                                 mixed.training_bytes, mixed.training_bytes <= gpu_bytes,
                                 "needs a GPU with fast float16 (tensor cores) and loss "
                                 "scaling; accuracy is usually unchanged"))

    # Gradient accumulation: the fewest steps whose micro-batch fits; same effective batch.
    # Memory falls as k grows (the micro-batch ceil(batch / k) shrinks): binary search.
    def accum_fits(k: int) -> bool:
        return base.at(accum_steps=k).training_bytes <= gpu_bytes

    steps: int | None = None
    if accum_fits(batch):
        low, high = 1, batch
        while low < high:
            mid = (low + high) // 2
            if accum_fits(mid):
                high = mid
            else:
                low = mid + 1
        steps = low
    if steps == 1:
        options.append(FitOption("gradient accumulation", "not needed", base.training_bytes,
                                 True, "none"))
    elif steps is None:
        options.append(FitOption("gradient accumulation",
                                 f"{batch} steps of 1 do not fit either",
                                 base.at(accum_steps=batch).training_bytes, False, "-"))
    else:
        accum = base.at(accum_steps=steps).memory
        options.append(FitOption(
            "gradient accumulation", f"{steps} steps of {accum.micro_batch} (batch {batch} "
            "per update)", accum.training_bytes, True,
            f"{steps}x slower per update; batch-norm statistics see micro-batches"))
    return options
