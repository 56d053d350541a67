"""What a layer is, as the user describes it: `LayerSpec`, the layer kinds, `SpecError`, the
calculator's limits (`LIMITS`), and the argument checks every other calculator module uses
(each error is one line that names the layer and the problem)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.ui.safe import one_line

KINDS: tuple[str, ...] = (
    "conv", "maxpool", "avgpool", "dense", "flatten", "globalavgpool", "globalmaxpool",
    "batchnorm", "dropout", "activation", "lrn", "zeropad", "concat", "add",
)
MERGES: tuple[str, ...] = ("concat", "add")  # the kinds that take two or more inputs
PADDINGS = ("valid", "same")
# Activation names Keras accepts as strings (keras.activations.get).
ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "tanh",
    "elu", "selu", "gelu", "swish", "silu", "softplus", "softsign", "leaky_relu", "mish",
    "exponential",
)
INPUT_NAME = "input"  # the model input, usable in `inputs`

# The calculator's limits: what it computes at all. Past them no real network or GPU exists,
# and a total would no longer be exact in a float64 (the page's charts, JSON readers) or fit a
# 64-bit integer (the page's tables). Each refusal is one line naming the layer and the limit.
MAX_SIZE = 10**6  # one size: an input side or its channels, filters, units, groups, a kernel,
#                   stride, pool size or padding, a depth radius
MAX_LAYERS = 10_000  # layers in one network
MAX_COUNT = 10**15  # elements of one tensor, parameters and multiply-accumulates, per layer and
#                     in total (one instance): exact in a float64 (< 2^53)
MAX_BATCH = 10**9  # samples in one batch
MAX_BYTES = 10**18  # training memory of one batch (1 EB, inside a 64-bit integer)
MIN_GPU_GB, MAX_GPU_GB = 0.01, 10**6  # the GPU memory the calculator compares with


def power_text(n: int) -> str:
    """A limit as people read it: '10^15' for a power of ten from 10^12 on, else '1,000,000'."""
    digits = str(n)
    if n >= 10**12 and digits.rstrip("0") == "1":
        return f"10^{len(digits) - 1}"
    return f"{n:,}"


LIMITS: tuple[str, ...] = (  # the limits' one statement: `calc --help`, the page, the README
    f"Every size (an input side or channel count, filters, units, groups, a kernel, stride, "
    f"pool size or padding) is at most {MAX_SIZE:,}.",
    f"A network has at most {MAX_LAYERS:,} layers.",
    f"An input's values, the activation values of one instance, the parameters and the "
    f"multiply-accumulates are at most {power_text(MAX_COUNT)} each (exact as 64-bit floats); "
    f"so is a receptive field.",
    f"A batch is at most {MAX_BATCH:,} samples, and training it at most "
    f"{power_text(MAX_BYTES)} bytes (1 EB).",
    f"GPU memory is {MIN_GPU_GB} to {MAX_GPU_GB:,} GB.",
)


class SpecError(ValueError):
    """A bad configuration. The message is one line that names the layer and the problem."""


class LimitError(SpecError):
    """A number past one of the calculator's limits (the message says the limit)."""


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


def layer_where(index: int, name: str) -> str:
    """How a message names a layer: 'layer 3 (conv2)', or 'layer 3' without a name (a name
    that is not a valid one is shown on one line and cut short)."""
    return f"layer {index} ({one_line(name, 60)})" if name else f"layer {index}"


class LazyWhere:
    """'layer 3 (conv2)', formatted only if a message needs it (analyze's hot loop)."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str) -> None:
        self.index, self.name = index, name

    def __str__(self) -> str:
        return layer_where(self.index, self.name)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def shown(value: object, limit: int = 40) -> str:
    """How a message quotes a user's value: its repr (one line: newlines and controls come
    out escaped), cut to about `limit` characters with its full length said."""
    if isinstance(value, str) and len(value) > limit:
        cut = repr(value[:limit - 3])
        return f"{cut[:-1]}…{cut[-1]} ({len(value):,} characters)"
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4,300-digit limit of int -> str
        return "a number of more than 4,300 digits"
    if len(text) > limit:
        return f"{text[:limit - 1]}… ({len(text):,} characters)"
    return text


def is_digits(text: str) -> bool:
    """Only the digits 0-9: an integer, however long (int() refuses past 4,300 digits)."""
    return text.isascii() and text.isdigit()


def over_limit(where: object, what: str, value: object, limit: int) -> LimitError:
    """The one-line refusal of a number past one of the calculator's limits."""
    subject = f"{what} " if what else ""
    return LimitError(f"{where}: {subject}must be at most {limit:,} (the calculator's limit), "
                     f"got {shown(value)}")


def is_int(value: object) -> bool:
    """A real integer (True and False are not sizes)."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_pair(value: object, what: str, where: str, *,
             allow_zero: bool = False) -> tuple[int, int]:
    """An (h, w) pair of positive integers (at most MAX_SIZE) from an int or a 2-sequence."""
    if is_int(value):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(map(is_int, value)):
        raise SpecError(f"{where}: {what} must be an integer or a pair of integers, "
                        f"got {shown(value)}")
    low = 0 if allow_zero else 1
    if min(value) < low:
        text = "x".join(map(str, value))
        raise SpecError(f"{where}: {what} must be {'non-negative' if allow_zero else 'positive'}, "
                        f"got {text}")
    if max(value) > MAX_SIZE:
        raise over_limit(where, what, max(value), MAX_SIZE)
    return int(value[0]), int(value[1])


def positive_int(value: object, what: str, where: str, high: int = MAX_SIZE) -> int:
    """A positive integer, at most `high`."""
    if not is_int(value) or value < 1:
        raise SpecError(f"{where}: {what} must be a positive integer, got {shown(value)}")
    if value > high:
        raise over_limit(where, what, value, high)
    return int(value)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(H, W, C) of positive integers, each at most MAX_SIZE, or SpecError."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(is_int(v) and v > 0 for v in shape):
        raise SpecError(f"input: shape must be three positive integers H x W x C, "
                        f"got {shown(shape)}")
    if max(shape) > MAX_SIZE:
        raise over_limit("input", "each size", max(shape), MAX_SIZE)
    if math.prod(shape) > MAX_COUNT:
        raise SpecError(f"input: {'x'.join(map(str, shape))} is {math.prod(shape):,} values, "
                        f"more than the calculator's limit of {power_text(MAX_COUNT)}")
    return shape  # type: ignore[return-value]
