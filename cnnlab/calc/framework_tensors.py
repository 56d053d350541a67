"""The tensors of the framework memory model (cnnlab.calc.framework_memory): what each layer
keeps for its backward pass, which layers run in place, and the float16 im2col buffers of a
CPU's conv gradients. The rules' sources are in each docstring and comment."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnnlab.calc.analysis import ModelStats
from cnnlab.calc.memory import DTYPES, INPUT_BYTES
from cnnlab.calc.spec import INPUT_NAME, LayerSpec

# Activations whose TensorFlow gradient reads the output (nn_grad.py, math_grad.py).
OUTPUT_GRADIENT_ACTIVATIONS = frozenset({"relu", "relu6", "elu", "selu", "sigmoid", "tanh",
                                         "softmax", "log_softmax", "exponential"})
MASK_BYTES = 1  # dropout's boolean keep-mask
# Element-wise activations: TensorFlow's kernel writes its output over its input when nothing
# else holds the input (OpKernelContext::forward_input_or_allocate_output), and its gradient
# over the output's gradient (traced: no new tensor for Relu, Tanh or their gradients after a
# linear conv).
IN_PLACE_ACTIVATIONS = OUTPUT_GRADIENT_ACTIVATIONS - {"softmax", "log_softmax"}


def elementwise(spec: LayerSpec) -> bool:
    """An activation layer that TensorFlow may run in place, or a dropout."""
    return ((spec.kind == "activation" and spec.activation in IN_PLACE_ACTIVATIONS)
            or (spec.kind == "dropout" and spec.rate > 0))


def pieces(count: float, one: float) -> list[float]:
    """`count` tensors of `one` byte(s) as an allocator sees them: the whole ones, then
    what a fitted fraction stands for (a tensor alive part of the time) as one more."""
    whole = int(count)
    return [one] * whole + ([(count - whole) * one] if count > whole else [])


L3_TARGET_BYTES = 30 << 20  # conv_grad_*_ops: "Use L3 cache size as target working set size"
L2_CACHE_BYTES = 256 << 10


def half_conv_col_buffer_bytes(spec: LayerSpec, in_shape: Sequence[int],
                               out_shape: Sequence[int], *, first: bool
                               ) -> tuple[float, float]:
    """Bytes of the float16 im2col buffers of a conv layer's backward step on a CPU: (the
    filter gradient's, the input gradient's). Conv2DCustomBackpropFilter and (unless the
    layer reads the images: 0) -BackpropInput run one after the other (traced: the filter's
    first, its buffer freed before the input's gradient is allocated), each with a buffer of
    shard_size x output pixels x kh*kw*C_in values, shard_size = ceil(30 MiB / 2 bytes /
    work_unit) with work_unit the three matmul operands of one image
    (tensorflow/core/kernels/conv_grad_input_ops.h); the input gradient's shard is 1 when a
    thread's share of work_unit exceeds the 256 KiB L2 cache. Fixed sizes: the buffers do
    not grow with the batch."""
    import os

    oh, ow, out_depth = out_shape
    kh, kw = spec.kernel
    pixels = oh * ow
    filter_total = kh * kw * in_shape[-1] // max(1, spec.groups)
    work_unit = pixels * filter_total + pixels * out_depth + filter_total * out_depth
    shard = -(-(L3_TARGET_BYTES // 2) // work_unit)
    column = pixels * filter_total * 2  # one image's im2col matrix, float16
    if first:
        return float(shard * column), 0.0
    threads = os.cpu_count() or 1
    parallel = work_unit // threads >= L2_CACHE_BYTES // 2
    return float(shard * column), float((1 if parallel else shard) * column)


def needs_gradient(stats: ModelStats) -> dict[str, bool]:
    """Layer name -> whether its backward runs: it has weights, or a layer before it does
    (the gradient must reach those weights through it). The images need none."""
    needs = {INPUT_NAME: False}
    for layer in stats.layers:
        needs[layer.name] = layer.trainable_params > 0 or any(needs[s] for s in layer.inputs)
    return needs


def kept_tensors(stats: ModelStats, specs: Sequence[LayerSpec], dtype: str,
                 in_place: frozenset[str] | None = None
                 ) -> tuple[list[dict[str, float]], dict[str, str], dict[str, float]]:
    """What each layer keeps for its backward pass, per sample: a list (one dict per layer,
    buffer name -> bytes), the buffer each layer's output lives in (a flatten, a linear
    activation or a dropout of rate 0 shares its input's, and so does an element-wise layer
    whose input nobody keeps or reads besides it: `in_place`, found when None) and each
    output buffer's bytes. "images (float16 copy)" is the first layer's cast under mixed
    precision."""
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
                 or (layer.kind == "dropout" and spec.rate == 0)
                 or layer.name in (in_place or ()))
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
    if in_place is None:  # traced: a dropout after a linear conv makes no new tensor
        kept = {b for keep in saved for b in keep}
        readers: dict[str, list[str]] = {}
        for layer in layers:
            for b in {buffer[s] for s in layer.inputs} - {buffer[layer.name]}:
                readers.setdefault(b, []).append(layer.name)
        found = frozenset(layer.name for spec, layer in zip(specs, layers, strict=True)
                          if elementwise(spec) and buffer[layer.inputs[0]] not in kept
                          and buffer[layer.inputs[0]] != INPUT_NAME
                          and readers[buffer[layer.inputs[0]]] == [layer.name])
        if found:
            return kept_tensors(stats, specs, dtype, found)
    return saved, buffer, size
