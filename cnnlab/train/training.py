"""The MNIST/Fashion-MNIST networks, their training jobs, and what they learned.

`TrainConfig()` is the seed's network exactly (answer 7): Conv 32 3x3 relu, MaxPool 2,
Conv 64 3x3 relu, MaxPool 2, Flatten, Dense 128 relu, Dense 10 softmax; Adam,
categorical cross-entropy, batch 64, 10 epochs. `architecture="dense"` is a plain
dense net with a similar parameter budget (seed answer 1: CNN vs dense, with curves).

The same config is also a calculator spec (`layer_specs()`), so the page shows
parameters and memory from `cnnlab.calc.analyze` before training starts, and
`job_for(config)` turns it into a `cnnlab.train.jobs.TrainingJob`.

After training: first-layer filters, activation maps of every conv layer, predictions
on the test set (confusion matrix, worst mistakes), and a user's own digit through the
MNIST preprocessing, every step shown.

Keras is imported only inside the functions that build or run a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from cnnlab.train.datasets import DATASETS, Dataset, load_dataset, stratified_split
from cnnlab.train.metrics import TestReport, predict_probs, test_report

ARCHITECTURES = ("cnn", "dense")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
# Hidden units of the dense preset: 795*h + 10 parameters (784*h + h, then 10*h + 10)
# is closest to the seed CNN's 225,034 at h = 283 (224,995 parameters).
DENSE_PRESET_UNITS = 283


class ConfigError(ValueError):
    """A training configuration that cannot be built (one-line message)."""


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"              # "mnist" | "fashion_mnist"
    architecture: str = "cnn"           # "cnn" (the seed's) | "dense" (same budget, no conv)
    filters: tuple[int, int] = (32, 64)  # feature maps of conv 1 and conv 2
    kernels: tuple[int, int] = (3, 3)    # kernel side of conv 1 and conv 2
    dense_units: int = 128              # the CNN's hidden dense layer
    dense_preset_units: int = DENSE_PRESET_UNITS  # the dense net's hidden layer
    dropout: float = 0.0                # after the hidden dense layer; the seed has none
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 0.001        # Adam's default
    optimizer: str = "adam"
    seed: int = 0
    mixed_precision: bool = False       # seed answer 3: half the activation memory
    validation_fraction: float = 0.1    # held out of the training images, stratified

    def validate(self) -> TrainConfig:
        """Raise ConfigError (one line) when the configuration cannot train; else self."""
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
        if self.architecture == "cnn":
            side = 28
            for i, k in enumerate(self.kernels, start=1):
                side -= int(k) - 1
                if side < 2:
                    raise ConfigError(f"conv {i}: a {k}x{k} kernel leaves no room for the "
                                      f"2x2 max pooling after it")
                side //= 2
        for name, value, low, high in (("dense units", self.dense_units, 1, 4096),
                                       ("dense preset units", self.dense_preset_units, 1, 4096),
                                       ("batch size", self.batch_size, 1, 4096),
                                       ("epochs", self.epochs, 1, 200)):
            if not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ConfigError(f"{name}: must be an integer {low}..{high}, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if not 0.0 < float(self.learning_rate) <= 1.0:
            raise ConfigError(f"learning rate: must be in (0, 1], got {self.learning_rate}")
        if not 0.0 < float(self.validation_fraction) < 0.5:
            raise ConfigError(f"validation fraction: must be in (0, 0.5), "
                              f"got {self.validation_fraction}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {self.seed!r}")
        return self

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
    def layer_specs(self) -> list:
        """The network as `cnnlab.calc.LayerSpec`s, for parameters and memory."""
        from cnnlab.calc.spec import LayerSpec

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
        """`cnnlab.calc.analyze` of this network at this batch size, dtype and optimizer."""
        from cnnlab.calc.analysis import analyze

        # The calculator counts optimizer slots: Adam 2, RMSprop 1 (like momentum), SGD 0.
        slots = {"adam": "adam", "rmsprop": "momentum", "sgd": "sgd"}[self.optimizer]
        return analyze(INPUT_SHAPE, self.layer_specs(), batch=self.batch_size,
                       dtype=self.dtype_policy, optimizer=slots)


def dense_preset(config: TrainConfig | None = None) -> TrainConfig:
    """The dense net with the CNN's parameter budget, otherwise the same training recipe."""
    return replace(config or TrainConfig(), architecture="dense")


# ---- building and training -------------------------------------------------------------------

