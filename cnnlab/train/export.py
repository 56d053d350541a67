"""A trained Keras model as a `.keras` file and back: the one export every page offers."""

from __future__ import annotations

import os
import tempfile


def model_bytes(model) -> bytes:
    """The whole model as the bytes of a `.keras` file (architecture, weights, optimizer)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def load_model_bytes(data: bytes):
    """The Keras model saved in `data` (a `.keras` file's bytes)."""
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(data)
        return keras.saving.load_model(path)
