"""What a layer is, as the user describes it: `LayerSpec`, the layer kinds, `SpecError`, and
the argument checks every other calculator module uses (each error is one line that names the
layer and the problem)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


class SpecError(ValueError):
    """A bad configuration. The message is one line that names the layer and the problem."""


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
    """How a message names a layer: 'layer 3 (conv2)', or 'layer 3' without a name."""
    return f"layer {index} ({name})" if name else f"layer {index}"


class LazyWhere:
    """'layer 3 (conv2)', formatted only if a message needs it (analyze's hot loop)."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str) -> None:
        self.index, self.name = index, name

    def __str__(self) -> str:
        return layer_where(self.index, self.name)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def is_int(value: object) -> bool:
    """A real integer (True and False are not sizes)."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_pair(value: object, what: str, where: str, *,
             allow_zero: bool = False) -> tuple[int, int]:
    """An (h, w) pair of positive integers from an int or a 2-sequence."""
    if is_int(value):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(map(is_int, value)):
        raise SpecError(f"{where}: {what} must be an integer or a pair of integers, got {value!r}")
    low = 0 if allow_zero else 1
    if min(value) < low:
        text = "x".join(map(str, value))
        raise SpecError(f"{where}: {what} must be {'non-negative' if allow_zero else 'positive'}, "
                        f"got {text}")
    return int(value[0]), int(value[1])


def positive_int(value: object, what: str, where: str) -> int:
    if not is_int(value) or value < 1:
        raise SpecError(f"{where}: {what} must be a positive integer, got {value!r}")
    return int(value)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(H, W, C) of positive integers, or SpecError."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(is_int(v) and v > 0 for v in shape):
        raise SpecError(f"input: shape must be three positive integers H x W x C, got {shape!r}")
    return shape  # type: ignore[return-value]