def build_model(config: TrainConfig):
    """The compiled keras.Model for `config` (uses the calling thread's dtype policy)."""
    import keras
    from keras import layers

    config.validate()
    # The policy is given to each layer, not only taken from the thread's global setting,
    # so that nothing resetting Keras's global state can silently build a float32 model.
    dt = config.dtype_policy
    if config.architecture == "dense":
        body = [layers.Flatten(name="flatten", dtype=dt),
                layers.Dense(config.dense_preset_units, activation="relu", name="dense1", dtype=dt)]
    else:
        body = [
            layers.Conv2D(config.filters[0], config.kernels[0], activation="relu", name="conv1",
                          dtype=dt),
            layers.MaxPooling2D(2, name="pool1", dtype=dt),
            layers.Conv2D(config.filters[1], config.kernels[1], activation="relu", name="conv2",
                          dtype=dt),
            layers.MaxPooling2D(2, name="pool2", dtype=dt),
            layers.Flatten(name="flatten", dtype=dt),
            layers.Dense(config.dense_units, activation="relu", name="dense1", dtype=dt),
        ]
    if config.dropout:
        body.append(layers.Dropout(config.dropout, name="dropout", dtype=dt))
    # Under mixed precision the softmax stays float32 (Keras' mixed-precision guide).
    body.append(layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="output"))
    model = keras.Sequential([keras.Input(INPUT_SHAPE, name="image"), *body],
                             name=f"{config.architecture}_{config.dataset}")
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                 "rmsprop": keras.optimizers.RMSprop}[config.optimizer]
    opt = optimizer(learning_rate=config.learning_rate)
    if config.mixed_precision:
        # float16 gradients underflow without loss scaling (Keras wraps this by itself only
        # when the *global* policy is mixed_float16; the layers carry it explicitly here).
        opt = keras.optimizers.LossScaleOptimizer(opt)
    model.compile(optimizer=opt,
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1], what the network sees."""
    return (np.asarray(images, np.float32) / 255.0)[..., None]


def one_hot(labels: np.ndarray, n: int = NUM_CLASSES) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[np.asarray(labels, np.int64)]


@dataclass(frozen=True)
class PreparedData:
    x_train: np.ndarray
    y_train: np.ndarray      # one-hot
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray       # one-hot
    info: dict


def prepare(dataset: Dataset, validation_fraction: float = 0.1, seed: int = 0) -> PreparedData:
    """Scale, add the channel axis, one-hot the labels; hold out a stratified validation set."""
    per_class = np.bincount(dataset.y_train).min()
    val_per_class = max(1, int(round(per_class * validation_fraction)))
    train_idx, val_idx = stratified_split(dataset.y_train, val_per_class, seed)
    x = to_inputs(dataset.x_train)
    info = {**dataset.as_dict(), "train_images": int(len(train_idx)),
            "validation_images": int(len(val_idx))}
    return PreparedData(x[train_idx], one_hot(dataset.y_train[train_idx]), x[val_idx],
                        one_hot(dataset.y_train[val_idx]), to_inputs(dataset.x_test),
                        one_hot(dataset.y_test), info)


def make_build(config: TrainConfig, dataset: Dataset | None = None):
    """The `build` callable for a TrainingJob: runs in the worker thread, loads the data
    (unless given), builds the model, and returns a `TrainSetup` with test evaluation."""
    from cnnlab.train.jobs import TrainSetup

    config.validate()

    def build() -> TrainSetup:
        source = dataset or load_dataset(config.dataset)
        data = prepare(source, config.validation_fraction, config.seed)
        model = build_model(config)

        def evaluate(trained) -> dict:
            loss, accuracy = trained.evaluate(data.x_test, data.y_test, verbose=0,
                                              batch_size=256)
            return {"test_loss": float(loss), "test_accuracy": float(accuracy),
                    "test_images": int(len(data.x_test))}

        return TrainSetup(model=model, x=data.x_train, y=data.y_train,
                          validation_data=(data.x_val, data.y_val), epochs=config.epochs,
                          batch_size=config.batch_size, evaluate=evaluate,
                          info={**data.info, "params": int(model.count_params())},
                          context={"dataset": source})
    return build


def job_for(config: TrainConfig, dataset: Dataset | None = None):
    """A TrainingJob (not yet submitted) that trains `config`."""
    from cnnlab.train.jobs import TrainingJob

    return TrainingJob(make_build(config, dataset), seed=config.seed,
                       dtype_policy=config.dtype_policy, label=config.label(),
                       config=config.as_dict())


# ---- after training ---------------------------------------------------------------------------

def conv_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def first_layer_filters(model) -> np.ndarray:
    """The first conv layer's kernels as (filters, kh, kw) for a 1-channel input."""
    convs = conv_layers(model)
    if not convs:
        raise ValueError("this network has no convolutional layer")
    kernel = np.asarray(convs[0].get_weights()[0], np.float32)   # (kh, kw, c_in, filters)
    return np.transpose(kernel.mean(axis=2), (2, 0, 1))


