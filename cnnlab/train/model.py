"""The Keras model of a `TrainConfig`, its data, and the training job that fits it.

`build_model(config)` compiles the network; `prepare(dataset)` turns a `Dataset` into what
it trains on; `job_for(config)` is a `cnnlab.train.jobs.TrainingJob` (not yet submitted)
that does both in its worker thread and evaluates on the test set at the end.

Keras is imported only inside the functions that build a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnlab.train import prepared
from cnnlab.train.config import INPUT_SHAPE, NUM_CLASSES, TrainConfig
from cnnlab.train.datasets import Dataset, load_dataset, split_test_per_class
from cnnlab.train.jobs import TrainingJob, TrainSetup, random_draws, seeds_itself


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
    train_idx, val_idx = split_test_per_class(dataset.y_train, val_per_class, seed)
    x = to_inputs(dataset.x_train)
    info = {**dataset.as_dict(), "train_images": int(len(train_idx)),
            "validation_images": int(len(val_idx))}
    return PreparedData(x[train_idx], one_hot(dataset.y_train[train_idx]), x[val_idx],
                        one_hot(dataset.y_train[val_idx]), to_inputs(dataset.x_test),
                        one_hot(dataset.y_test), info)


def make_build(config: TrainConfig, dataset: Dataset | None = None,
               extend: Callable[[TrainSetup], None] | None = None):
    """The `build` callable for a TrainingJob: runs in the worker thread, loads the data
    (unless given), builds the model, and returns a `TrainSetup` with test evaluation.
    `extend(setup)` may add to it there (cnnlab.train.recording.add_snapshots)."""
    config.validate()

    @seeds_itself
    def build() -> TrainSetup:
        # Loading and preparing the data draw nothing from the global seeds (the split has its
        # own seeded generator): outside the seed lock, so other jobs start meanwhile.
        source = dataset or load_dataset(config.dataset)
        data = prepare(source, config.validation_fraction, config.seed)
        with random_draws(hold=True):   # the weights' initial values; held until batch 1
            model = build_model(config)
        ready = prepared.take(config)     # traced by the warm-up: no tracing before batch 1
        if ready is not None:
            try:
                model = prepared.adopt(model, ready)
            except ValueError:
                pass                      # not this network after all: the fresh one trains

        def evaluate(trained) -> dict:
            loss, accuracy = trained.evaluate(data.x_test, data.y_test, verbose=0,
                                              batch_size=256)
            return {"test_loss": float(loss), "test_accuracy": float(accuracy),
                    "test_images": int(len(data.x_test))}

        setup = TrainSetup(model=model, x=data.x_train, y=data.y_train,
                           validation_data=(data.x_val, data.y_val), epochs=config.epochs,
                           batch_size=config.batch_size, evaluate=evaluate,
                           info={**data.info, "params": int(model.count_params())},
                           context={"dataset": source})
        if extend is not None:
            extend(setup)
        return setup
    return build


def job_for(config: TrainConfig, dataset: Dataset | None = None,
            extend: Callable[[TrainSetup], None] | None = None) -> TrainingJob:
    """A TrainingJob (not yet submitted) that trains `config` (`extend`: see make_build)."""
    return TrainingJob(make_build(config, dataset, extend), seed=config.seed,
                       dtype_policy=config.dtype_policy, label=config.label(),
                       config=config.as_dict())
