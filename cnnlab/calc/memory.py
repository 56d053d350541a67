"""The memory model: what the tensors of one network need to predict one instance and to
train one batch. `MEMORY_ASSUMPTIONS` below is the model's one statement; the calculator
page, `python -m cnnlab calc --help` and the README show it from there.

`estimate` turns a network's totals (from `analysis.analyze`) into a `MemoryEstimate` for
one batch size, dtype, optimizer and accumulation setting; `live_peak` finds the largest set
of activations alive at once while predicting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cnnlab.calc.spec import INPUT_NAME, SpecError, is_int

MB = 10**6
GB = 10**9
DTYPES: dict[str, int] = {"float32": 4, "mixed_float16": 2}  # bytes per activation
PARAM_BYTES = 4  # parameters, gradients, optimizer slots: float32 in both dtypes
INPUT_BYTES = 4  # images are fed as float32
OPTIMIZER_SLOTS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}

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


class LayerOutput(Protocol):
    """What `live_peak` needs of a layer (`analysis.LayerStats` has it)."""

    name: str
    inputs: tuple[str, ...]
    activation_elems: int


def live_peak(input_shape: Sequence[int], layers: Sequence[LayerOutput]) -> dict[str, int]:
    """Peak bytes of live activations while predicting one instance, for each dtype.

    While layer i runs, its output and every earlier tensor still read by layer i or a
    later one are alive (for a plain stack: two consecutive activations). The input image
    is float32 in both dtypes, so the peak is found per dtype.
    """
    last_use: dict[str, int] = {INPUT_NAME: -1}
    for i, s in enumerate(layers):
        for source in s.inputs:
            last_use[source] = i
    input_elems = math.prod(input_shape)
    peaks = {dtype: INPUT_BYTES * input_elems for dtype in DTYPES}  # no layers: the input
    alive = 0  # elements of earlier layer outputs still needed
    sizes: dict[str, int] = {}
    for i, s in enumerate(layers):
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


def estimate(input_shape: Sequence[int], *, total_params: int, trainable_params: int,
             activation_elems: int, inference_peak: Mapping[str, int], batch: int,
             dtype: str, optimizer: str, accum_steps: int) -> MemoryEstimate:
    """The memory of a network with these totals (`inference_peak` from `live_peak`) for one
    batch, dtype, optimizer and number of accumulation steps, as MEMORY_ASSUMPTIONS says.

    Raises SpecError (one line) for a bad setting.
    """
    if not is_int(batch) or batch < 1:
        raise SpecError(f"batch: must be a positive integer, got {batch!r}")
    if dtype not in DTYPES:
        raise SpecError(f"dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise SpecError(f"optimizer: must be one of {', '.join(OPTIMIZER_SLOTS)}, "
                        f"got {optimizer!r}")
    if not is_int(accum_steps) or accum_steps < 1:
        raise SpecError(f"accumulation steps: must be a positive integer, got {accum_steps!r}")
    if accum_steps > batch:
        raise SpecError(f"accumulation steps: {accum_steps} is more than the batch of {batch}")
    act = DTYPES[dtype]
    micro = -(-batch // accum_steps)
    input_elems = math.prod(input_shape)
    params_bytes = PARAM_BYTES * total_params
    inference_act = inference_peak[dtype]
    gradients = PARAM_BYTES * trainable_params
    slots = PARAM_BYTES * OPTIMIZER_SLOTS[optimizer] * trainable_params
    accumulator = PARAM_BYTES * trainable_params if accum_steps > 1 else 0
    per_sample = act * activation_elems + INPUT_BYTES * input_elems
    fixed = params_bytes + gradients + slots + accumulator
    return MemoryEstimate(
        batch=batch, dtype=dtype, optimizer=optimizer, accum_steps=accum_steps,
        micro_batch=micro, params_bytes=params_bytes,
        inference_activation_bytes=inference_act, inference_bytes=inference_act + params_bytes,
        activations_bytes=micro * act * activation_elems,
        input_batch_bytes=micro * INPUT_BYTES * input_elems,
        gradients_bytes=gradients, optimizer_bytes=slots, accumulator_bytes=accumulator,
        training_bytes=fixed + micro * per_sample, per_sample_bytes=per_sample,
        fixed_bytes=fixed,
    )