def activation_maps(model, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(layer name, (h, w, channels) float32) for every conv layer, for one input image."""
    import keras

    convs = conv_layers(model)
    if not convs:
        return []
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    x = np.asarray(image, np.float32).reshape(1, *INPUT_SHAPE)
    outputs = probe([x], training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [(layer.name, np.asarray(out, np.float32)[0])
            for layer, out in zip(convs, outputs, strict=True)]


def analyze_test(model, dataset: Dataset, k: int = 16) -> TestReport:
    """The test report of `model` on the dataset's test images."""
    probs = predict_probs(model, to_inputs(dataset.x_test), batch_size=512)
    return test_report(probs, dataset.y_test, list(dataset.class_names))


# ---- the user's own digit ---------------------------------------------------------------------

@dataclass(frozen=True)
class DigitSteps:
    """MNIST's own preprocessing applied to a user's image, every step kept to show it."""

    gray: np.ndarray          # uint8, the image in gray levels
    inverted: bool            # MNIST digits are light on dark: dark-on-light input is flipped
    normalized: np.ndarray    # uint8, light digit on black
    cropped: np.ndarray       # uint8, the digit's bounding box
    fitted: np.ndarray        # uint8, scaled so its longer side is 20 pixels
    centered: np.ndarray      # uint8 (28, 28): the 20x20 box placed by centre of mass
    x: np.ndarray             # float32 (28, 28, 1) in [0, 1]: what the network sees
    empty: bool               # nothing drawn


def preprocess_digit(image) -> DigitSteps:
    """A PIL image or array (gray, RGB or RGBA) -> the 28x28 input, as MNIST was made
    (LeCun et al.: size-normalised into 20x20 keeping the aspect ratio, then centred by
    centre of mass in 28x28)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 4:
            # Canvas strokes carry alpha: composite onto the canvas's black background.
            alpha = arr[..., 3:4].astype(np.float32) / 255.0
            arr = (arr[..., :3].astype(np.float32) * alpha).astype(np.uint8)
        pil = Image.fromarray(arr.astype(np.uint8))
    else:
        pil = image
    gray = np.asarray(pil.convert("L"), np.uint8)
    # Decide polarity from the border: a light border means dark ink on paper.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    inverted = bool(border.mean() > 127)
    norm = 255 - gray if inverted else gray.copy()
    # Treat faint background noise (paper texture, JPEG) as black.
    norm = np.where(norm < 40, 0, norm).astype(np.uint8)
    ys, xs = np.nonzero(norm)
    if len(ys) == 0:
        blank = np.zeros((28, 28), np.uint8)
        return DigitSteps(gray, inverted, norm, norm, blank[:20, :20], blank,
                          np.zeros((28, 28, 1), np.float32), True)
    cropped = norm[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    h, w = cropped.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = np.asarray(Image.fromarray(cropped).resize(size, Image.Resampling.LANCZOS), np.uint8)
    canvas = np.zeros((28, 28), np.float32)
    fh, fw = fitted.shape
    weights = fitted.astype(np.float64)
    cy = (weights.sum(axis=1) @ np.arange(fh)) / weights.sum()
    cx = (weights.sum(axis=0) @ np.arange(fw)) / weights.sum()
    top = int(round(14 - cy))
    left = int(round(14 - cx))
    top = min(max(top, 0), 28 - fh)
    left = min(max(left, 0), 28 - fw)
    canvas[top: top + fh, left: left + fw] = fitted
    centered = canvas.astype(np.uint8)
    return DigitSteps(gray, inverted, norm, cropped, fitted, centered,
                      (canvas / 255.0)[..., None].astype(np.float32), False)


def predict_one(model, x: np.ndarray) -> np.ndarray:
    """Probabilities (10,) for one (28, 28, 1) float input."""
    out = model(np.asarray(x, np.float32).reshape(1, *INPUT_SHAPE), training=False)
    return np.asarray(out, np.float32)[0]


def smooth(values: list[float] | np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing does)."""
    values = np.asarray(values, np.float64)
    out = np.empty_like(values)
    avg = 0.0
    for i, v in enumerate(values):
        avg = (1 - alpha) * avg + alpha * v
        out[i] = avg / (1 - (1 - alpha) ** (i + 1))
    return out

