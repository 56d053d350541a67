"""What a recording shows at each epoch, taken while the run trains: the first layer's
weights, the validation confusion matrix and a few test images' probabilities, before
training and after every epoch (cnnlab.train.recording writes them; a replay's scrubber
shows the latest one before it).

`job_for(config, extend=add_snapshots)` adds the Keras callback that takes them to a Train
run; they land in `setup.context["snapshots"]`. Keras is imported only in the training
thread, where the callback is built.
"""

from __future__ import annotations

import numpy as np

from cnnlab.train.metrics import confusion_matrix, predict_probs

DENSE_UNITS_SHOWN = 16              # a dense net's first hidden units pictured as images


class EpochSnapshots:
    """The first layer's weights, the validation confusion matrix and a few test images'
    probabilities, before training and after every epoch (what a replay's scrubber shows)."""

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray, sample_x: np.ndarray,
                 sample_labels: np.ndarray, sample_images: np.ndarray, classes: int) -> None:
        self._x_val, self._x_sample = x_val, sample_x   # dropped when training ends
        self._initial: list | None = None                  # epoch 0's weights, until used
        self.y_val = np.asarray(y_val, np.int64)
        self.sample_labels = np.asarray(sample_labels, np.int64)
        self.sample_images = np.asarray(sample_images, np.uint8)
        self.classes = classes
        self.epochs: list[int] = []
        self.filters: list[np.ndarray] = []
        self.val_confusion: list[np.ndarray] = []
        self.sample_probs: list[np.ndarray] = []
        self.filters_kind = ""

    def take(self, model, epoch: int) -> None:
        """The pictures after `epoch` (0: before training). Epoch 0's predictions are made
        at the end of epoch 1 from the initial weights, kept meanwhile: the first batch (the
        live curve's first point) does not wait for them."""
        if self._x_val is None:
            return
        kind, pictures = first_layer_pictures(model)
        self.filters_kind = kind
        self.epochs.append(int(epoch))
        self.filters.append(pictures.astype(np.float16))
        if epoch == 0:
            self._initial = model.get_weights()
            return
        self._predict_initial(model)
        self._predict(model)

    def _predict(self, model) -> None:
        val_pred = predict_probs(model, self._x_val, batch_size=512).argmax(axis=1)
        self.val_confusion.append(confusion_matrix(self.y_val, val_pred, self.classes))
        self.sample_probs.append(predict_probs(model, self._x_sample).astype(np.float16))

    def _predict_initial(self, model) -> None:
        if self._initial is None:
            return
        trained = model.get_weights()
        model.set_weights(self._initial)
        try:
            self._predict(model)
        finally:
            model.set_weights(trained)
            self._initial = None

    def release(self, model=None) -> None:
        """Training ended (stopped before epoch 1 ended: epoch 0's predictions now)."""
        if model is not None and self._x_val is not None:
            self._predict_initial(model)
        self._x_val = self._x_sample = self._initial = None

    def callback(self):
        import keras

        snapshots = self

        class _Snapshots(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                snapshots.take(self.model, 0)

            def on_epoch_end(self, epoch, logs=None):
                snapshots.take(self.model, epoch + 1)

            def on_train_end(self, logs=None):
                snapshots.release(self.model)

        return _Snapshots()


def first_layer_pictures(model) -> tuple[str, np.ndarray]:
    """("conv1", (filters, kh, kw)) for a CNN's first conv layer (mean over input channels),
    or ("dense1", (units, 28, 28)) for a dense net's first hidden units."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = np.asarray(weights[0], np.float32)
        if kernel.ndim == 4:                                  # (kh, kw, c_in, filters)
            return "conv1", np.transpose(kernel.mean(axis=2), (2, 0, 1))
        if kernel.ndim == 2 and kernel.shape[0] == 28 * 28:   # (784, units)
            units = kernel[:, :DENSE_UNITS_SHOWN]
            return "dense1", np.transpose(units).reshape(-1, 28, 28)
        break
    return "", np.zeros((0, 1, 1), np.float32)


def add_snapshots(setup) -> None:
    """Give a Train-page `TrainSetup` (cnnlab.train.model.make_build) its EpochSnapshots:
    pass as `job_for(config, extend=add_snapshots)`; they land in `setup.context`."""
    dataset = setup.context["dataset"]
    x_val, y_val = setup.validation_data
    firsts = [int(np.flatnonzero(dataset.y_test == c)[0])
              for c in range(len(dataset.class_names)) if np.any(dataset.y_test == c)]
    images = np.asarray(dataset.x_test[firsts], np.uint8)
    snapshots = EpochSnapshots(x_val, np.asarray(y_val).argmax(axis=1),
                               (images.astype(np.float32) / 255.0)[..., None],
                               dataset.y_test[firsts], images, len(dataset.class_names))
    setup.fit_kwargs.setdefault("callbacks", []).append(snapshots.callback())
    setup.context["snapshots"] = snapshots
