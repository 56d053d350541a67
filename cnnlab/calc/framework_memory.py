"""The framework memory model: what Keras 3 on TensorFlow keeps during one training step.

The textbook count (`cnnlab.calc`'s MemoryEstimate) keeps every layer's output for the
backward pass. TensorFlow keeps what the gradient functions read and frees every tensor when
its last reader has run; the peak comes in the backward pass, when the tensors kept by the
layers not yet differentiated, the gradients in flight and the weight gradients are alive
together. `step_moments` replays that step layer by layer (pure Python, no TensorFlow): at
each moment the bytes alive are fixed + batch x per-sample, and the peak is the largest.

What each layer keeps (`framework_tensors.kept_tensors`) is read off TensorFlow's gradient
registrations (`tensorflow/python/ops/nn_grad.py`, `math_grad.py`) and Keras 3's layers, and
is checked
against the traced `train_step` graph (tests/test_framework_memory.py): a conv or dense
layer keeps its input, not its output; an activation its output (relu, tanh, sigmoid,
softmax, elu, selu) or its input (gelu, swish, ...); max pooling its input, its output and
oneDNN's 1-byte workspace; BatchNorm its input as float32; dropout a 1-byte mask; average
pooling, flatten, zero padding, concat and add nothing; layers before the first weights have
no backward at all; an element-wise layer (relu, tanh, sigmoid, ..., dropout) writes its
output over an input nobody else holds, and its gradient over its output's. Mixed precision
on a CPU adds float32 copies (dense, global average pooling) and Eigen's float16 im2col
buffers (a grouped conv's: the whole batch's). The order is TensorFlow's executor's as
traced: a conv's filter gradient before its input gradient (`filter_first`), float32
updates as soon as a gradient exists (`immediate_updates`), mixed_float16 gradients cast to
float32 and kept until the loss-scale optimizer's check (`mixed_cast_gradients`).
`memory_gap.RULES` says the same in the page's words.

Always alive: the input and target batches (float32; the measurement's loss is mean squared
error), the parameters, the optimizer's slots (SGD 0, momentum 1, Adam 2 per trainable
parameter) and a runtime term.

The peak the allocator holds is more than the tensors': TensorFlow's BFC allocator hands
out whole chunks (a tensor that opens a region can take the next power of two). The replay
also lists the step's tensors one by one (`step_moments`' events), and
`cnnlab.calc.allocator` runs them through a simulation of the allocator, as a measurement
runs (the variables, the batch, a warm-up step, the measured step): `FrameworkEstimate.at`
and `training_bytes` are its peak, `tensor_bytes` and the moments the tensors'. The
constants that are not tensor sizes (`Coefficients`, in framework_coefficients) were
fitted by bench/memory_fit.py to tests/data/memory_measurements.json through that
simulation (slopes: least-squares lines through five batches, each in a fresh process;
memory_cases). Each constant's comment says what it stands for and what was seen.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from cnnlab.calc import allocator as bfc
from cnnlab.calc.analysis import ModelStats, analyze, resolve
from cnnlab.calc.framework_coefficients import COEFFICIENTS, Coefficients
from cnnlab.calc.framework_tensors import (
    OUTPUT_GRADIENT_ACTIVATIONS,
    elementwise,
    half_conv_col_buffer_bytes,
    kept_tensors,
    needs_gradient,
    pieces,
)
from cnnlab.calc.memory import DTYPES, INPUT_BYTES, OPTIMIZER_SLOTS, PARAM_BYTES
from cnnlab.calc.spec import INPUT_NAME, LayerSpec

__all__ = ["COEFFICIENTS", "Coefficients", "FrameworkEstimate", "Moment", "framework_estimate",
           "framework_training_bytes", "kept_tensors", "needs_gradient", "step_moments"]


@dataclass(frozen=True)
class Moment:
    """The bytes alive at one moment of the step: fixed + batch x per_sample."""

    where: str  # "backward of conv2", "optimizer step", ...
    fixed: float
    per_sample: float
    terms: tuple[tuple[str, float, float], ...]  # (what, fixed bytes, per-sample bytes)

    def at(self, batch: int) -> float:
        return self.fixed + batch * self.per_sample


@dataclass(frozen=True)
class FrameworkEstimate:
    """The framework model's peak of one training step at one batch: the allocator's (its
    simulation over the step's tensors, cnnlab.calc.allocator) and the tensors' own."""

    batch: int
    micro_batch: int
    dtype: str
    optimizer: str
    accum_steps: int
    training_bytes: int  # the allocator's peak at the micro-batch (whole chunks)
    tensor_bytes: int  # the tensors' peak at the micro-batch (the bytes they request)
    per_sample_bytes: int  # the tensors: the slope of the moment that peaks at this batch
    fixed_bytes: int  # its intercept
    peak: Moment  # the moment that peaks
    moments: tuple[Moment, ...] = field(repr=False)
    allocator: Callable[[int], int] = field(repr=False, compare=False, default=None)

    def at(self, batch: int) -> int:
        """The allocator's peak at another (micro-)batch (a fresh process's, simulated)."""
        if self.allocator is None:
            return self.tensors_at(batch)
        return self.allocator(batch)

    def tensors_at(self, batch: int) -> int:
        """The tensors' peak at another (micro-)batch: the largest moment there."""
        return round(max(m.at(batch) for m in self.moments))

    def slope(self, b1: int, b2: int) -> float:
        """The per-sample slope between two batches, as a measurement takes it."""
        return (self.at(b2) - self.at(b1)) / (b2 - b1)

    def max_batch(self, gpu_bytes: float, limit: int = 1 << 24) -> int:
        """The largest batch whose peak fits `gpu_bytes` (0 if none; at most `limit`): the
        allocator's peak is a staircase that grows with the batch, so a bisection finds
        the last batch b with at(b) <= gpu_bytes < at(b + 1)."""
        if self.at(1) > gpu_bytes:
            return 0
        lo = 1
        while lo < limit and self.at(min(2 * lo, limit)) <= gpu_bytes:
            lo = min(2 * lo, limit)
        if lo == limit:
            return limit
        hi = min(2 * lo, limit)  # at(lo) fits, at(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.at(mid) <= gpu_bytes else (lo, mid)
        return lo

    def terms(self) -> list[tuple[str, int, str]]:
        """(term, bytes at this batch, what it is) of the peak moment, largest first."""
        out = [(what, round(fixed + self.micro_batch * per), "")
               for what, fixed, per in self.peak.terms]
        return sorted(out, key=lambda t: -t[1])

    def to_json(self) -> dict:
        return {"training_bytes": self.training_bytes, "tensor_bytes": self.tensor_bytes,
                "per_sample_bytes": self.per_sample_bytes, "fixed_bytes": self.fixed_bytes,
                "peak_at": self.peak.where, "batch": self.micro_batch,
                "terms": {what: b for what, b, _ in self.terms()}}


