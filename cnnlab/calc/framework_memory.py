"""The framework memory model: what Keras 3 on TensorFlow keeps during one training step.

The textbook count (`cnnlab.calc`'s MemoryEstimate) keeps every layer's output for the
backward pass. TensorFlow keeps what the gradient functions read and frees every tensor when
its last reader has run; the peak comes in the backward pass, when the tensors kept by the
layers not yet differentiated, the gradients in flight and the weight gradients are alive
together. `step_moments` replays that step layer by layer (pure Python, no TensorFlow): at
each moment the bytes alive are fixed + batch x per-sample, and the peak is the largest.

What each layer keeps (`kept_tensors`) is read off TensorFlow's gradient registrations
(`tensorflow/python/ops/nn_grad.py`, `math_grad.py`) and Keras 3's layers, and is checked
against the traced `train_step` graph (tests/test_framework_memory.py): a conv or dense
layer keeps its input, not its output; an activation its output (relu, tanh, sigmoid,
softmax, elu, selu) or its input (gelu, swish, ...); max pooling its input, its output and
oneDNN's 1-byte workspace; BatchNorm its input as float32; dropout a 1-byte mask; average
pooling, flatten, zero padding, concat and add nothing; layers before the first weights have
no backward at all. `memory_gap.RULES` says the same in the page's words.

Always alive: the input and target batches (float32; the measurement's loss is mean squared
error), the parameters, the optimizer's slots (SGD 0, momentum 1, Adam 2 per trainable
parameter) and a runtime term. The constants that are not tensor sizes (`Coefficients`) were
fitted in two stages by bench/memory_fit.py to tests/data/memory_measurements.json (slopes:
least-squares lines through five batches, each in a fresh process; memory_cases): first to
the bytes the tensors requested (the allocator's trace), then the allocator's rounding to its
peaks. Each constant's comment says what it stands for and what was seen.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cnnlab.calc.analysis import ModelStats, analyze, resolve
from cnnlab.calc.memory import DTYPES, INPUT_BYTES, OPTIMIZER_SLOTS, PARAM_BYTES
from cnnlab.calc.spec import INPUT_NAME, LayerSpec

# Activations whose TensorFlow gradient reads the output (nn_grad.py, math_grad.py).
OUTPUT_GRADIENT_ACTIVATIONS = frozenset({"relu", "relu6", "elu", "selu", "sigmoid", "tanh",
                                         "softmax", "log_softmax", "exponential"})
MASK_BYTES = 1  # dropout's boolean keep-mask


@dataclass(frozen=True)
class BackwardCoefficients:
    """The backward pass's temporaries, as multiples of a layer's tensors (the first half of
    `Coefficients`)."""

    # A conv's backward step: workspace beyond the gradient of its input, as a multiple of
    # the output gradient. oneDNN's scratchpads do not go through TensorFlow's allocator,
    # so on a CPU in float32 nothing is seen.
    conv_workspace_out: float = 0.0
    # The gradient of the layer above may still be alive while this layer's backward runs:
    # its filter gradient is scheduled after the input gradient it produced (traced: at the
    # seed exercise's peak, conv3's output gradient is alive in conv2's backward).
    lagging_gradient: float = 0.16
    # BatchNorm's composed backward: float32 temporaries of the input's size (traced:
    # moments/Tile, moments/Tile_1, moments/sub are alive together, three; the fit to the
    # fresh-process series agrees), fewer when only gamma and beta need a gradient (a
    # BatchNorm before any weights).
    batchnorm_workspace_in: float = 3.0
    batchnorm_weights_workspace_in: float = 1.0
    # Sums of BatchNorm input gradients that outlive the step (see step_moments).
    batchnorm_accumulator: float = 0.81
    # Dropout's gradient: SelectV2 needs zeros_like(grad), a tensor of the input's size.
    dropout_workspace_in: float = 0.0
    # An activation whose gradient reads its input (gelu, swish, ...) computes a temporary.
    activation_workspace_in: float = 1.0
    # The mean-squared-error loss: float32 tensors of the output's size alive in its
    # backward (the cast prediction, the difference, the tiled gradient of the mean).
    loss_temporaries: float = 3.75


@dataclass(frozen=True)
class Coefficients(BackwardCoefficients):
    """The constants that are not sizes of tensors: the backward pass's temporaries above,
    then the allocator, the optimizer and mixed precision below. Defaults: the fitted values
    (bench/memory_fit.py against tests/data/memory_measurements.json); each comment says
    what the constant stands for and what it was seen to be."""

    # The allocator counts whole chunks: its peak over the bytes requested, for the
    # per-sample part. BFC (tensorflow/core/common_runtime/bfc_allocator.cc) grows in
    # regions of 2 MiB x 2^k and hands a free chunk under twice the request over whole, so
    # a tensor that opens a region takes the next power of two (traced: random stack 9's
    # 75.5 MB conv output in a 134.2 MB chunk). Per network and batch it is 1.0x to 1.8x (a
    # staircase in the batch); this is its average over the fitted cases.
    allocator_rounding: float = 1.15
    # Optimizer step: temporaries the size of the largest variable.
    optimizer_temporaries: float = 0.0
    # TensorFlow runs a variable's update as soon as its gradient exists, while the
    # backward pass goes on below it (traced: VGG16 and AlexNet peak in Adam's ops with
    # the conv maps still alive): temporaries of the largest variable whose gradient exists.
    optimizer_during_backward: float = 1.7
    # mixed_float16 on a CPU: Eigen's float16 conv gradients' im2col buffers (the formula
    # in half_conv_col_buffer_bytes, from tensorflow/core/kernels/conv_grad_input_ops.h).
    half_conv_col_buffers: float = 0.64
    # mixed_float16: the loss-scale optimizer unscales every gradient into a new float32
    # tensor before the update; this many extra gradient copies are alive at the step.
    mixed_gradient_copies: float = 2.0
    runtime_bytes: int = 0  # small tensors; under 256 KiB a CPU's statistics miss them


COEFFICIENTS = Coefficients()


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
    """The framework model's peak of one training step at one batch."""

    batch: int
    micro_batch: int
    dtype: str
    optimizer: str
    accum_steps: int
    training_bytes: int  # the peak at the micro-batch
    per_sample_bytes: int  # the slope of the moment that peaks at this batch
    fixed_bytes: int  # its intercept
    peak: Moment  # the moment that peaks
    moments: tuple[Moment, ...] = field(repr=False)

    def at(self, batch: int) -> int:
        """The peak at another (micro-)batch: the largest moment there."""
        return round(max(m.at(batch) for m in self.moments))

    def slope(self, b1: int, b2: int) -> float:
        """The per-sample slope between two batches, as a measurement takes it."""
        return (self.at(b2) - self.at(b1)) / (b2 - b1)

    def max_batch(self, gpu_bytes: float) -> int:
        """The largest batch whose peak fits `gpu_bytes` (0 if none): every moment must."""
        best = None
        for m in self.moments:
            if m.per_sample <= 0:
                if m.fixed > gpu_bytes:
                    return 0
                continue
            room = (gpu_bytes - m.fixed) // m.per_sample
            best = room if best is None else min(best, room)
        return max(0, int(best)) if best is not None else 0

    def terms(self) -> list[tuple[str, int, str]]:
        """(term, bytes at this batch, what it is) of the peak moment, largest first."""
        out = [(what, round(fixed + self.micro_batch * per), "")
               for what, fixed, per in self.peak.terms]
        return sorted(out, key=lambda t: -t[1])

    def to_json(self) -> dict:
        return {"training_bytes": self.training_bytes,
                "per_sample_bytes": self.per_sample_bytes, "fixed_bytes": self.fixed_bytes,
                "peak_at": self.peak.where, "batch": self.micro_batch,
                "terms": {what: b for what, b, _ in self.terms()}}


