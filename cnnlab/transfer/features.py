"""Bottleneck features and the batches both modes train on.

Fast mode sends every image through the frozen base once (`bottleneck_features`), keeps the
2048-wide result (`FeatureCache`) and trains the head on it; full mode sends images through the
base at every step. Both draw the same batches in the same order (`batch_stream`, shuffled by
`epoch_orders`), so the cache changes the speed, not the result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.transfer.image_folder import to_model_input
from cnnlab.transfer.model import BOTTLENECK_WIDTH

if TYPE_CHECKING:
    import keras


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