def framework_estimate(input_shape: Sequence[int], layers: Sequence[LayerSpec], *,
                       batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
                       accum_steps: int = 1, stats: ModelStats | None = None,
                       coefficients: Coefficients = COEFFICIENTS,
                       small_allocations: int = 0) -> FrameworkEstimate:
    """The framework model of `layers` (raises SpecError like `analyze`).
    `small_allocations`: requests under this many bytes are not the simulated allocator's
    (0: every tensor counts, as on a GPU; allocator.SMALL_ALLOCATION: as a CPU's
    statistics count them, what the cached measurements are)."""
    if stats is None:
        stats = analyze(input_shape, layers, batch=batch, dtype=dtype, optimizer=optimizer,
                        accum_steps=accum_steps)
    else:
        stats = stats.at(batch=batch, dtype=dtype, optimizer=optimizer, accum_steps=accum_steps)
    moments = _line(stats, layers, dtype, optimizer, accum_steps, coefficients)
    micro = stats.memory.micro_batch
    index = max(range(len(moments)), key=lambda k: moments[k].at(micro))
    peak = step_moments(stats, resolve(layers), dtype, optimizer, accum_steps, coefficients,
                        capture=index)[index]
    allocator = functools.partial(bfc.simulated_peak, step_moments, tuple(stats.input_shape),
                                  tuple(layers),
                                  dtype, optimizer, coefficients, accum_steps,
                                  small_allocations)
    return FrameworkEstimate(
        batch=batch, micro_batch=micro, dtype=dtype, optimizer=optimizer,
        accum_steps=accum_steps, training_bytes=allocator(micro),
        tensor_bytes=round(peak.at(micro)), per_sample_bytes=round(peak.per_sample),
        fixed_bytes=round(peak.fixed), peak=peak, moments=tuple(moments), allocator=allocator)


