"""The framework memory model's constants that are not sizes of tensors
(cnnlab.calc.framework_memory): the backward pass's temporaries, the executor's order as
traced, the optimizer's and mixed precision's. Defaults: fitted by bench/memory_fit.py to
tests/data/memory_measurements.json through the allocator's simulation; each comment says
what a constant stands for and what was seen."""

from __future__ import annotations

from dataclasses import dataclass


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
    # seed exercise's peak, conv3's output gradient is alive in conv2's backward). 0.16
    # before the allocator was simulated, 0 then (an alias, flatten or an in-place layer,
    # now hands its gradient on instead of dropping it); 0.25 in the fit with the
    # executor's order rules below (filter_first frees inputs earlier).
    lagging_gradient: float = 0.25
    # BatchNorm's composed backward: float32 temporaries of the input's size (traced:
    # moments/Tile, moments/Tile_1, moments/sub are alive together, three; the fit to the
    # fit with the allocator simulated: two, the output's gradient now counted beside them;
    # 2.18 in the last fit), fewer when only gamma and beta need a gradient (a BatchNorm
    # before any weights).
    batchnorm_workspace_in: float = 2.178
    batchnorm_weights_workspace_in: float = 1.0
    # Sums of BatchNorm input gradients that outlive the step (see step_moments).
    batchnorm_accumulator: float = 0.5
    # Dropout's gradient: SelectV2 could need zeros_like(grad), a tensor of the input's
    # size. Traced: none (its gradient is written over the output's), 0 until the last fit,
    # which puts 1.1 here: what it stands for is not traced (random stacks 3, 5, 9 and 10
    # have dropout; the fitted slopes move by 1-4%).
    dropout_workspace_in: float = 1.1
    # An activation whose gradient reads its input (gelu, swish, ...) computes a temporary.
    activation_workspace_in: float = 1.0
    # The mean-squared-error loss: float32 tensors of the output's size alive in its
    # backward (the cast prediction, the difference, the tiled gradient of the mean).
    loss_temporaries: float = 3.3
    # A conv's filter gradient runs before its input gradient, so the conv's input, when no
    # layer below keeps it, is freed before the input's gradient is allocated. Not a fitted
    # number but an order: TensorFlow's executor picks it at run time (its ready queue
    # follows each op's measured cost, so it can change from run to run). Traced
    # (bench/memory_trace.py prints the order): the filter's gradient first in 16 of 24
    # conv backward steps with an input gradient, in 12 traced training steps: random stack
    # 12 at 256, 4 runs: 8 of 8; the seed exercise at 8, 5 runs: conv3 4 of 5, conv2 0 of
    # 5; at 4: conv3 yes, conv2 no; two 3-conv stacks on 48x48 inputs, linear and relu: 3
    # of 4. False (the input's gradient first) counts the worse order.
    # Random stack 12's slope went from 1.32x/1.72x (float32/mixed) to 0.85x/0.96x.
    filter_first: bool = True


@dataclass(frozen=True)
class Coefficients(BackwardCoefficients):
    """The constants that are not sizes of tensors: the backward pass's temporaries above,
    then the optimizer and mixed precision below. Defaults: the fitted values
    (bench/memory_fit.py against tests/data/memory_measurements.json, through the
    allocator's simulation); each comment says what the constant stands for and what it was
    seen to be. A count of temporaries is that many tensors to the allocator, a fraction one
    more of that part of the size (`pieces`): a tensor alive part of the time."""

    # mixed_float16's optimizer step, after the loss-scale optimizer's check: temporaries
    # the size of the largest variable (traced: AlexNet at 128, Adam's Square and Mul of
    # fc6 beside its gradient, and IsFinite's 1-byte mask: 1.25). (float32 has no step of
    # its own: immediate_updates.)
    optimizer_temporaries: float = 1.25
    # mixed_float16: while the backward pass goes on, the loss-scale optimizer's unscaled
    # copies and finite checks of the gradients that exist (traced: AlexNet's IsFinite of
    # fc6 beside the conv maps): temporaries of the largest variable whose gradient exists.
    # Fitted: 0.45 (2.75 when float32 updates were modelled as piling up too).
    optimizer_during_backward: float = 0.45
    # mixed_float16 on a CPU: Eigen's float16 conv gradients' im2col buffers (the formula
    # in half_conv_col_buffer_bytes, from tensorflow/core/kernels/conv_grad_input_ops.h;
    # traced: exactly its sizes, so 1; 0.64 when the allocator was one factor).
    half_conv_col_buffers: float = 1.0
    # mixed_float16: extra float32 copies of every gradient alive at the optimizer step.
    # 1.815 while gradients were modelled as kept in float16 too; traced since (AlexNet at
    # 128): none at the step, each gradient's float32 cast is the one kept
    # (mixed_cast_gradients), so 0.
    mixed_gradient_copies: float = 0.0
    runtime_bytes: int = 0  # small tensors; under 256 KiB a CPU's statistics miss them
    # float32: a variable's update runs as soon as its gradient exists, and the gradient is
    # freed after it (traced: VGG16 at batch 4 peaks in fc1's update, Square beside fc1's
    # 411 MB gradient, with fc2's and fc3's gradients already gone; the seed exercise: conv3's
    # filter gradient, Adam's Square, Sqrt, Mul, AssignSub, the gradient freed, then conv3's
    # input gradient). So weight gradients do not pile up: at a layer's backward step, its
    # own gradient and `update_temporaries` temporaries of its size. mixed_float16: the
    # loss-scale optimizer checks every gradient before any update, so they pile up (and
    # `optimizer_during_backward` stands for the unscaled copies made as they come).
    immediate_updates: bool = True
    # Traced: one (VGG16's fc1: Square beside the gradient); fitted: 1.1.
    update_temporaries: float = 1.1
    # mixed_float16: a weight gradient comes in the kernel's float16 (a dense layer's in
    # float32: Eigen's float16 MatMul on a CPU) and is cast to float32 at once; the float32
    # copy waits for the update, the first is freed (traced: VGG16 at batch 4 peaks in
    # fc1's backward with MatMul's 411 MB float32 output and its 411 MB cast alive, fc2's
    # and the predictions' float32 gradients waiting, no float16 gradient kept).
    mixed_cast_gradients: bool = True


COEFFICIENTS = Coefficients()
