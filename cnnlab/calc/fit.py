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
                gpu_bytes: float) -> list[FitOption]:
    """Each remedy alone, at the smallest change that makes training fit `gpu_bytes`: a
    smaller batch, a lower resolution, fewer filters, mixed precision, gradient accumulation.

    Raises SpecError if the network itself is bad.
    """
    base = analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer)
    return [smaller_batch(base, gpu_bytes), lower_resolution(base, layers, gpu_bytes),
            fewer_filters(base, layers, gpu_bytes), mixed_precision(base, gpu_bytes),
            gradient_accumulation(base, gpu_bytes)]


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


def smaller_batch(base: ModelStats, gpu_bytes: float) -> FitOption:
    """Memory is fixed + batch x per-sample, so solve for the batch."""
    batch = base.memory.batch
    largest = base.max_batch(gpu_bytes)
    if largest >= batch:
        return FitOption("smaller batch", f"batch {batch} already fits", base.training_bytes,
                         True, "none")
    if largest == 0:
        return FitOption("smaller batch", "batch 1 does not fit either",
                         base.at(batch=1).training_bytes, False,
                         "parameters, gradients and optimizer state alone are too big"
                         if base.memory.fixed_bytes > gpu_bytes else "-")
    return FitOption("smaller batch", f"batch {largest} (from {batch})",
                     base.at(batch=largest).training_bytes, True,
                     "fewer samples per step: noisier gradients, may need a lower learning rate")


def lower_resolution(base: ModelStats, layers: Sequence[LayerSpec],
                     gpu_bytes: float) -> FitOption:
    """The largest input height (width in proportion) that fits."""
    h, w, c = base.input_shape
    if base.training_bytes <= gpu_bytes:
        return FitOption("lower resolution", f"{h}x{w} already fits", base.training_bytes,
                         True, "none")

    def at_height(height: int) -> ModelStats | None:
        return _analyze_like(base, (height, max(1, round(w * height / h)), c), layers)

    def height_fits(height: int) -> bool:
        stats = at_height(height)
        # Too small for the kernels counts as "fits" so the search keeps going down the
        # memory slope; the answer is checked for validity below.
        return stats is None or stats.training_bytes <= gpu_bytes

    best = _largest(1, h, height_fits)
    stats = at_height(best) if best else None
    if stats is None:
        return FitOption("lower resolution", "no input size fits", None, False,
                         "the network needs a larger input than fits")
    return FitOption(
        "lower resolution", f"input {stats.input_shape[0]}x{stats.input_shape[1]} "
        f"(from {h}x{w})", stats.training_bytes, True,
        "the network sees less detail; the dense layers after a flatten shrink too")


def fewer_filters(base: ModelStats, layers: Sequence[LayerSpec],
                  gpu_bytes: float) -> FitOption:
    """The largest fraction (in 1/32 steps) of every conv layer's filters that fits."""
    if not any(spec.kind == "conv" for spec in layers):
        return FitOption("fewer filters", "no conv layers", None, False, "-")
    if base.training_bytes <= gpu_bytes:
        return FitOption("fewer filters", "all filters already fit", base.training_bytes, True,
                         "none")

    def filters_at(k: int) -> ModelStats | None:
        return _analyze_like(base, base.input_shape, scale_filters(layers, k / 32))

    best = _largest(1, 31, lambda k: (s := filters_at(k)) is not None
                    and s.training_bytes <= gpu_bytes)
    if best is None:
        stats = filters_at(1)
        return FitOption("fewer filters", "even 1/32 of the filters does not fit",
                         stats.training_bytes if stats else None, False, "-")
    stats = filters_at(best)
    assert stats is not None
    return FitOption("fewer filters", f"{best / 32:.0%} of every conv layer's filters",
                     stats.training_bytes, True, "less capacity: fewer features per layer")


def mixed_precision(base: ModelStats, gpu_bytes: float) -> FitOption:
    """16-bit activations, 32-bit master weights."""
    if base.memory.dtype == "mixed_float16":
        return FitOption("mixed precision", "already mixed_float16", base.training_bytes,
                         base.training_bytes <= gpu_bytes, "none")
    mixed = base.at(dtype="mixed_float16")
    return FitOption("mixed precision", "dtype mixed_float16", mixed.training_bytes,
                     mixed.training_bytes <= gpu_bytes,
                     "needs a GPU with fast float16 (tensor cores) and loss scaling; accuracy "
                     "is usually unchanged")


def gradient_accumulation(base: ModelStats, gpu_bytes: float) -> FitOption:
    """The fewest steps whose micro-batch fits; the same effective batch. Memory falls as
    the steps k grow (the micro-batch ceil(batch / k) shrinks): a binary search."""
    batch = base.memory.batch
    steps = _smallest(1, batch, lambda k: base.at(accum_steps=k).training_bytes <= gpu_bytes)
    if steps == 1:
        return FitOption("gradient accumulation", "not needed", base.training_bytes, True,
                         "none")
    if steps is None:
        return FitOption("gradient accumulation", f"{batch} steps of 1 do not fit either",
                         base.at(accum_steps=batch).training_bytes, False, "-")
    accum = base.at(accum_steps=steps).memory
    return FitOption(
        "gradient accumulation", f"{steps} steps of {accum.micro_batch} (batch {batch} per "
        "update)", accum.training_bytes, True,
        f"{steps}x slower per update; batch-norm statistics see micro-batches")