def framework_training_bytes(stats: ModelStats, layers: Sequence[LayerSpec],
                             coefficients: Coefficients = COEFFICIENTS) -> int:
    """The framework model's (allocator's) peak for `stats`' memory configuration, without
    the terms (what a what-if search needs, fast: the step's tensors are cached per
    network, the allocator's peak per batch)."""
    m = stats.memory
    return bfc.simulated_peak(step_moments, tuple(stats.input_shape), tuple(layers), m.dtype,
                              m.optimizer, coefficients, m.accum_steps, 0, m.micro_batch)


def _line(stats: ModelStats, layers: Sequence[LayerSpec], dtype: str, optimizer: str,
          accum_steps: int, c: Coefficients) -> tuple[Moment, ...]:
    """The moments (without terms) of one configuration; gradient accumulation adds one
    float32 buffer per trainable parameter to every moment."""
    moments = _moments(tuple(stats.input_shape), tuple(layers), dtype, optimizer, c)
    if accum_steps > 1:
        extra = PARAM_BYTES * stats.trainable_params
        moments = tuple(replace(m, fixed=m.fixed + extra) for m in moments)
    return moments


@functools.lru_cache(maxsize=512)
def _moments(input_shape: tuple[int, ...], layers: tuple[LayerSpec, ...], dtype: str,
             optimizer: str, c: Coefficients) -> tuple[Moment, ...]:
    """step_moments without terms, cached: a what-if search asks for one network at many
    batches (the moments do not depend on the batch)."""
    return tuple(step_moments(analyze(input_shape, layers), resolve(layers), dtype,
                              optimizer, 1, c))


