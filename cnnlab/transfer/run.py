"""Transfer learning: Inception v3 frozen up to its bottleneck, a new softmax head.

The seed's answer 9, built for real:

    base   = InceptionV3(include_top=False, pooling="avg")   # image → 2048 bottleneck features
    model  = augmentation → base (frozen, BatchNorm in inference mode) → Dense(k, softmax)

Two ways to train the head (`TransferConfig.mode`):

- "fast": every image goes through the frozen base ONCE; the 2048-wide bottleneck features
  are cached (`FeatureCache`) and the head trains on them. An epoch costs one small matrix
  product per batch instead of a full Inception forward pass, so it is orders of magnitude
  faster; augmentation is impossible (the features are fixed).
- "full": images (augmented by Keras preprocessing layers) go through the frozen base at
  every step. Slower, but each epoch sees new variants of the pictures.

Both draw the same batches in the same order (`batch_stream`) and start from the same head
(`head_initializer(seed)`), so on the same data, seed and without augmentation they end with
the same head weights: the cache changes the speed, not the result.

Optional phase 2 unfreezes the top inception blocks (not their BatchNorm layers) and
fine-tunes them with a low learning rate, images through the whole network.

Training runs through the one job runner, `cnnlab.train.jobs` (a `TransferRun` makes the jobs).
Keras/TensorFlow are imported inside the functions that need them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.train.jobs import JobManager, TrainingJob, TrainSetup
from cnnlab.train.metrics import TestReport, predict_probs, test_report
from cnnlab.transfer.data import ImageDataset, Split, load_pixels, to_model_input

if TYPE_CHECKING:
    import keras

BOTTLENECK_WIDTH = 2048  # InceptionV3(include_top=False, pooling="avg") output
MIN_IMAGE_SIZE = 75  # keras.applications.inception_v3: "width and height should be no smaller than 75"
MAX_IMAGE_SIZE = 299  # the size the ImageNet weights were trained at
IMAGE_SIZES = (75, 96, 128, 160, 192, 224, 299)
# Phase 2: the last layer that stays frozen when unfreezing the top N inception blocks.
# Keras' fine-tuning example unfreezes the top two blocks: everything after "mixed8".
TOP_BLOCK_BOUNDARY = {1: "mixed9", 2: "mixed8"}
HEAD_NAME = "head"
STANDARDIZE_NAME = "bottleneck_standardization"
MODES = ("fast", "full")


# ---------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Augmentation:
    """Keras preprocessing layers applied to training images only (inactive at inference)."""

    flip: bool = True       # RandomFlip("horizontal")
    rotation: bool = True   # RandomRotation(0.05): up to ±18° (a fraction of a full turn)
    zoom: bool = True       # RandomZoom(0.15): in or out by up to 15 %
    contrast: bool = True   # RandomContrast(0.2) on the [-1, 1] range

    ROTATION_FACTOR = 0.05
    ZOOM_FACTOR = 0.15
    CONTRAST_FACTOR = 0.2

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotation or self.zoom or self.contrast

    def describe(self) -> str:
        parts = [name for name, on in (("flip", self.flip), ("rotation", self.rotation),
                                        ("zoom", self.zoom), ("contrast", self.contrast)) if on]
        return ", ".join(parts) if parts else "none"


NO_AUGMENTATION = Augmentation(flip=False, rotation=False, zoom=False, contrast=False)


@dataclass(frozen=True)
class TransferConfig:
    mode: str = "fast"                     # "fast" (cached bottlenecks) or "full" (see module doc)
    image_size: int = MAX_IMAGE_SIZE       # square input side; 75..299
    epochs: int = 5                        # phase 1 (the head)
    batch_size: int = 32
    learning_rate: float = 1e-3            # Adam, phase 1
    augmentation: Augmentation = field(default_factory=Augmentation)  # used by "full" and phase 2
    fine_tune_blocks: int = 0              # phase 2: 0 = off, 1 or 2 top inception blocks
    fine_tune_epochs: int = 2
    fine_tune_learning_rate: float = 1e-5  # low, so the pretrained filters are only nudged
    seed: int = 0

    def validate(self) -> None:
        """ValueError with a one-line message for an unusable setting."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image size must be {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels "
                             f"(Inception v3's limits); got {self.image_size}")
        if not 1 <= self.epochs <= 200 or not 0 <= self.fine_tune_epochs <= 200:
            raise ValueError("epochs must be 1..200 (phase 2: 0..200)")
        if not 1 <= self.batch_size <= 1024:
            raise ValueError(f"batch size must be 1..1024; got {self.batch_size}")
        if self.fine_tune_blocks not in (0, *TOP_BLOCK_BOUNDARY):
            raise ValueError(f"fine-tune blocks must be 0, 1 or 2; got {self.fine_tune_blocks}")
        if not (0 < self.learning_rate < 1 and 0 < self.fine_tune_learning_rate < 1):
            raise ValueError("learning rates must be between 0 and 1")

    @property
    def phase2(self) -> bool:
        return self.fine_tune_blocks > 0 and self.fine_tune_epochs > 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# The model