L3_TARGET_BYTES = 30 << 20  # conv_grad_*_ops: "Use L3 cache size as target working set size"
L2_CACHE_BYTES = 256 << 10


def half_conv_col_buffer_bytes(spec: LayerSpec, in_shape: Sequence[int],
                               out_shape: Sequence[int], *, first: bool) -> float:
    """Bytes of the larger float16 im2col buffer of a conv layer's backward step on a CPU.
    Conv2DCustomBackpropFilter and (unless the layer reads the images) -BackpropInput run
    one after the other, each with a buffer of shard_size x output pixels x kh*kw*C_in
    values, shard_size = ceil(30 MiB / 2 bytes / work_unit) with work_unit the three matmul
    operands of one image (tensorflow/core/kernels/conv_grad_input_ops.h); the input
    gradient's shard is 1 when a thread's share of work_unit exceeds the 256 KiB L2 cache.
    A fixed size: the buffer does not grow with the batch."""
    import os

    oh, ow, out_depth = out_shape
    kh, kw = spec.kernel
    pixels = oh * ow
    filter_total = kh * kw * in_shape[-1] // max(1, spec.groups)
    work_unit = pixels * filter_total + pixels * out_depth + filter_total * out_depth
    shard = -(-(L3_TARGET_BYTES // 2) // work_unit)
    column = pixels * filter_total * 2  # one image's im2col matrix, float16
    if first:
        return float(shard * column)
    threads = os.cpu_count() or 1
    parallel = work_unit // threads >= L2_CACHE_BYTES // 2
    return float(max(shard, 1 if parallel else shard) * column)


def framework_estimate(input_shape: Sequence[int], layers: Sequence[LayerSpec], *,
                       batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
                       accum_steps: int = 1, stats: ModelStats | None = None,
                       coefficients: Coefficients = COEFFICIENTS) -> FrameworkEstimate:
    """The framework model of `layers` (raises SpecError like `analyze`)."""
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
    return FrameworkEstimate(
        batch=batch, micro_batch=micro, dtype=dtype, optimizer=optimizer,
        accum_steps=accum_steps, training_bytes=round(peak.at(micro)),
        per_sample_bytes=round(peak.per_sample), fixed_bytes=round(peak.fixed), peak=peak,
        moments=tuple(moments))


def needs_gradient(stats: ModelStats) -> dict[str, bool]:
    """Layer name -> whether its backward runs: it has weights, or a layer before it does
    (the gradient must reach those weights through it). The images need none."""
    needs = {INPUT_NAME: False}
    for layer in stats.layers:
        needs[layer.name] = layer.trainable_params > 0 or any(needs[s] for s in layer.inputs)
    return needs


def kept_tensors(stats: ModelStats, specs: Sequence[LayerSpec], dtype: str
                 ) -> tuple[list[dict[str, float]], dict[str, str], dict[str, float]]:
    """What each layer keeps for its backward pass, per sample: a list (one dict per layer,
    buffer name -> bytes), the buffer each layer's output lives in (a flatten, a linear
    activation or a dropout of rate 0 shares its input's) and each output buffer's bytes.
    "images (float16 copy)" is the first layer's cast under mixed precision."""
    mixed = dtype == "mixed_float16"
    act = DTYPES[dtype]
    layers = stats.layers
    elems = {INPUT_NAME: math.prod(stats.input_shape)}
    elems.update({layer.name: layer.activation_elems for layer in layers})
    # Buffers: an alias (flatten, linear activation, dropout 0) shares its source's buffer.
    buffer = {INPUT_NAME: INPUT_NAME}
    for spec, layer in zip(specs, layers, strict=True):
        alias = (layer.kind == "flatten"
                 or (layer.kind == "activation" and spec.activation == "linear")
                 or (layer.kind == "dropout" and spec.rate == 0))
        buffer[layer.name] = buffer[layer.inputs[0]] if alias else layer.name
    size: dict[str, float] = {INPUT_NAME: INPUT_BYTES * elems[INPUT_NAME]}
    size.update({layer.name: act * elems[layer.name] for layer in layers})
    input16 = "images (float16 copy)"
    size[input16] = 2 * elems[INPUT_NAME]

    def source(name: str) -> str:
        """The buffer a layer reads for input `name` (the float16 copy of the images)."""
        b = buffer[name]
        return input16 if (b == INPUT_NAME and mixed) else b

    # What each layer keeps for its backward pass: buffer -> bytes per sample. A layer
    # with no weights at or above it (pools straight after the images) has no backward:
    # TensorFlow prunes the gradient ops nothing needs, and keeps nothing for them.
    needs = needs_gradient(stats)
    saved: list[dict[str, float]] = []
    for spec, layer in zip(specs, layers, strict=True):
        keep: dict[str, float] = {}
        if not needs[layer.name]:
            saved.append(keep)
            continue
        kind, out, into = layer.kind, buffer[layer.name], source(layer.inputs[0])
        a = spec.activation or "linear"
        if kind in ("conv", "dense"):
            keep[into] = size[into]
            if a in OUTPUT_GRADIENT_ACTIVATIONS:
                keep[out] = size[out]
            elif a != "linear":
                keep[f"{layer.name} pre-activation"] = size[out]
        elif kind == "activation":
            if a in OUTPUT_GRADIENT_ACTIVATIONS:
                keep[out] = size[out]
            elif a != "linear":
                keep[into] = size[into]
        elif kind in ("maxpool", "globalmaxpool", "lrn"):
            keep[into] = size[into]
            keep[out] = size[out]
            if kind == "maxpool" and not mixed:  # oneDNN's workspace: 1 byte per output
                keep[f"{layer.name} workspace"] = MASK_BYTES * elems[layer.name]
        elif kind == "batchnorm":
            if mixed:
                keep[f"{layer.name} float32 input"] = 4 * elems[layer.inputs[0]]
            else:
                keep[into] = size[into]
        elif kind == "dropout" and spec.rate > 0:
            keep[f"{layer.name} mask"] = MASK_BYTES * elems[layer.name]
        saved.append(keep)
    return saved, buffer, size


def framework_training_bytes(stats: ModelStats, layers: Sequence[LayerSpec],
                             coefficients: Coefficients = COEFFICIENTS) -> int:
    """The framework model's peak for `stats`' memory configuration, without the terms
    (what a what-if search needs, fast: the replay is cached per network)."""
    m = stats.memory
    moments = _line(stats, layers, m.dtype, m.optimizer, m.accum_steps, coefficients)
    return round(max(moment.at(m.micro_batch) for moment in moments))


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
                 capture: int | None = None) -> list[Moment]:
    """Replay one training step: the bytes alive at each forward and backward step of every
    layer, at the loss and at the optimizer step, as lines in the batch. Only moment number
    `capture` gets its terms (listing them costs more than the replay)."""
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
                              per_sample=c.allocator_rounding * (always_per + per_sum),
                              terms=terms))

    # ---- forward: outputs appear, what nobody keeps goes after its last reader
    live: dict[str, float] = {input16: size[input16]} if mixed else {}
    live_sum = sum(live.values())
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
        moment(f"forward of {layer.name}", live_sum + sum(new.values()), w16,
               lambda new=new, w16=w16: ({**live, **new}, {"float16 kernels": w16}))
        live.update(new)
        live_sum += sum(new.values())
        for b in release_forward.get(i, ()):
            live_sum -= live.pop(b, 0.0)
        if buffer[layer.name] not in kept_until and buffer[layer.name] not in last_read:
            live_sum -= live.pop(buffer[layer.name], 0.0)  # read by nobody: the output
    # The loss and its gradient: float32 tensors of the output's size.
    loss = c.loss_temporaries * INPUT_BYTES * out_elems
    moment("loss", live_sum + loss, w16,
           lambda: ({**live, "loss temporaries": loss}, {"float16 kernels": w16}))

    # ---- backward, last layer first
    grads: dict[str, float] = {buffer[layers[-1].name]: act * out_elems}
    grads_sum = act * out_elems
    lagging: dict[str, float] = {}
    weight_grads = ready = 0.0
    for i in range(n - 1, -1, -1):
        spec, layer = specs[i], layers[i]
        kind, out = layer.kind, buffer[layer.name]
        a = spec.activation or "linear"
        if not needs[layer.name]:
            continue  # no backward: nothing before it has weights
        # The input gradients this step allocates (none for an input nothing before has
        # weights for, such as the images; an alias or an add hands the gradient on; a
        # gradient that exists already is summed into).
        new = {buffer[s]: act * elems[s] for s in layer.inputs
               if needs[s] and buffer[s] != out and kind != "add" and buffer[s] not in grads}
        into = source(layer.inputs[0])
        if kind == "maxpool" and mixed and kept_until.get(into) == i:
            # Eigen's MaxPoolGrad writes the input gradient over the input, which nothing
            # reads after it (traced: no new buffer); oneDNN's (float32) allocates one.
            new = {}
        in_bytes = act * sum(elems[s] for s in layer.inputs)
        work, col = 0.0, 0.0
        if kind == "conv":
            work = c.conv_workspace_out * act * elems[layer.name]
            if mixed:
                col = c.half_conv_col_buffers * half_conv_col_buffer_bytes(
                    spec, shapes[layer.inputs[0]], layer.output_shape,
                    first=not needs[layer.inputs[0]])
        elif kind == "maxpool" and mixed:  # Eigen's MaxPoolGrad: int64 argmax per output
            work = 8 * elems[layer.name]
        elif kind == "batchnorm":  # the input's gradient too, or gamma's and beta's only
            work = (c.batchnorm_workspace_in if needs[layer.inputs[0]]
                    else c.batchnorm_weights_workspace_in) * 4 * elems[layer.inputs[0]]
        elif kind == "dropout" and spec.rate > 0:
            work = c.dropout_workspace_in * in_bytes
        if kind in ("activation", "conv", "dense") and a != "linear" \
                and a not in OUTPUT_GRADIENT_ACTIVATIONS:
            work += c.activation_workspace_in * act * elems[layer.name]
        weight_grads += PARAM_BYTES * layer.trainable_params + weights16[i]
        ready = max(ready, PARAM_BYTES * layer.trainable_params)
        fixed = {"float16 kernels": w16, "weight gradients": weight_grads,
                 "float16 im2col buffers": col,
                 "optimizer temporaries": c.optimizer_during_backward * ready}
        moment(f"backward of {layer.name}",
               live_sum + grads_sum + sum(lagging.values()) + sum(new.values()) + work,
               sum(fixed.values()),
               lambda new=new, work=work, fixed=fixed, layer=layer, lagging=lagging: (
                   {**live, **{f"d {b}": v for b, v in grads.items()},
                    **{f"d {b} (lagging)": v for b, v in lagging.items()},
                    **{f"d {b}": v for b, v in new.items()},
                    f"{layer.name} backward workspace": work}, fixed))
        # Released: this layer's output gradient (it may lag one step) and what it kept.
        done = grads.pop(out, None)
        if done is None:
            done = act * elems[layer.name]
        else:
            grads_sum -= done
        lagging = {out: c.lagging_gradient * done} if kind == "conv" else {}
        shared = False  # add's inputs all receive the one output gradient buffer
        for s in layer.inputs:
            b = buffer[s]
            if needs[s] and b != out and b not in grads:
                grads[b] = 0.0 if shared else act * elems[s]
                grads_sum += grads[b]
                shared = kind == "add"
        for b in release_backward.get(i, ()):
            live_sum -= live.pop(b, 0.0)
        w16 -= weights16[i]
    # ---- optimizer step: every weight gradient, plus temporaries of the largest variable.
    largest = max((PARAM_BYTES * layer.trainable_params for layer in layers), default=0)
    fixed = {"weight gradients": PARAM_BYTES * trainable * (
                 1 + (c.mixed_gradient_copies if mixed else 0)),
             "optimizer temporaries": c.optimizer_temporaries * largest}
    moment("optimizer step", 0.0, sum(fixed.values()), lambda: ({}, fixed))
    return moments
