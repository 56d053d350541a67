"""Make it fit: the seed's answer 3 (GPU out of memory while training), computed for one
network. `fit_options` tries each remedy alone, at the smallest change that makes training
fit the GPU; each remedy is one function below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.spec import LayerSpec, SpecError, is_int


@dataclass(frozen=True)
class FitOption:
    """One computed what-if for fitting training into GPU memory."""

    remedy: str  # "smaller batch", "lower resolution", ...
    change: str  # what to set, e.g. "batch 22"
    training_bytes: int | None  # training memory with the change; None if none is possible
    fits: bool
    cost: str  # what it costs the model or the training
    textbook_bytes: int | None = None  # the textbook count for the same change


MODELS = ("framework", "textbook")
Need = Callable[..., int]   # need(stats, specs=layers) -> training bytes under one model


def memory_need(model: str, layers: Sequence[LayerSpec]) -> Need:
    """Training bytes of a what-if under `model`: "framework" (what Keras on TensorFlow keeps,
    cnnlab.calc.framework_memory) or "textbook" (MemoryEstimate)."""
    if model not in MODELS:
        raise SpecError(f"model: must be 'framework' or 'textbook', got {model!r}")

    def need(stats: ModelStats, specs: Sequence[LayerSpec] = layers) -> int:
        if model == "textbook":
            return stats.training_bytes
        from cnnlab.calc.framework_memory import framework_training_bytes

        return framework_training_bytes(stats, specs)
    return need


def _option(remedy: str, change: str, stats: ModelStats | None, fits: bool, cost: str,
            need: Need, specs: Sequence[LayerSpec] | None = None) -> FitOption:
    """A FitOption with the model's bytes and the textbook's beside them."""
    if stats is None:
        return FitOption(remedy, change, None, fits, cost, None)
    bytes_ = need(stats) if specs is None else need(stats, specs)
    return FitOption(remedy, change, bytes_, fits, cost, stats.training_bytes)


def scale_filters(layers: Sequence[LayerSpec], factor: float) -> list[LayerSpec]:
    """Every conv layer with about `factor` x its filters; the rest unchanged.

    Filters are rounded to a multiple of every conv layer's `groups` (their least common
    multiple, at least one multiple), so a grouped conv still divides the channels it gets.
    """
    groups = [spec.groups for spec in layers if spec.kind == "conv" and is_int(spec.groups)
              and spec.groups > 0]
    unit = math.lcm(*groups) if groups else 1
    scaled = []
    for spec in layers:
        if spec.kind == "conv" and is_int(spec.filters):
            spec = replace(spec, filters=unit * max(1, round(spec.filters * factor / unit)))
        scaled.append(spec)
    return scaled


def fit_options(input_shape: Sequence[int], layers: Sequence[LayerSpec], *, batch: int,
                dtype: str = "float32", optimizer: str = "adam",
                gpu_bytes: float, model: str = "framework") -> list[FitOption]:
    """Each remedy alone, at the smallest change that makes training fit `gpu_bytes`: a
    smaller batch, a lower resolution, fewer filters, mixed precision, gradient accumulation.

    `model`: "framework" (what Keras on TensorFlow keeps; the default, issue 12) or
    "textbook"; each option also carries the textbook bytes. Raises SpecError if the network
    itself is bad.
    """
    need = memory_need(model, layers)
    base = analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer)
    return [smaller_batch(base, gpu_bytes, need), lower_resolution(base, layers, gpu_bytes, need),
            fewer_filters(base, layers, gpu_bytes, need), mixed_precision(base, gpu_bytes, need),
            gradient_accumulation(base, gpu_bytes, need)]


def _largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
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


def _smallest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The smallest n in [low, high] with fits(n), for a monotone fits (False then True)."""
    if not fits(high):
        return None
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low


def _analyze_like(base: ModelStats, input_shape: Sequence[int],
                  layers: Sequence[LayerSpec]) -> ModelStats | None:
    """`layers` on `input_shape` with base's batch, dtype and optimizer; None if invalid."""
    m = base.memory
    try:
        return analyze(input_shape, layers, batch=m.batch, dtype=m.dtype, optimizer=m.optimizer)
    except SpecError:
        return None