def augmentation_layers(aug: Augmentation, seed: int | None = None) -> keras.Sequential | None:
    """The enabled preprocessing layers as one Sequential (None when none is enabled)."""
    if not aug.enabled:
        return None
    import keras

    layers: list = []
    if aug.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.ROTATION_FACTOR, seed=seed))
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.ZOOM_FACTOR, seed=seed))
    if aug.contrast:
        # Inputs are already in [-1, 1]; the default range (0, 255) would clip them.
        layers.append(keras.layers.RandomContrast(aug.CONTRAST_FACTOR, value_range=(-1.0, 1.0),
                                                  seed=seed))
    return keras.Sequential(layers, name="augmentation")


def augment_preview(pixels: np.ndarray, aug: Augmentation, variants: int = 4,
                    seed: int = 0) -> np.ndarray:
    """uint8 (n, variants, s, s, 3): each image as training would see it, `variants` times.

    The layers run with training=True (at inference they pass images through unchanged).
    """
    pixels = np.asarray(pixels, dtype=np.uint8)
    out = np.repeat(pixels[:, None], variants, axis=1)
    layers = augmentation_layers(aug, seed=seed)
    if layers is None:
        return out
    x = to_model_input(out.reshape(-1, *pixels.shape[1:]))
    y = np.asarray(layers(x, training=True))
    back = np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return back.reshape(out.shape)


def build_base(image_size: int, weights: str | None) -> keras.Model:
    """Inception v3 up to the 2048-wide global-average-pooled bottleneck, frozen.

    `weights`: a path to the no-top .h5 file, "imagenet" (Keras downloads it), or None for
    an untrained (randomly initialised) base.
    """
    import keras

    base = keras.applications.InceptionV3(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
        pooling="avg",
    )
    base.trainable = False
    return base


def head_initializer(seed: int):
    import keras

    return keras.initializers.GlorotUniform(seed=seed)


def build_classifier(base: keras.Model, num_classes: int, augmentation: Augmentation,
                     seed: int = 0) -> tuple[keras.Model, keras.Model]:
    """(full model, head model) sharing ONE Dense head layer.

    full:  image in [-1, 1] → augmentation (training only) → base → head (softmax)
    head:  2048 bottleneck features → the same head (what fast mode trains)
    """
    import keras

    if num_classes < 2:
        raise ValueError(f"a classifier needs at least two classes; got {num_classes}")
    size = base.input_shape[1]
    # Standardise each bottleneck feature with the training set's mean and variance (set by
    # `adapt_head`): ImageNet features range over 0..10, an untrained base's over 1e-4, and
    # one learning rate then suits both. Its 2 x 2048 (+1) numbers are not trained.
    standardize = keras.layers.Normalization(axis=-1, name=STANDARDIZE_NAME)
    head = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_NAME,
                              kernel_initializer=head_initializer(seed))
    image = keras.Input(shape=(size, size, 3), name="image")
    x = image
    layers = augmentation_layers(augmentation, seed=seed)
    if layers is not None:
        x = layers(x)
    # training=False keeps BatchNorm in inference mode even once phase 2 unfreezes blocks
    # (Keras' transfer-learning guide): its statistics stay those of the base.
    x = base(x, training=False)
    model = keras.Model(image, head(standardize(x)), name="inception_v3_transfer")
    features = keras.Input(shape=(BOTTLENECK_WIDTH,), name="bottleneck_features")
    head_model = keras.Model(features, head(standardize(features)), name="head_only")
    return model, head_model


