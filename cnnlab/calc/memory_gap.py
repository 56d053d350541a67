"""Why measured and predicted memory differ: the framework model's rules in words and the
sentences the Calculator page shows beside a measurement (cnnlab.calc.measure)."""

from __future__ import annotations

from cnnlab.calc.framework_memory import FrameworkEstimate

RULES: tuple[str, ...] = (
    "Conv and dense keep their input, not their output (Conv2DBackpropFilter and MatMul "
    "read the input for the weight gradient: tensorflow/python/ops/nn_grad.py, "
    "math_grad.py).",
    "A fused or separate activation keeps its output when its gradient reads the output "
    "(relu, elu, selu, sigmoid, tanh, softmax: `_ReluGrad(op.outputs[0])`), else its input "
    "(leaky_relu, gelu, swish, softplus).",
    "Max pooling keeps its input and its output (MaxPoolGrad); average pooling, flatten, "
    "zero padding, concat and add keep nothing (their gradients need only shapes).",
    "BatchNormalization (Keras 3 composes tf.nn.moments and tf.nn.batch_normalization) keeps "
    "its input upcast to float32: under mixed_float16 a separate 4-byte copy.",
    "Dropout keeps a 1-byte boolean mask (stateless_dropout's where(); SelectV2's gradient "
    "reads the condition); LRN keeps its input and output (LRNGrad).",
    "An element-wise layer (relu, tanh, sigmoid, dropout, ...) writes its output over an "
    "input nothing else holds, and its gradient over its output's gradient "
    "(forward_input_or_allocate_output: no new tensor).",
    "mixed_float16: the first layer keeps a float16 copy of the images; conv and dense keep "
    "a float16 copy of their kernel; on a CPU, Eigen's float16 conv gradients allocate "
    "im2col buffers of up to 30 MiB (conv_grad_input_ops.h), dense layers and global "
    "average pooling make float32 copies of their input.",
    "Backward pass, last layer first: the kept tensors of the layers not yet "
    "differentiated, the output gradient in flight, the new input gradient and a workspace. "
    "float32: a variable's update runs as soon as its gradient exists and frees it, so "
    "weight gradients do not pile up (VGG16 peaks in fc1's update). mixed_float16: each "
    "gradient is cast to float32 and waits, because the loss-scale optimizer checks them "
    "all before any update.",
    "A conv's filter gradient runs before its input gradient (the usual order of "
    "TensorFlow's executor, which picks it at run time): a conv's input that no layer "
    "below keeps is freed before the input's gradient is allocated.",
    "Always alive: parameters, optimizer slots (Adam 2, momentum 1, SGD 0 per trainable "
    "parameter), the input and target batches (float32) and a small runtime term.",
    "The allocator (TensorFlow's BFC, oneDNN's on a CPU) hands over whole chunks: it grows "
    "in regions (2 MiB, each new one at least twice the last) and hands a free chunk under "
    "twice a request over whole. Its peak is simulated over the step's tensors one by one "
    "(cnnlab.calc.allocator): a staircase in the batch, 1.0x to 1.8x the tensors' bytes.",
    "Fitted on TensorFlow 2.21 on a CPU (tests/data/memory_measurements.json); a GPU's "
    "cuDNN workspaces are not modelled (bench/gpu_memory.py compares).",
)


def op_layer(op: str) -> str | None:
    """The layer a traced op belongs to: 'gradient_tape/cnnlab_1/conv2_1/convolution/
    Conv2DBackpropInput' -> 'conv2'. The model's own scope comes first ("cnnlab_1";
    gradient_tape/ before it), the layer's next ("conv2_1"); None outside the layers."""
    scopes = [p for p in op.split("/")[:-1] if p.endswith("_1")]
    return scopes[1].rsplit("_", 1)[0] if len(scopes) > 1 else None


def _op_phase(op: str | None) -> str:
    """'gradient_tape/cnnlab_1/conv2_1/convolution/Conv2DBackpropInput' -> 'the backward
    of conv2 (Conv2DBackpropInput)'; Adam's ops -> 'the optimizer's update'."""
    if not op:
        return "an op the trace does not name"
    parts = op.split("/")
    kernel = parts[-1]
    if any(p.lower() in ("adam", "sgd", "loss_scale_optimizer") for p in parts) \
            or kernel.lower() in ("adam", "sgd"):
        return f"the optimizer's update ({kernel})"
    layer = op_layer(op)
    if parts[0] == "gradient_tape":
        return f"the backward of {layer} ({kernel})" if layer else f"the backward ({kernel})"
    return f"the forward of {layer} ({kernel})" if layer else f"the op {op}"


def explain_gap(measured, fw: FrameworkEstimate, textbook) -> list[str]:
    """Sentences that say where measured, framework model and textbook count part ways.
    `measured`: a cnnlab.calc.measure.Measurement; `textbook`: the MemoryEstimate at the
    measurement's larger batch."""
    from cnnlab.calc.report import format_bytes

    b2, p2 = measured.batches[1], measured.peaks[1]
    lines = [
        f"Measured on {measured.device} ({measured.backend}) in {measured.seconds:.0f} s: "
        f"{format_bytes(p2)} at batch {b2}. The framework model says "
        f"{format_bytes(fw.at(b2))} ({fw.at(b2) / p2:.2f}x), the textbook count "
        f"{format_bytes(textbook.training_bytes)} ({textbook.training_bytes / p2:.2f}x).",
        f"Before the step the allocator held {format_bytes(measured.resident_bytes)}: the "
        f"parameters and optimizer slots ({format_bytes(textbook.params_bytes + textbook.optimizer_bytes)}) "
        "and the input and target batches; everything above that is what the step "
        "allocates.",
        f"TensorFlow peaked in {_op_phase(measured.peak_op)}; the framework model peaks in "
        f"the {fw.peak.where}.",
    ]
    per = sorted(((what, p) for what, _, p in fw.peak.terms if p > 0), key=lambda t: -t[1])
    if per:
        top = ", ".join(f"{what} {format_bytes(p)}" for what, p in per[:4])
        lines.append(
            f"Per sample, the textbook keeps every layer's output "
            f"({format_bytes(textbook.per_sample_bytes)}); at the model's peak TensorFlow "
            f"holds {format_bytes(fw.peak.per_sample)}, mostly {top}: a conv keeps its "
            "input rather than its output, gradients in flight and workspace come on top, "
            "and outputs no gradient reads are freed.")
    if measured.tensor_peaks:
        t2 = measured.tensor_peaks[1]
        lines.append(
            f"The tensors themselves asked for {format_bytes(t2)} at batch {b2}; the "
            f"allocator's peak counts whole chunks of its pool ({p2 / t2:.2f}x): a free "
            "chunk less than twice a request is handed over whole.")
    lines.append("Repeated measurements differ by a few percent: which independent op runs "
                 "first, and where the free chunks lie, change from run to run.")
    return lines
