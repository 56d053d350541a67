"""The analysis walk: `LayerSpec -> LayerStats -> ModelStats` (as in torchinfo). `analyze`
walks the specs once, in order, and every later question (memory at another batch size, the
largest batch that fits a GPU, what-ifs) reuses that walk.

Shapes and parameters follow Keras 3 exactly: Conv2D ``valid`` gives ``floor((n - k) / s) + 1``,
``same`` gives ``ceil(n / s)``; pools likewise with the pool size as kernel;
BatchNormalization has 4 parameters per channel, 2 trainable (gamma, beta) and 2 not (moving
mean and variance). ``tests/test_calc_keras.py`` checks all of it against
``keras.Model.count_params()`` and the layers' output shapes. What MACs count, and the memory
model, are stated once, in `cnnlab.calc.memory.MEMORY_ASSUMPTIONS`. Receptive fields grow
by the recurrence in `_grow` and meet as `_merge` says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cnnlab.calc.memory import MemoryEstimate, estimate, live_peak
from cnnlab.calc.spec import (
    ACTIVATIONS,
    INPUT_NAME,
    KINDS,
    MAX_BATCH,
    MAX_BYTES,
    MAX_COUNT,
    MAX_LAYERS,
    MAX_SIZE,
    MERGES,
    PADDINGS,
    LayerSpec,
    LazyWhere,
    SpecError,
    check_input_shape,
    int_pair,
    is_int,
    layer_where,
    over_limit,
    positive_int,
    power_text,
    shown,
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


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
    # dtype -> peak bytes of live activations predicting one instance (memory.live_peak)
    _inference_peak: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.total_macs

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    # the memory estimate's three totals, read as the model's
    params_bytes = property(lambda self: self.memory.params_bytes)
    inference_bytes = property(lambda self: self.memory.inference_bytes)
    training_bytes = property(lambda self: self.memory.training_bytes)

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


def auto_names(layers: Sequence[LayerSpec]) -> list[str]:
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
    if len(layers) > MAX_LAYERS:
        raise SpecError(f"network: {len(layers):,} layers, more than the calculator's limit of "
                        f"{MAX_LAYERS:,}")
    names = auto_names(layers)
    seen: dict[str, int] = {}
    resolved: list[tuple[LayerSpec, str, tuple[str, ...]]] = []
    previous = INPUT_NAME
    for index, (spec, name) in enumerate(zip(layers, names, strict=True), start=1):
        if not isinstance(spec, LayerSpec):
            raise SpecError(f"layer {index}: expected a LayerSpec, got {type(spec).__name__}")
        if spec.kind not in KINDS:
            raise SpecError(f"{layer_where(index, name)}: unknown layer kind {spec.kind!r}; "
                            f"known: {', '.join(KINDS)}")
        if not isinstance(name, str) or not _NAME_RE.match(name) or name == INPUT_NAME:
            raise SpecError(f"{layer_where(index, name)}: name {shown(name)} must start with a letter "
                            f"or _ and use only letters, digits, _ . - (and not be "
                            f"{INPUT_NAME!r})")
        if name in seen:
            raise SpecError(f"{layer_where(index, name)}: name {name!r} is already used by layer "
                            f"{seen[name]}")
        inputs = tuple(spec.inputs) if spec.inputs else (previous,)
        for source in inputs:
            if source != INPUT_NAME and source not in seen:
                raise SpecError(f"{layer_where(index, name)}: input {shown(source)} is not the name of "
                                "an earlier layer")
        if len(inputs) > 1 and len(set(inputs)) != len(inputs):
            raise SpecError(f"{layer_where(index, name)}: the same input is listed twice in "
                            f"{', '.join(inputs)}")
        if spec.kind in MERGES:
            if len(inputs) < 2:
                raise SpecError(f"{layer_where(index, name)}: {spec.kind} needs two or more "
                                f"inputs, got {len(inputs)}")
        elif len(inputs) != 1:
            raise SpecError(f"{layer_where(index, name)}: {spec.kind} takes one input, got "
                            f"{len(inputs)}")
        seen[name] = index
        resolved.append((spec, name, inputs))
        previous = name
    used = {source for _, _, inputs in resolved for source in inputs}
    for index, (_, name, _) in enumerate(resolved[:-1], start=1):
        if name not in used:
            raise SpecError(f"{layer_where(index, name)}: its output is never used "
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
        filters = positive_int(spec.filters, "filters", where)
        kh, kw = int_pair(spec.kernel, "kernel", where)
        sh, sw = int_pair(spec.strides if spec.strides is not None else (1, 1), "stride", where)
        groups = positive_int(spec.groups, "groups", where)
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
        kh, kw = int_pair(spec.kernel, "pool size", where)
        sh, sw = int_pair(spec.strides if spec.strides is not None else (kh, kw), "stride", where)
        if spec.padding not in PADDINGS:
            raise SpecError(f"{where}: padding must be 'valid' or 'same', got {spec.padding!r}")
        hw = ((kh, kw), (h, w))
        oh = _window_out(h, kh, sh, spec.padding, where, "pool size", hw)
        ow = _window_out(w, kw, sw, spec.padding, where, "pool size", hw)
        return (oh, ow, c), 0, 0, 0, _grow(rf, (kh, kw), (sh, sw))
    if kind == "dense":
        units = positive_int(spec.units, "units", where)
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
        if not is_int(spec.depth_radius) or spec.depth_radius < 0:
            raise SpecError(f"{where}: depth_radius must be a non-negative integer, "
                            f"got {shown(spec.depth_radius)}")
        if spec.depth_radius > MAX_SIZE:
            raise over_limit(where, "depth_radius", spec.depth_radius, MAX_SIZE)
        for what in ("lrn_bias", "alpha", "beta"):
            value = getattr(spec, what)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SpecError(f"{where}: {what} must be a non-negative number, got {value!r}")
        return shape, 0, 0, 0, rf
    if kind == "zeropad":
        h, w, c = _spatial(shape, where, "zeropad")
        if not isinstance(spec.pad, tuple | list) or len(spec.pad) != 4 \
                or not all(is_int(p) and p >= 0 for p in spec.pad):
            raise SpecError(f"{where}: pad must be four non-negative integers top, bottom, "
                            f"left, right, got {shown(spec.pad)}")
        if max(spec.pad) > MAX_SIZE:
            raise over_limit(where, "pad", max(spec.pad), MAX_SIZE)
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
    The memory model is `cnnlab.calc.memory.MEMORY_ASSUMPTIONS`.
    """
    shape_in = check_input_shape(input_shape)
    if is_int(batch) and batch > MAX_BATCH:
        raise over_limit("batch", "the batch", batch, MAX_BATCH)
    shapes: dict[str, tuple[int, ...]] = {INPUT_NAME: shape_in}
    rfs: dict[str, object] = {INPUT_NAME: ((1, 1), (1, 1))}
    stats: list[LayerStats] = []
    params = macs_total = elems_total = 0  # running totals, checked against MAX_COUNT
    for index, (spec, name, inputs) in enumerate(_resolve(layers), start=1):
        where = LazyWhere(index, name)
        out, trainable, frozen, macs, rf = _layer(
            spec, where,  # type: ignore[arg-type]
            [shapes[s] for s in inputs], [rfs[s] for s in inputs])
        elems = math.prod(out)
        params += trainable + frozen
        macs_total += macs
        elems_total += elems
        if params > MAX_COUNT or macs_total > MAX_COUNT or elems_total > MAX_COUNT \
                or (rf is not None and max(*rf[0], *rf[1]) > MAX_COUNT):
            _over_count(where, params, macs_total, elems_total, rf)
        shapes[name] = out
        rfs[name] = rf
        # Positional: LayerStats' field order (faster than keywords in this hot loop).
        stats.append(LayerStats(
            name, spec.kind, inputs, out, trainable + frozen, trainable, frozen, macs,
            elems, max(rf[0]) if rf else None, rf[0] if rf else None,
            rf[1] if rf else None))
    model = ModelStats(
        input_shape=shape_in, layers=stats,
        total_params=params,
        trainable_params=sum(s.trainable_params for s in stats),
        non_trainable_params=sum(s.non_trainable_params for s in stats),
        total_macs=macs_total,
        activation_elems=elems_total,
        memory=None,  # type: ignore[arg-type]  # filled just below
        _inference_peak=live_peak(shape_in, stats),
    )
    memory = _memory(model, batch, dtype, optimizer, accum_steps)
    if memory.training_bytes > MAX_BYTES:
        raise SpecError(f"batch: training a batch of {batch:,} needs {_big(memory.training_bytes)} "
                        f"bytes, more than the calculator's limit of {power_text(MAX_BYTES)} "
                        "bytes (1 EB)")
    return replace(model, memory=memory)