def adapt_head(model: keras.Model, train_features: np.ndarray) -> None:
    """Set the head's feature standardisation from the training images' bottleneck features."""
    model.get_layer(STANDARDIZE_NAME).adapt(np.asarray(train_features, dtype=np.float32))


def compile_for_training(model: keras.Model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def unfreeze_top_blocks(base: keras.Model, blocks: int) -> int:
    """Make the top `blocks` inception blocks trainable (BatchNorm stays frozen).

    Returns how many layers became trainable.
    """
    import keras

    boundary = TOP_BLOCK_BOUNDARY[blocks]
    names = [layer.name for layer in base.layers]
    last_frozen = names.index(boundary)
    base.trainable = True
    unfrozen = 0
    for i, layer in enumerate(base.layers):
        train = i > last_frozen and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train
        unfrozen += bool(train and layer.weights)
    return unfrozen


@dataclass(frozen=True)
class ParameterCounts:
    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen


def parameter_counts(model: keras.Model) -> ParameterCounts:
    """Trainable vs frozen (non-trainable) parameters, as Keras counts them."""
    def count(weights) -> int:
        return int(sum(int(np.prod(w.shape)) for w in weights))

    return ParameterCounts(count(model.trainable_weights), count(model.non_trainable_weights))


def base_passes(config: TransferConfig, n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    """Images sent through the Inception v3 base by a run (the cost that dominates on a CPU).

    Both modes pass every image once for the bottleneck features (fast mode trains on them;
    full mode sets the head's standardisation from them; both score the test set with them).
    Full mode then repeats the training and validation images every epoch; phase 2 does so in
    either mode, and scores the test set once more.
    """
    once = n_train + n_val + n_test
    per_epoch = n_train + n_val
    phase1 = config.epochs * per_epoch if config.mode == "full" else 0
    phase2 = config.fine_tune_epochs * per_epoch + n_test if config.phase2 else 0
    return {"features": once, "phase 1": phase1, "phase 2": phase2,
            "total": once + phase1 + phase2}


def head_parameters(num_classes: int) -> int:
    """The new head's trained weights: a 2048 x k kernel plus k biases."""
    return BOTTLENECK_WIDTH * num_classes + num_classes


# ---------------------------------------------------------------------------------------
# Bottleneck features and batches


def bottleneck_features(base: keras.Model, pixels: np.ndarray, batch_size: int = 32,
                        on_progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> np.ndarray | None:
    """float32 (n, 2048): each image through the frozen base once. None when stopped.

    Eager calls, batch by batch: tracing Inception's 300-layer graph for `predict` costs tens
    of seconds on a CPU, more than a few hundred images take eagerly.
    """
    n = len(pixels)
    out = np.empty((n, BOTTLENECK_WIDTH), dtype=np.float32)
    for start in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            return None
        end = min(start + batch_size, n)
        out[start:end] = np.asarray(base(to_model_input(pixels[start:end]), training=False))
        if on_progress is not None:
            on_progress(end, n)
    return out


def epoch_orders(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The shuffled order of the n training examples in each epoch (a function of the seed)."""
    return [np.random.default_rng([seed, epoch]).permutation(n) for epoch in range(epochs)]


def batch_stream(inputs: Callable[[np.ndarray], np.ndarray], labels: np.ndarray,
                 input_shape: Sequence[int], batch_size: int, epochs: int, seed: int):
    """A tf.data.Dataset of (x, y) batches for `epochs` epochs, shuffled by `epoch_orders`.

    `inputs(indices)` returns the model inputs for those examples (cached features, or
    images scaled to [-1, 1]). Fast and full mode use this same stream, so they see the same
    batches in the same order. Use with `steps_per_epoch=ceil(n / batch_size)`.
    """
    import tensorflow as tf

    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    batches = [order[i:i + batch_size] for order in epoch_orders(n, epochs, seed)
               for i in range(0, n, batch_size)]

    def fetch(i):
        idx = batches[int(i)]
        return np.asarray(inputs(idx), dtype=np.float32), labels[idx]

    def typed(i):
        x, y = tf.numpy_function(fetch, [i], [tf.float32, tf.int64])
        return tf.ensure_shape(x, [None, *input_shape]), tf.ensure_shape(y, [None])

    # A sequential map: batches come out in exactly the order listed above.
    return tf.data.Dataset.range(len(batches)).map(typed).prefetch(1)


class FeatureCache:
    """Bottleneck features already computed, by (dataset, image size, base weights).

    Kept per browser session; a few entries at most (each is n x 2048 float32).
    """

    def __init__(self, max_entries: int = 4) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.max_entries = max_entries

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: tuple, features: np.ndarray) -> None:
        with self._lock:
            self._entries[key] = features
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# ---------------------------------------------------------------------------------------
# After training


# ---------------------------------------------------------------------------------------
# A run: data + config → one or two jobs of the shared runner


@dataclass(frozen=True)
class BaseWeights:
    """Where the base's weights come from (`weights` is what InceptionV3 is given)."""

    weights: str | None       # no-top .h5 path, "imagenet", or None (untrained)
    pretrained: bool
    message: str              # one line for the page

    def key(self, seed: int) -> str:
        """Identifies the base's weights; an untrained base is a function of the seed."""
        return self.weights or f"untrained-seed{seed}"


UNTRAINED_MESSAGE = ("Untrained base: Inception v3 with random weights. Its bottleneck features "
                     "are random projections, so expect far lower accuracy than with ImageNet "
                     "weights.")


def resolve_base_weights(untrained: bool = False) -> BaseWeights:
    """The no-top weights through cnnlab.vision.inception's sourcing (env file, Keras cache);
    without them (or when asked), an untrained base that says so."""
    from cnnlab.vision import inception

    if untrained:
        return BaseWeights(None, False, UNTRAINED_MESSAGE)
    status = inception.weights_status(include_top=False)
    if status.source == "env":
        return BaseWeights(str(status.path), True, status.message)
    if status.source == "cache":
        # Keras finds its cached file (and checks its hash) through the real "imagenet" path.
        return BaseWeights("imagenet", True, status.message)
    return BaseWeights(None, False, f"{UNTRAINED_MESSAGE} {status.message}")


class TransferRun:
    """One transfer-learning run of one browser session.

    Holds the data, the config, the job(s) it submits to the shared `JobManager`, and the
    trained full model (`model`, base + head) once phase 1 has built it. The page polls
    `status()` and the jobs' snapshots; `advance()` submits phase 2 when phase 1 is done.
    """

    def __init__(self, dataset: ImageDataset, split: Split, config: TransferConfig,
                 base_weights: BaseWeights, cache: FeatureCache | None = None) -> None:
        config.validate()
        self.config = config
        self.base_weights = base_weights
        self.class_names = list(dataset.class_names)
        self.cache = cache if cache is not None else FeatureCache()
        self._dataset_key = dataset.fingerprint()
        self._paths = {part: [dataset.paths[i] for i in getattr(split, part)]
                       for part in ("train", "val", "test")}
        self.labels = {part: dataset.labels[getattr(split, part)] for part in ("train", "val", "test")}
        self.test_names = [dataset.relative_name(i) for i in split.test]
        self.image_size = config.image_size
        self._lock = threading.Lock()
        self._stage = "waiting to start"
        self._stage_progress = 0.0
        self.timings: dict[str, float] = {}
        self.batch_seconds: dict[int, list[float]] = {1: [], 2: []}  # per phase, training steps
        self.feature_cache_hit: bool | None = None
        self.model: keras.Model | None = None
        self.base: keras.Model | None = None
        self.head_model: keras.Model | None = None
        self.parameters: dict[str, ParameterCounts] = {}
        self.pixels: dict[str, np.ndarray] = {}
        self.phase1 = TrainingJob(
            self._build_phase1, seed=config.seed,
            label=f"Transfer ({config.mode} mode): the head, {config.epochs} "
                  f"epoch{'s' if config.epochs > 1 else ''}",
            config={"kind": "transfer", "phase": 1, **config.as_dict()},
        )
        self.phase2: TrainingJob | None = None

    # ---- status for the page --------------------------------------------------------------
    def _set_stage(self, text: str, progress: float) -> None:
        with self._lock:
            self._stage, self._stage_progress = text, progress

    def status(self) -> tuple[str, float]:
        with self._lock:
            return self._stage, self._stage_progress

    def jobs(self) -> list[TrainingJob]:
        return [j for j in (self.phase1, self.phase2) if j is not None]

    @property
    def current_job(self) -> TrainingJob:
        return self.phase2 or self.phase1

    @property
    def finished(self) -> bool:
        """Nothing more will happen: a phase failed or stopped, or every phase is done."""
        states = [j.state for j in self.jobs()]
        if any(s in ("failed", "stopped") for s in states):
            return True
        if states[-1] != "done":
            return False
        return self.phase2 is not None or not self.config.phase2

    def report(self) -> TestReport | None:
        """The test report of the last phase that completed."""
        for job in reversed(self.jobs()):
            report = job.result.get("report")
            if report is not None:
                return report
        return None

    def submit(self, manager: JobManager, owner: str) -> None:
        manager.submit(owner, self.phase1)

    def advance(self, manager: JobManager, owner: str) -> bool:
        """Submit phase 2 once phase 1 is done (called from the page's polling). True if it did."""
        with self._lock:
            if (not self.config.phase2 or self.phase2 is not None
                    or self.phase1.state != "done" or self.model is None):
                return False
            cfg = self.config
            self.phase2 = TrainingJob(
                self._build_phase2, seed=cfg.seed + 1,
                label=f"Transfer phase 2: top {cfg.fine_tune_blocks} inception block"
                      f"{'s' if cfg.fine_tune_blocks > 1 else ''}, {cfg.fine_tune_epochs} "
                      f"epoch{'s' if cfg.fine_tune_epochs > 1 else ''}",
                config={"kind": "transfer", "phase": 2, **cfg.as_dict()},
            )
        manager.submit(owner, self.phase2)
        return True

    def stop(self) -> None:
        for job in self.jobs():
            job.stop()

    def release_training_data(self) -> None:
        """Once finished: drop the training and validation pixels (the test images stay for
        the misclassified gallery)."""
        if self.finished:
            for part in ("train", "val"):
                self.pixels.pop(part, None)

    # ---- in the worker thread ---------------------------------------------------------------
    def _load_data(self, stop: Callable[[], bool]) -> bool:
        total = sum(len(p) for p in self._paths.values())
        done = 0
        for part in ("train", "val", "test"):
            if part in self.pixels:
                done += len(self.pixels[part])
                continue
            if stop():
                return False
            self._set_stage(f"decoding {total} images at {self.image_size}x{self.image_size}",
                            done / max(total, 1))
            self.pixels[part] = load_pixels(self._paths[part], self.image_size)
            done += len(self.pixels[part])
        return True

    def _features(self, stop: Callable[[], bool]) -> dict[str, np.ndarray] | None:
        key = (self._dataset_key, self.image_size, self.base_weights.key(self.config.seed))
        cached = self.cache.get(key)
        self.feature_cache_hit = cached is not None
        if cached is not None:
            self.timings.setdefault("features_s", 0.0)
            all_features = cached
        else:
            pixels = np.concatenate([self.pixels[p] for p in ("train", "val", "test")])
            n = len(pixels)

            def progress(done: int, total: int) -> None:
                self._set_stage(f"bottleneck features: {done}/{total} images through the "
                                "frozen base (once; cached for the next runs)", done / total)

            t0 = time.perf_counter()
            all_features = bottleneck_features(self.base, pixels, self.config.batch_size,
                                               progress, stop)
            if all_features is None:
                return None
            self.timings["features_s"] = time.perf_counter() - t0
            self.timings["features_images"] = float(n)
            self.cache.put(key, all_features)
        n_train, n_val = len(self.labels["train"]), len(self.labels["val"])
        return {"train": all_features[:n_train], "val": all_features[n_train:n_train + n_val],
                "test": all_features[n_train + n_val:]}

    def _build_phase1(self) -> TrainSetup:
        cfg = self.config
        job = self.phase1

        def stop() -> bool:
            return job.state in ("stopping", "stopped")

        def stopped_setup() -> TrainSetup:
            # The runner sees the stop request right after build() and ends as "stopped".
            return TrainSetup(model=self.model, x=np.zeros((0, 1)), epochs=0)

        self._set_stage("building Inception v3", 0.0)
        self.base = build_base(self.image_size, self.base_weights.weights)
        self.model, self.head_model = build_classifier(self.base, len(self.class_names),
                                                        cfg.augmentation, cfg.seed)
        bs = cfg.batch_size
        y = self.labels
        n_train = len(y["train"])
        steps = -(-n_train // bs)
        if not self._load_data(stop):
            return stopped_setup()
        # Both modes need the training features once: the head's standardisation is set from
        # them (fast mode also trains on them). They are cached per dataset/size/weights.
        features = self._features(stop)
        if features is None:
            return stopped_setup()
        adapt_head(self.head_model, features["train"])
        self.parameters["phase 1"] = parameter_counts(self.model)
        if cfg.mode == "fast":
            train_model = self.head_model
            x = batch_stream(lambda idx: features["train"][idx], y["train"], (BOTTLENECK_WIDTH,),
                             bs, cfg.epochs, cfg.seed)
            validation = (features["val"], y["val"])

        else:
            train_model = self.model
            train_pixels = self.pixels["train"]
            x = batch_stream(lambda idx: to_model_input(train_pixels[idx]), y["train"],
                             (self.image_size, self.image_size, 3), bs, cfg.epochs, cfg.seed)
            validation = (to_model_input(self.pixels["val"]), y["val"])

        def test_probs() -> np.ndarray:
            # The base is frozen in phase 1 (and augmentation is off at inference), so the full
            # model's output on a test image IS the head's output on its cached features.
            return predict_probs(self.head_model, features["test"], bs)
        compile_for_training(train_model, cfg.learning_rate)
        self._set_stage(f"training the head ({cfg.mode} mode)", 1.0)

        def evaluate(_model) -> dict[str, Any]:
            report = test_report(test_probs(), y["test"], self.class_names)
            self._set_stage("done" if not cfg.phase2 else "phase 1 done", 1.0)
            return {"report": report, "test_accuracy": report.accuracy}

        return TrainSetup(
            model=train_model, x=x, validation_data=validation, epochs=cfg.epochs,
            batch_size=bs, steps_per_epoch=steps, samples_per_epoch=n_train,
            evaluate=evaluate,
            fit_kwargs={"shuffle": False, "callbacks": [batch_timer(self.batch_seconds[1])]},
            info={"mode": cfg.mode, "base": self.base_weights.message,
                  "trainable": self.parameters["phase 1"].trainable,
                  "frozen": self.parameters["phase 1"].frozen},
        )

    def _full_test_probs(self) -> np.ndarray:
        return predict_probs(self.model, to_model_input(self.pixels["test"]),
                             self.config.batch_size)

    def _build_phase2(self) -> TrainSetup:
        cfg = self.config
        y = self.labels
        self._set_stage(f"phase 2: unfreezing the top {cfg.fine_tune_blocks} inception "
                        "block(s)", 0.0)
        unfreeze_top_blocks(self.base, cfg.fine_tune_blocks)
        compile_for_training(self.model, cfg.fine_tune_learning_rate)
        self.parameters["phase 2"] = parameter_counts(self.model)
        bs = cfg.batch_size
        train_pixels = self.pixels["train"]
        n_train = len(train_pixels)
        x = batch_stream(lambda idx: to_model_input(train_pixels[idx]), y["train"],
                         (self.image_size, self.image_size, 3), bs, cfg.fine_tune_epochs,
                         cfg.seed + 1)
        self._set_stage("phase 2: fine-tuning", 1.0)

        def evaluate(_model) -> dict[str, Any]:
            report = test_report(self._full_test_probs(), y["test"], self.class_names)
            self._set_stage("done", 1.0)
            return {"report": report, "test_accuracy": report.accuracy}

        return TrainSetup(
            model=self.model, x=x, validation_data=(to_model_input(self.pixels["val"]), y["val"]),
            epochs=cfg.fine_tune_epochs, batch_size=bs, steps_per_epoch=-(-n_train // bs),
            samples_per_epoch=n_train, evaluate=evaluate,
            fit_kwargs={"shuffle": False, "callbacks": [batch_timer(self.batch_seconds[2])]},
            info={"mode": "fine-tune", "trainable": self.parameters["phase 2"].trainable,
                  "frozen": self.parameters["phase 2"].frozen},
        )

    # ---- speed-up of fast mode --------------------------------------------------------------
    def speedup(self) -> dict[str, float] | None:
        """Fast mode, measured: one pass of the training images through the frozen base (what
        every uncached epoch repeats) against a cached head epoch.

        The cached epoch is the median training step times the steps per epoch; the very first
        step is left out (it traces the graph), so at least two steps are needed.
        """
        steps = self.batch_seconds[1][1:]
        if self.config.mode != "fast" or "features_images" not in self.timings or not steps:
            return None
        per_image = self.timings["features_s"] / self.timings["features_images"]
        n_train = len(self.labels["train"])
        uncached_epoch = per_image * n_train
        cached_epoch = float(np.median(steps)) * -(-n_train // self.config.batch_size)
        return {"uncached_epoch_s": uncached_epoch, "cached_epoch_s": cached_epoch,
                "ratio": uncached_epoch / cached_epoch if cached_epoch > 0 else float("inf"),
                "features_s": self.timings["features_s"]}


def batch_timer(into: list[float]):
    """A Keras callback appending each training step's duration to `into`."""
    import keras

    class _BatchTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            into.append(time.perf_counter() - self._t0)

    return _BatchTimer()


def epoch_timer(into: list[float]):
    """A Keras callback appending each epoch's training time (batches only) to `into`."""
    import keras

    class _EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()
            self._t_last = None

        def on_train_batch_end(self, batch, logs=None):
            self._t_last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if self._t_last is not None:
                into.append(self._t_last - self._t0)

    return _EpochTimer()


# ---------------------------------------------------------------------------------------
# Reattaching after a browser refresh (a new Streamlit session, same owner token in the URL)

_RUNS_LOCK = threading.Lock()
_RUNS: dict[str, TransferRun] = {}


def remember_run(owner: str, run: TransferRun) -> None:
    """Keep the owner's latest run (one per owner; the job manager keeps the jobs)."""
    with _RUNS_LOCK:
        _RUNS[owner] = run


def run_of(owner: str) -> TransferRun | None:
    with _RUNS_LOCK:
        return _RUNS.get(owner)


CLASSIFY_KEY = "classify_custom_model"


def classify_handoff(run: TransferRun) -> dict[str, Any]:
    """What the Classify page needs to use the trained classifier (session_state[CLASSIFY_KEY]).

    The model takes (n, image_size, image_size, 3) float32 in [-1, 1], i.e.
    `cnnlab.vision.images.inception_input(img, image_size)`, and outputs softmax over `labels`.
    """
    report = run.report()
    return {
        "model": run.model,
        "labels": list(run.class_names),
        "image_size": run.image_size,
        "preprocessing": "inception",  # cnnlab.vision.images.inception_input(img, image_size)
        "name": f"Transfer: Inception v3 + {len(run.class_names)}-class head "
                f"({', '.join(run.class_names)})",
        "pretrained_base": run.base_weights.pretrained,
        "test_accuracy": report.accuracy if report is not None else None,
    }
