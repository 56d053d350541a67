"""Keras callbacks that time training: they record durations and never touch the UI."""

from __future__ import annotations

import time


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
