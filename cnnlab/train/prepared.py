"""A compiled and traced model kept ready for the first run of a configuration.

Most of a warm server's click -> first point is Keras tracing `train_step` for a new model
(measured: 0.7-0.9 s of the 1.0-1.2 s before the first batch on 2 cores). The warm-up
(cnnlab.train.warmup) has just traced one for the seed's configuration, so instead of
throwing it away it leaves it here with its optimizer's state as it was before any step.
The first run of the same configuration takes it (`adopt`): the run still builds its own
model under the seed lock, so its initial weights are the ones its seed draws, and those
values are copied into the traced model (weights and random-seed state), the optimizer is
put back to its state before any step, and `fit` finds its train function traced. Same seed,
same curve as a freshly built model (tests/test_warmup.py checks it batch by batch).

One model per configuration, taken once: a later run of it builds and traces its own.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.train.config import TrainConfig

# Fields that change neither the graph nor the optimizer's variables' shapes.
_NOT_IN_KEY = ("epochs", "seed", "validation_fraction")
_LOCK = threading.Lock()
_READY: dict[str, Prepared] = {}


@dataclass
class Prepared:
    model: Any                       # a compiled keras.Model whose train function is traced
    optimizer_state: list[np.ndarray]  # the optimizer's variables before any step


def key_of(config: TrainConfig) -> str:
    return json.dumps({k: v for k, v in config.as_dict().items() if k not in _NOT_IN_KEY},
                      sort_keys=True)


def optimizer_state(model) -> list[np.ndarray]:
    """The optimizer's variables now (built first if `fit` has not built them yet): call it
    before the first step to remember the state a fresh run starts from."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return [np.array(v.numpy()) for v in optimizer.variables]


def keep(config: TrainConfig, model, state: list[np.ndarray]) -> None:
    """Leave `model` (trained or not, its train function traced) for the next run of
    `config`; `state`: `optimizer_state(model)` taken before its first step."""
    if getattr(model, "train_function", None) is None:
        return      # never trained: nothing traced, nothing to save
    with _LOCK:
        _READY[key_of(config)] = Prepared(model, state)


def take(config: TrainConfig) -> Prepared | None:
    """The prepared model for `config`, once (None when there is none)."""
    with _LOCK:
        return _READY.pop(key_of(config), None)


def ready() -> list[str]:
    """The keys waiting (for the server's status and tests)."""
    with _LOCK:
        return list(_READY)


def adopt(fresh, prepared: Prepared):
    """`prepared.model` carrying `fresh`'s state: every variable of the model (weights,
    BatchNorm statistics, dropout's seed state) copied from `fresh`, the optimizer back to
    its state before any step. Returns the model to train; `fresh` is left as it was."""
    model = prepared.model
    targets, sources = model.variables, fresh.variables
    if len(targets) != len(sources) or any(tuple(t.shape) != tuple(s.shape)
                                           for t, s in zip(targets, sources, strict=True)):
        raise ValueError("the prepared model does not match this configuration")
    for target, source in zip(targets, sources, strict=True):
        target.assign(source.numpy())
    for variable, value in zip(model.optimizer.variables, prepared.optimizer_state,
                               strict=True):
        variable.assign(value)
    model.stop_training = False
    return model


def clear() -> None:
    with _LOCK:
        _READY.clear()