def step_moments(stats: ModelStats, specs: Sequence[LayerSpec], dtype: str, optimizer: str,
                 accum_steps: int = 1, c: Coefficients = COEFFICIENTS,
                 capture: int | None = None, events: list | None = None) -> list[Moment]:
    """Replay one training step: the bytes alive at each forward and backward step of every
    layer, at the loss and at the optimizer step, as lines in the batch. Only moment number
    `capture` gets its terms (listing them costs more than the replay). `events`, a list:
    the step's tensors one by one are appended to it, in order, for the allocator's
    simulation (cnnlab.calc.allocator): ("+", key, fixed, per sample) an allocation,
    ("-", key, 0, 0) a free, ("=", key, new key, 0) a buffer that becomes another (an
    add's gradient handed on); what is always alive (`always`) is not among them."""
    mixed = dtype == "mixed_float16"
    act = DTYPES[dtype]
    layers = stats.layers
    n = len(layers)
    elems = {INPUT_NAME: math.prod(stats.input_shape)}
    elems.update({layer.name: layer.activation_elems for layer in layers})
    shapes = {INPUT_NAME: stats.input_shape, **{la.name: la.output_shape for la in layers}}

    saved, buffer, size = kept_tensors(stats, specs, dtype)
    input16 = "images (float16 copy)"

    def source(name: str) -> str:
        """The buffer a layer reads for input `name` (the float16 copy of the images)."""
        b = buffer[name]
        return input16 if (b == INPUT_NAME and mixed) else b

    sizes = dict(size)
    for keep in saved:
        sizes.update(keep)
    # A kept buffer lives until the backward step of the earliest layer that keeps it; a
    # buffer nobody keeps, until its last forward reader has run.
    kept_until: dict[str, int] = {}
    for i in range(n - 1, -1, -1):
        for b in saved[i]:
            kept_until[b] = i
    last_read: dict[str, int] = {input16: 0} if mixed else {}
    for i, layer in enumerate(layers):
        for s in layer.inputs:
            last_read[source(s)] = i

    trainable = stats.trainable_params
    params = PARAM_BYTES * stats.total_params
    slots = PARAM_BYTES * OPTIMIZER_SLOTS[optimizer] * trainable
    accumulators = PARAM_BYTES * trainable if accum_steps > 1 else 0
    weights16 = [2 * layer.params if mixed and layer.kind in ("conv", "dense") else 0
                 for layer in layers]
    out_elems = elems[layers[-1].name]
    always = [("parameters", params, 0.0), ("optimizer slots", slots, 0.0),
              ("runtime", c.runtime_bytes, 0.0),
              ("input batch", 0.0, INPUT_BYTES * elems[INPUT_NAME]),
              ("target batch", 0.0, INPUT_BYTES * out_elems)]
    if accumulators:
        always.append(("gradient accumulators", accumulators, 0.0))
    # BatchNorm reads its input twice (moments and normalization): the two gradients are
    # summed by AccumulateNV2, which grappler turns into a TemporaryVariable; one is still
    # allocated when the next step starts (traced: "AddN_1/tmp_var_zeros", input-sized;
    # summing every BatchNorm's overshoots ResNet by 40%: the largest one is kept).
    needs = needs_gradient(stats)
    bn_sum = max((4 * elems[la.inputs[0]] for la in layers
                  if la.kind == "batchnorm" and needs[la.inputs[0]]), default=0)
    if bn_sum and c.batchnorm_accumulator:
        always.append(("batchnorm input-gradient sums", 0.0, c.batchnorm_accumulator * bn_sum))
    moments: list[Moment] = []
    log = events.append if events is not None else (lambda event: None)
    always_fixed = sum(t[1] for t in always)
    always_per = sum(t[2] for t in always)

    def moment(where: str, per_sum: float, fixed_sum: float, parts) -> None:
        """Record a moment; `parts()` gives its terms, built only for the captured one."""
        terms: tuple = ()
        if capture == len(moments):
            per_sample, fixed = parts()
            terms = (*always, *((w, 0.0, p) for w, p in per_sample.items() if p),
                     *((w, f, 0.0) for w, f in fixed.items() if f))
        moments.append(Moment(where, fixed=always_fixed + fixed_sum,
                              per_sample=always_per + per_sum,
                              terms=terms))

    # ---- forward: outputs appear, what nobody keeps goes after its last reader
    live: dict[str, float] = {input16: size[input16]} if mixed else {}
    live_sum = sum(live.values())
    for b, v in live.items():
        log(("+", b, 0.0, v))
    # Dropout's random numbers read nothing: one op at a time, they run first (traced): a
    # tensor of the output's size, compared into the mask that is kept.
    for layer, keep in zip(layers, saved, strict=True):
        mask = f"{layer.name} mask"
        if mask in keep:
            noise = act * elems[layer.name]
            moment(f"dropout noise of {layer.name}", live_sum + noise + keep[mask], 0.0,
                   lambda noise=noise: ({**live, "dropout noise": noise}, {}))
            for event in (("+", "dropout noise", 0.0, noise), ("+", mask, 0.0, keep[mask]),
                          ("-", "dropout noise", 0, 0)):
                log(event)
            live[mask] = keep[mask]
            live_sum += keep[mask]
    release_forward: dict[int, list[str]] = {}
    for b, i in last_read.items():
        if b not in kept_until:
            release_forward.setdefault(i, []).append(b)
    release_backward: dict[int, list[str]] = {}
    for b, i in kept_until.items():
        release_backward.setdefault(i, []).append(b)
    w16 = 0.0
    for i, layer in enumerate(layers):
        w16 += weights16[i]
        new = {b: sizes[b] for b in (buffer[layer.name], *saved[i])
               if b not in live and b != INPUT_NAME}
        log(("+", f"{layer.name} float16 kernels", weights16[i], 0.0))
        # Mixed precision on a CPU: a float32 copy of the input for Eigen's float16 MatMul
        # and for Keras' mean (it sums float16 in float32) (traced: MatMul [1, batch, n],
        # globalavgpool/Cast, float32).
        cast = 4.0 * elems[layer.inputs[0]] if mixed and layer.kind in (
            "dense", "globalavgpool") and needs[layer.name] else 0.0
        if mixed and layer.kind == "conv" and specs[i].groups > 1:
            # A grouped conv in float16 (Eigen's grouped path, LaunchGrouped in
            # conv_ops_impl.h: the input and output shuffled group-major): a float32
            # temporary of the output's size (traced: 12.0 MB for [16, 27, 27, 256]).
            cast = 4.0 * elems[layer.name]
        # ... and of the kernel (traced: MatMul [1, inputs, units], float32; AlexNet's fc6:
        # 151 MB), only with mixed_cast_gradients (the same traces).
        kernel32 = 4.0 * layer.params if mixed and layer.kind == "dense" \
            and c.mixed_cast_gradients else 0.0
        log(("+", "float32 kernel copy", kernel32, 0.0))
        log(("+", "float32 copy", 0.0, cast))
        for b, v in new.items():
            log(("+", b, 0.0, v))
        log(("-", "float32 copy", 0, 0))
        log(("-", "float32 kernel copy", 0, 0))
        moment(f"forward of {layer.name}", live_sum + sum(new.values()) + cast,
               w16 + kernel32,
               lambda new=new, w16=w16, cast=cast, kernel32=kernel32: (
                   {**live, **new, "float32 copy": cast},
                   {"float16 kernels": w16, "float32 kernel copy": kernel32}))
        live.update(new)
        live_sum += sum(new.values())
        gone = [*release_forward.get(i, ())]
        if buffer[layer.name] not in kept_until and buffer[layer.name] not in last_read:
            gone.append(buffer[layer.name])  # read by nobody: the output
        for b in gone:
            live_sum -= live.pop(b, 0.0)
            log(("-", b, 0, 0))
    # The loss and its gradient: float32 tensors of the output's size.
    loss = c.loss_temporaries * INPUT_BYTES * out_elems
    moment("loss", live_sum + loss, w16,
           lambda: ({**live, "loss temporaries": loss}, {"float16 kernels": w16}))
    for k, x in enumerate(pieces(c.loss_temporaries, INPUT_BYTES * out_elems)):
        log(("+", ("loss temporary", k), 0.0, x))
    for k, _ in enumerate(pieces(c.loss_temporaries, 1.0)):
        log(("-", ("loss temporary", k), 0, 0))
    log(("+", f"d {buffer[layers[-1].name]}", 0.0, act * out_elems))

    # ---- backward, last layer first
    grads: dict[str, float] = {buffer[layers[-1].name]: act * out_elems}
    grads_sum = act * out_elems
    lagging: dict[str, float] = {}
    weight_grads = ready = 0.0
    immediate = c.immediate_updates and not mixed
    for i in range(n - 1, -1, -1):
        spec, layer = specs[i], layers[i]
        kind, out = layer.kind, buffer[layer.name]
        a = spec.activation or "linear"
        if not needs[layer.name]:
            continue  # no backward: nothing before it has weights
        # The input gradients this step allocates (none for an input nothing before has
        # weights for, such as the images; an alias or an add hands the gradient on; a
        # gradient that exists already is summed into).
        if all(buffer[s] == out for s in layer.inputs):
            continue  # an alias: the gradient goes on to the layer below as it is
        new = {buffer[s]: act * elems[s] for s in layer.inputs
               if needs[s] and buffer[s] != out and kind != "add" and buffer[s] not in grads
               and not elementwise(spec)}
        into = source(layer.inputs[0])
        if kind == "maxpool" and mixed and kept_until.get(into) == i:
            # Eigen's MaxPoolGrad writes the input gradient over the input, which nothing
            # reads after it (traced: no new buffer); oneDNN's (float32) allocates one.
            new = {}
        in_bytes = act * sum(elems[s] for s in layer.inputs)
        temps: list[tuple[float, float, float]] = []  # (how many, fixed, per sample of one)
        # Its fixed temporaries, by name: Eigen's float16 im2col buffers (the filter
        # gradient's, alone before the rest, and the input gradient's), a mixed_float16
        # weight gradient before its float32 cast, the optimizer's.
        filter_col = col = raw = 0.0
        if kind == "conv":
            temps.append((c.conv_workspace_out, 0.0, act * elems[layer.name]))
            if mixed and spec.groups > 1:
                # A grouped conv's float16 gradients take Eigen's generic path, not the
                # sharded im2col kernels: float32 temporaries of twice the output and once
                # the input, the whole batch at once (traced, [batch, h, w, C_in] ->
                # [batch, h, w, C_out]: 4 x (2 C_out + C_in) bytes per output pixel for
                # C_in 8, 96 and 192, groups 2 and 4, kernels 3 and 5; AlexNet's conv2,
                # conv4 and conv5 to 0.1%).
                temps.append((1.0, 0.0, 4 * (2 * elems[layer.name] + elems[layer.inputs[0]])))
            elif mixed:
                filter_col, input_col = half_conv_col_buffer_bytes(
                    spec, shapes[layer.inputs[0]], layer.output_shape,
                    first=not needs[layer.inputs[0]])
                filter_col *= c.half_conv_col_buffers
                col = c.half_conv_col_buffers * input_col
                temps.append((c.half_conv_col_buffers, input_col, 0.0))
        elif kind == "maxpool" and mixed:  # Eigen's MaxPoolGrad: int64 argmax per output
            temps.append((1.0, 0.0, 8 * elems[layer.name]))
        elif kind == "batchnorm":  # the input's gradient too, or gamma's and beta's only
            temps.append((c.batchnorm_workspace_in if needs[layer.inputs[0]]
                          else c.batchnorm_weights_workspace_in, 0.0,
                          4 * elems[layer.inputs[0]]))
        elif kind == "dropout" and spec.rate > 0:
            temps.append((c.dropout_workspace_in, 0.0, in_bytes))
        elif kind in ("dense", "globalavgpool") and mixed and needs[layer.inputs[0]]:
            # On a CPU the input's gradient comes in float32 first (traced: MatMul [1,
            # batch, inputs]; globalavgpool/Tile, then its cast to float16).
            temps.append((1.0, 0.0, 4 * elems[layer.inputs[0]]))
        if kind in ("activation", "conv", "dense") and a != "linear" \
                and a not in OUTPUT_GRADIENT_ACTIVATIONS:
            temps.append((c.activation_workspace_in, 0.0, act * elems[layer.name]))
        if immediate:  # this layer's gradient, updated and freed now
            weight_grads = PARAM_BYTES * layer.trainable_params
            update = (c.update_temporaries, weight_grads)
        else:
            weight_grads += PARAM_BYTES * layer.trainable_params
            if mixed and c.mixed_cast_gradients:
                raw = (PARAM_BYTES if kind == "dense" else 2) * layer.trainable_params
                temps.append((1.0, raw, 0.0))
            else:
                weight_grads += weights16[i]
            ready = max(ready, PARAM_BYTES * layer.trainable_params)
            update = (c.optimizer_during_backward, ready)
        temps.append((*update, 0.0))
        work = sum(k * per for k, _, per in temps)
        fixed = {"float16 kernels": w16, "weight gradients": weight_grads,
                 "float16 im2col buffers": col,
                 "weight gradient before its float32 cast": raw,
                 "optimizer temporaries": update[0] * update[1]}
        log(("+", f"d {layer.name} weights", PARAM_BYTES * layer.trainable_params, 0.0))
        if not c.mixed_cast_gradients:
            log(("+", f"d {layer.name} float16 weights", weights16[i], 0.0))
        if filter_col:  # the filter's gradient first, with its own im2col buffer
            early = {**fixed, "float16 im2col buffers": filter_col, "optimizer temporaries": 0,
                     "weight gradient before its float32 cast": 0}
            moment(f"backward of {layer.name} (filter)",
                   live_sum + grads_sum + sum(lagging.values()), sum(early.values()),
                   lambda early=early, lagging=lagging: (
                       {**live, **{f"d {b}": v for b, v in grads.items()},
                        **{f"d {b} (lagging)": v for b, v in lagging.items()}}, early))
            log(("+", "filter im2col", filter_col, 0.0))
            log(("-", "filter im2col", 0, 0))
        early_free = []
        if kind == "conv" and c.filter_first and new:
            inputs = {source(s) for s in layer.inputs}
            early_free = [b for b in release_backward.get(i, ()) if b in inputs]
            for b in early_free:
                live_sum -= live.pop(b, 0.0)
                log(("-", b, 0, 0))
        for b, v in new.items():
            log(("+", f"d {b}", 0.0, v))
        temp_keys = [("temporary", k) for k in range(sum(len(pieces(n, 1.0)) for n, _, _
                                                         in temps))]
        for key, (f, per) in zip(temp_keys, ((f * x, per * x) for n, f, per in temps
                                             for x in pieces(n, 1.0)), strict=True):
            log(("+", key, f, per))
        moment(f"backward of {layer.name}",
               live_sum + grads_sum + sum(lagging.values()) + sum(new.values()) + work,
               sum(fixed.values()),
               lambda new=new, work=work, fixed=fixed, layer=layer, lagging=lagging: (
                   {**live, **{f"d {b}": v for b, v in grads.items()},
                    **{f"d {b} (lagging)": v for b, v in lagging.items()},
                    **{f"d {b}": v for b, v in new.items()},
                    f"{layer.name} backward workspace": work}, fixed))
        # Released: this layer's output gradient (it may lag one step) and what it kept.
        for key in (*temp_keys, *(f"d {b} (lagging)" for b in lagging)):
            log(("-", key, 0, 0))
        done = grads.pop(out, None)
        # An add's and an element-wise layer's gradient go on to the (first) input.
        handed = done is not None and (kind == "add" or elementwise(spec))
        if done is None:
            done = act * elems[layer.name]
        else:
            grads_sum -= done
            if not handed:
                log(("-", f"d {out}", 0, 0))
        lagging = {out: c.lagging_gradient * done} if kind == "conv" else {}
        shared = False  # add's inputs all receive the one output gradient buffer
        for s in layer.inputs:
            b = buffer[s]
            if needs[s] and b != out and b not in grads:
                grads[b] = 0.0 if shared else act * elems[s]
                grads_sum += grads[b]
                if handed and not shared:
                    log(("=", f"d {out}", f"d {b}", 0))
                    handed = False
                elif kind == "maxpool" and b not in new:  # Eigen's MaxPoolGrad, in place
                    log(("=", b, f"d {b}", 0))
                shared = kind == "add"
        if handed:
            log(("-", f"d {out}", 0, 0))
        for b in release_backward.get(i, ()):
            if b in early_free:
                continue
            live_sum -= live.pop(b, 0.0)
            log(("-", b, 0, 0))
        for b, v in lagging.items():
            log(("+", f"d {b} (lagging)", 0.0, v))
        log(("-", f"{layer.name} float16 kernels", 0, 0))
        if immediate:
            log(("-", f"d {layer.name} weights", 0, 0))
        w16 -= weights16[i]
    if immediate:
        return moments
    # ---- optimizer step: every weight gradient, plus temporaries of the largest variable.
    largest = max((PARAM_BYTES * layer.trainable_params for layer in layers), default=0)
    fixed = {"weight gradients": PARAM_BYTES * trainable * (
                 1 + (c.mixed_gradient_copies if mixed else 0)),
             "optimizer temporaries": c.optimizer_temporaries * largest}
    moment("optimizer step", 0.0, sum(fixed.values()), lambda: ({}, fixed))
    for layer in layers:  # the loss-scale optimizer's float32 copy of each gradient
        for k, x in enumerate(pieces(c.mixed_gradient_copies if mixed else 0.0, 1.0)):
            log(("+", (layer.name, "gradient copy", k), x * PARAM_BYTES * layer.trainable_params,
                 0.0))
    for k, x in enumerate(pieces(c.optimizer_temporaries, largest)):
        log(("+", ("optimizer temporary", k), x, 0.0))
    return moments
