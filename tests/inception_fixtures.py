"""Inception v3 weights files for tests: offline, made from `InceptionV3(weights=None)`.

Import the fixtures into a test module (or a conftest) with
`from tests.inception_fixtures import inception_weights, inception_notop_weights`.

The files are written once and kept under .pytest_cache/cnnlab/ (keyed by the Keras
version), in the same legacy HDF5 layout as Keras' published
inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5, so the tests load them
through the same `load_weights` path as the real files. They hold random weights: tests
compare cnnlab against Keras on the same weights, never claim real predictions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import ROOT

FIXTURE_DIR = ROOT / ".pytest_cache" / "cnnlab"
SEED = 1234


def make_weights_file(include_top: bool, directory: Path = FIXTURE_DIR) -> Path:
    """Path of a random-weights InceptionV3 file in Keras' legacy .h5 layout (cached)."""
    import keras

    suffix = "" if include_top else "_notop"
    path = directory / f"inception_v3_random{suffix}_keras{keras.__version__}_seed{SEED}.h5"
    if path.is_file():
        return path
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    directory.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    model = keras.applications.InceptionV3(weights=None, include_top=include_top)
    if include_top:
        # A random network's softmax is near-uniform, its ranking decided in the 8th
        # decimal. Scaling the classifier kernel so that logits on real photos spread
        # with a standard deviation of 3 makes the top-5 a clear ranking (still random
        # weights, still meaningless classes).
        import numpy as np

        from cnnlab.vision import images

        features = keras.Model(model.input, model.get_layer("avg_pool").output)
        batch = np.stack([images.inception_input(images.sample_photo(n))
                          for n in ("chelsea", "coffee", "rocket")])
        dense = model.get_layer("predictions")
        kernel, bias = dense.get_weights()
        logits = features.predict(batch, verbose=0) @ kernel
        dense.set_weights([kernel * (3.0 / float(logits.std())), bias])
    partial = path.with_suffix(f".{os.getpid()}.part")
    with h5py.File(partial, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    partial.replace(path)  # atomic: parallel sessions never read a half-written file
    del model
    keras.backend.clear_session()
    return path


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    """A weights file for InceptionV3 with its 1000-class top (random, seeded)."""
    return make_weights_file(include_top=True)


@pytest.fixture(scope="session")
def inception_notop_weights() -> Path:
    """A weights file for InceptionV3 without its top (random, seeded)."""
    return make_weights_file(include_top=False)


@pytest.fixture(scope="session")
def inception_classifier(inception_weights):
    """One `cnnlab.vision.inception.Classifier` on the test weights, loaded once per session."""
    from cnnlab.vision import inception

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(inception.ENV_WEIGHTS, str(inception_weights))
        return inception.load_classifier()


@pytest.fixture(scope="session")
def transfer_style_model():
    """A Transfer-page classifier (InceptionV3 base nested inside, 3 classes), random base,
    built by cnnlab.transfer.model itself at 150x150 so that mixed10 is 3x3."""
    import numpy as np

    from cnnlab.transfer import model as transfer
    from cnnlab.transfer.config import Augmentation

    base = transfer.build_base(150, None)
    model, _ = transfer.build_classifier(base, 3, Augmentation(), seed=0)
    features = np.random.default_rng(0).gamma(2.0, 0.01, (16, transfer.BOTTLENECK_WIDTH))
    transfer.adapt_head(model, features.astype("float32"))
    return model