def _big(n: int) -> str:
    """A count for a message: '1,234,567', or '1.23e+24' past 10^21."""
    return f"{n:,}" if n < 10**21 else f"{n:.2e}"


def _over_count(where: object, params: int, macs: int, elems: int, rf) -> None:
    """Raise the one-line refusal of a network whose counts pass MAX_COUNT at `where`."""
    for what, total in (("parameters", params), ("multiply-accumulates", macs),
                        ("activation values (one instance)", elems)):
        if total > MAX_COUNT:
            raise SpecError(f"{where}: the network reaches {_big(total)} {what} here, more than "
                            f"the calculator's limit of {power_text(MAX_COUNT)}")
    raise SpecError(f"{where}: its receptive field reaches {_big(max(*rf[0], *rf[1]))} input "
                    f"pixels (strides multiply along the stack), more than the calculator's "
                    f"limit of {power_text(MAX_COUNT)}")


def _memory(model: ModelStats, batch: int, dtype: str, optimizer: str,
            accum_steps: int) -> MemoryEstimate:
    return estimate(model.input_shape, total_params=model.total_params,
                    trainable_params=model.trainable_params,
                    activation_elems=model.activation_elems,
                    inference_peak=model._inference_peak, batch=batch, dtype=dtype,
                    optimizer=optimizer, accum_steps=accum_steps)