def smaller_batch(base: ModelStats, gpu_bytes: float, need: Need) -> FitOption:
    """The largest batch whose training fits (memory grows with the batch)."""
    batch = base.memory.batch
    largest = _largest(1, batch, lambda b: need(base.at(batch=b)) <= gpu_bytes) or 0
    if largest >= batch:
        return _option("smaller batch", f"batch {batch} already fits", base, True, "none", need)
    if largest == 0:
        one = base.at(batch=1)
        return _option("smaller batch", "batch 1 does not fit either", one, False,
                       "parameters, gradients and optimizer state alone are too big"
                       if need(one) - one.memory.per_sample_bytes > gpu_bytes else "-", need)
    return _option("smaller batch", f"batch {largest} (from {batch})", base.at(batch=largest),
                   True, "fewer samples per step: noisier gradients, may need a lower "
                   "learning rate", need)


def lower_resolution(base: ModelStats, layers: Sequence[LayerSpec], gpu_bytes: float,
                     need: Need) -> FitOption:
    """The largest input height (width in proportion) that fits."""
    h, w, c = base.input_shape
    if need(base) <= gpu_bytes:
        return _option("lower resolution", f"{h}x{w} already fits", base, True, "none", need)

    def at_height(height: int) -> ModelStats | None:
        return _analyze_like(base, (height, max(1, round(w * height / h)), c), layers)

    def height_fits(height: int) -> bool:
        stats = at_height(height)
        # Too small for the kernels counts as "fits" so the search keeps going down the
        # memory slope; the answer is checked for validity below.
        return stats is None or need(stats) <= gpu_bytes

    best = _largest(1, h, height_fits)
    stats = at_height(best) if best else None
    if stats is None:
        return _option("lower resolution", "no input size fits", None, False,
                       "the network needs a larger input than fits", need)
    return _option(
        "lower resolution", f"input {stats.input_shape[0]}x{stats.input_shape[1]} "
        f"(from {h}x{w})", stats, True,
        "the network sees less detail; the dense layers after a flatten shrink too", need)


def fewer_filters(base: ModelStats, layers: Sequence[LayerSpec], gpu_bytes: float,
                  need: Need) -> FitOption:
    """The largest fraction (in 1/32 steps) of every conv layer's filters that fits."""
    if not any(spec.kind == "conv" for spec in layers):
        return _option("fewer filters", "no conv layers", None, False, "-", need)
    if need(base) <= gpu_bytes:
        return _option("fewer filters", "all filters already fit", base, True, "none", need)

    def filters_at(k: int) -> tuple[ModelStats | None, list[LayerSpec]]:
        specs = scale_filters(layers, k / 32)
        return _analyze_like(base, base.input_shape, specs), specs

    def fits(k: int) -> bool:
        stats, specs = filters_at(k)
        return stats is not None and need(stats, specs) <= gpu_bytes

    best = _largest(1, 31, fits)
    if best is None:
        stats, specs = filters_at(1)
        return _option("fewer filters", "even 1/32 of the filters does not fit", stats, False,
                       "-", need, specs)
    stats, specs = filters_at(best)
    return _option("fewer filters", f"{best / 32:.0%} of every conv layer's filters", stats,
                   True, "less capacity: fewer features per layer", need, specs)


def mixed_precision(base: ModelStats, gpu_bytes: float, need: Need) -> FitOption:
    """16-bit activations, 32-bit master weights."""
    if base.memory.dtype == "mixed_float16":
        return _option("mixed precision", "already mixed_float16", base,
                       need(base) <= gpu_bytes, "none", need)
    mixed = base.at(dtype="mixed_float16")
    return _option("mixed precision", "dtype mixed_float16", mixed, need(mixed) <= gpu_bytes,
                   "needs a GPU with fast float16 (tensor cores) and loss scaling; accuracy "
                   "is usually unchanged", need)


def gradient_accumulation(base: ModelStats, gpu_bytes: float, need: Need) -> FitOption:
    """The fewest steps whose micro-batch fits; the same effective batch. Memory falls as
    the steps k grow (the micro-batch ceil(batch / k) shrinks): a binary search."""
    batch = base.memory.batch
    steps = _smallest(1, batch, lambda k: need(base.at(accum_steps=k)) <= gpu_bytes)
    if steps == 1:
        return _option("gradient accumulation", "not needed", base, True, "none", need)
    if steps is None:
        return _option("gradient accumulation", f"{batch} steps of 1 do not fit either",
                       base.at(accum_steps=batch), False, "-", need)
    accum = base.at(accum_steps=steps)
    return _option(
        "gradient accumulation", f"{steps} steps of {accum.memory.micro_batch} (batch {batch} "
        "per update)", accum, True,
        f"{steps}x slower per update; batch-norm statistics see micro-batches", need)
