"""The Train page's network and recipe as one frozen config, and the same network as the
calculator sees it.

`TrainConfig()` is the seed's network exactly (answer 7): Conv 32 3x3 relu, MaxPool 2,
Conv 64 3x3 relu, MaxPool 2, Flatten, Dense 128 relu, Dense 10 softmax; Adam,
categorical cross-entropy, batch 64, 10 epochs. `architecture="dense"` is a plain dense
net 784-h-10 whose hidden layer is sized to the CNN's parameter budget (seed answer 1: CNN
vs dense, with curves): `dense_units_for_budget`.

`layer_specs()` gives the network as `cnnlab.calc.spec.LayerSpec`s, so the page shows
parameters and memory from `cnnlab.calc.analysis.analyze` before training starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import LayerSpec, SpecError
from cnnlab.errors import ConfigError
from cnnlab.train.datasets import DATASETS

ARCHITECTURES = ("cnn", "dense")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
_PIXELS = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]


def dense_units_for_budget(params: int) -> int:
    """Hidden units h of the 784-h-10 dense net whose parameter count is closest to `params`.

    Its count is (784h + h) + (10h + 10) = 795h + 10 (weights and biases of both layers),
    so h = (params - 10) / 795, rounded; at least 1."""
    per_unit = _PIXELS + 1 + NUM_CLASSES      # 795: one unit's weights, bias and outputs
    return max(1, round((params - NUM_CLASSES) / per_unit))


MAX_SEED = 2**32 - 1  # numpy.random.seed's range; Keras seeds numpy from it


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"              # "mnist" | "fashion_mnist"
    architecture: str = "cnn"           # "cnn" (the seed's) | "dense" (same budget, no conv)
    filters: tuple[int, int] = (32, 64)  # feature maps of conv 1 and conv 2
    kernels: tuple[int, int] = (3, 3)    # kernel side of conv 1 and conv 2
    dense_units: int = 128              # the CNN's hidden dense layer
    # The dense net's hidden layer. None: sized to the parameter count of the CNN the other
    # fields describe (set when architecture is "dense"; 283 for the seed CNN).
    dense_preset_units: int | None = None
    dropout: float = 0.0                # after the hidden dense layer; the seed has none
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 0.001        # Adam's default
    optimizer: str = "adam"
    seed: int = 0
    mixed_precision: bool = False       # seed answer 3: half the activation memory
    validation_fraction: float = 0.1    # held out of the training images, stratified

    def __post_init__(self) -> None:
        if self.architecture == "dense" and self.dense_preset_units is None:
            try:
                cnn_params = analyze(INPUT_SHAPE, self.cnn().layer_specs()).total_params
            except (SpecError, TypeError, ValueError):
                return      # no CNN to match: validate() says why
            units = dense_units_for_budget(cnn_params)
            object.__setattr__(self, "dense_preset_units", units)

    def cnn(self) -> TrainConfig:
        """The CNN these fields describe (itself when it is one)."""
        return self if self.architecture == "cnn" else replace(self, architecture="cnn")

    def validate(self) -> None:
        """Raise ConfigError (one line) when the configuration cannot train."""
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: choose one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture: choose cnn or dense, got {self.architecture!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: choose one of {', '.join(OPTIMIZERS)}, "
                              f"got {self.optimizer!r}")
        for i, (f, k) in enumerate(zip(self.filters, self.kernels, strict=True), start=1):
            if not 1 <= int(f) <= 512:
                raise ConfigError(f"conv {i}: filters must be 1..512, got {f}")
            if not 1 <= int(k) <= 13:
                raise ConfigError(f"conv {i}: kernel must be 1..13, got {k}")
        if self.architecture == "cnn" or self.dense_preset_units is None:
            side = 28
            for i, k in enumerate(self.kernels, start=1):
                side -= int(k) - 1
                if side < 2:
                    raise ConfigError(f"conv {i}: a {k}x{k} kernel leaves no room for the "
                                      f"2x2 max pooling after it")
                side //= 2
        checks = [("dense units", self.dense_units, 1, 4096),
                  ("batch size", self.batch_size, 1, 4096), ("epochs", self.epochs, 1, 200)]
        if self.architecture == "dense" or self.dense_preset_units is not None:
            checks.insert(1, ("dense preset units", self.dense_preset_units, 1, 4096))
        for name, value, low, high in checks:
            if not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ConfigError(f"{name}: must be an integer {low}..{high}, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if not 0.0 < float(self.learning_rate) <= 1.0:
            raise ConfigError(f"learning rate: must be in (0, 1], got {self.learning_rate}")
        if not 0.0 < float(self.validation_fraction) < 0.5:
            raise ConfigError(f"validation fraction: must be in (0, 0.5), "
                              f"got {self.validation_fraction}")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be an integer 0..{MAX_SEED} (NumPy's seed range), "
                              f"got {str(self.seed)[:40]!r}")

    @property
    def dtype_policy(self) -> str:
        return "mixed_float16" if self.mixed_precision else "float32"

    def label(self) -> str:
        """A short name for this run in lists and legends."""
        if self.architecture == "dense":
            net = f"dense {self.dense_preset_units}"
        else:
            net = (f"CNN {self.filters[0]}/{self.filters[1]} k{self.kernels[0]}/{self.kernels[1]}"
                   + (f" drop {self.dropout:g}" if self.dropout else ""))
        extra = " fp16" if self.mixed_precision else ""
        return (f"{net}, {self.optimizer} lr {self.learning_rate:g}, batch {self.batch_size}, "
                f"{self.epochs} ep, seed {self.seed}{extra}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["filters"], d["kernels"] = list(self.filters), list(self.kernels)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("filters", "kernels"):
            if key in kwargs:
                kwargs[key] = tuple(int(v) for v in kwargs[key])
        return cls(**kwargs)

    # ---- the same network, as the calculator sees it ----------------------------------------
    def layer_specs(self) -> list[LayerSpec]:
        """The network as `cnnlab.calc.spec.LayerSpec`s, for parameters and memory."""
        if self.architecture == "dense":
            hidden = [LayerSpec("dense", name="dense1", units=self.dense_preset_units,
                                activation="relu")]
            if self.dropout:
                hidden.append(LayerSpec("dropout", name="dropout", rate=self.dropout))
            return [LayerSpec("flatten", name="flatten"), *hidden,
                    LayerSpec("dense", name="output", units=NUM_CLASSES, activation="softmax")]
        specs = [
            LayerSpec("conv", name="conv1", filters=self.filters[0],
                      kernel=(self.kernels[0],) * 2, activation="relu"),
            LayerSpec("maxpool", name="pool1", kernel=(2, 2)),
            LayerSpec("conv", name="conv2", filters=self.filters[1],
                      kernel=(self.kernels[1],) * 2, activation="relu"),
            LayerSpec("maxpool", name="pool2", kernel=(2, 2)),
            LayerSpec("flatten", name="flatten"),
            LayerSpec("dense", name="dense1", units=self.dense_units, activation="relu"),
        ]
        if self.dropout:
            specs.append(LayerSpec("dropout", name="dropout", rate=self.dropout))
        specs.append(LayerSpec("dense", name="output", units=NUM_CLASSES, activation="softmax"))
        return specs

    def stats(self):
        """`cnnlab.calc.analysis.analyze` of this network at this batch size, dtype and optimizer."""
        # The calculator counts optimizer slots: Adam 2, RMSprop 1 (like momentum), SGD 0.
        slots = {"adam": "adam", "rmsprop": "momentum", "sgd": "sgd"}[self.optimizer]
        return analyze(INPUT_SHAPE, self.layer_specs(), batch=self.batch_size,
                       dtype=self.dtype_policy, optimizer=slots)


def dense_preset(config: TrainConfig | None = None) -> TrainConfig:
    """The dense net with the parameter budget of `config`'s CNN (unless `config` names its
    hidden units), otherwise the same training recipe."""
    return replace(config or TrainConfig(), architecture="dense")
