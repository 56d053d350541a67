"""cnnlab.vision.inception: weight sources, honest messages, labels, and the page's classification
path checked against Keras' own InceptionV3 + predict + decode_predictions."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnlab.vision import images, inception
from cnnlab.vision.inception import WeightsUnavailable, weights_status
from tests.local_mirror import serve_directory


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No env variables and an empty Keras cache."""
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(inception.ENV_WEIGHTS_NOTOP, raising=False)
    monkeypatch.setattr(inception, "keras_home", lambda: tmp_path / "keras_home")
    return tmp_path / "keras_home"


@pytest.fixture
def classifier(inception_classifier):
    return inception_classifier


# ---------------------------------------------------------------- labels

def test_labels_are_keras_index_in_keras_order():
    labels = inception.imagenet_labels()
    assert len(labels) == 1000
    assert labels[0] == ("n01440764", "tench") and labels[281] == ("n02123045", "tabby")
    assert inception.labels_md5() == inception.LABELS_MD5  # the file Keras downloads
    assert inception.class_index("tabby") == 281 == inception.class_index("n02123045")


def test_decode_top_equals_keras_decode_predictions(monkeypatch):
    import keras
    from keras.applications.imagenet_utils import decode_predictions

    # Seed Keras' cache with the shipped index (same MD5), so Keras decodes offline.
    models = Path(keras.src.backend.config.keras_home()) / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(inception.LABELS_PATH, models / "imagenet_class_index.json")
    probs = np.random.default_rng(3).dirichlet(np.ones(1000)).astype(np.float32)
    ours = inception.decode_top(probs, k=7)
    theirs = decode_predictions(probs[None], top=7)[0]
    assert [(w, n) for w, n, _ in ours] == [(w, n) for w, n, _ in theirs]
    np.testing.assert_allclose([p for *_, p in ours], [p for *_, p in theirs])
    with pytest.raises(ValueError, match="1000"):
        inception.decode_top(np.ones(10))


# ---------------------------------------------------------------- weight sources

def test_status_without_weights_says_how_to_get_them(no_weights):
    status = weights_status()
    assert status.source == "download" and not status.on_disk
    for words in ("not on this machine", "python -m cnnlab fetch", inception.ENV_WEIGHTS,
                  "storage.googleapis.com", str(no_weights / "models")):
        assert words in status.message
    assert weights_status(include_top=False).source == "download"
    assert inception.ENV_WEIGHTS_NOTOP in weights_status(include_top=False).message


def test_load_without_weights_raises_the_honest_message(no_weights):
    with pytest.raises(WeightsUnavailable) as info:
        inception.load_inception()
    assert "python -m cnnlab fetch" in str(info.value)
    assert "\n" not in str(info.value)


def test_status_from_env_and_from_cache(no_weights, monkeypatch, tmp_path):
    cached = inception.cache_path(include_top=False)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"h5")
    status = weights_status(include_top=False)
    assert status.source == "cache" and status.path == cached and status.on_disk
    assert weights_status(include_top=True).source == "download"

    named = tmp_path / "lecture.h5"
    named.write_bytes(b"h5")
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(named))
    assert weights_status().source == "env" and weights_status().path == named
    # A named file that is missing is reported, not silently replaced by another source.
    monkeypatch.setenv(inception.ENV_WEIGHTS_NOTOP, str(tmp_path / "gone.h5"))
    status = weights_status(include_top=False)
    assert status.source == "none" and "gone.h5" in status.message


def test_corrupt_weights_file_gives_a_message(no_weights, monkeypatch, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(bad))
    with pytest.raises(WeightsUnavailable, match="could not be loaded"):
        inception.load_inception()


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
    """A local HTTP server standing in for storage.googleapis.com."""
    served = tmp_path / "served"
    served.mkdir()
    payload = np.random.default_rng(0).bytes(300_000)
    (served / "fake_inception.h5").write_bytes(payload)
    with serve_directory(served) as base:
        monkeypatch.setattr(inception, "_BASE_URL", base)
        yield payload


def test_download_goes_through_keras_get_file_with_progress_and_md5(local_mirror, monkeypatch):
    md5 = hashlib.md5(local_mirror).hexdigest()
    spec = inception.WeightsFile("fake_inception.h5", md5, len(local_mirror))
    monkeypatch.setitem(inception.WEIGHTS_FILES, True, spec)
    target = inception.cache_path(True)
    target.unlink(missing_ok=True)
    seen: list[tuple[int, int]] = []
    try:
        path = inception.download_weights(True, progress=lambda done, total: seen.append((done, total)))
        assert path == target and path.read_bytes() == local_mirror
        assert seen[-1] == (len(local_mirror), len(local_mirror))
        assert weights_status().source == "cache"
    finally:
        target.unlink(missing_ok=True)

    wrong = inception.WeightsFile("fake_inception.h5", "0" * 32, len(local_mirror))
    monkeypatch.setitem(inception.WEIGHTS_FILES, True, wrong)
    with pytest.raises(WeightsUnavailable, match="hash"):
        inception.download_weights(True)
    assert not target.exists() or target.read_bytes() == local_mirror
    target.unlink(missing_ok=True)


def test_download_offline_is_an_honest_message(monkeypatch):
    monkeypatch.setattr(inception, "_BASE_URL", "http://127.0.0.1:9/")  # nothing listens
    monkeypatch.setitem(inception.WEIGHTS_FILES, True,
                        inception.WeightsFile("never.h5", "0" * 32, 1000))
    with pytest.raises(WeightsUnavailable) as info:
        inception.download_weights(True)
    text = str(info.value)
    assert text.startswith("Could not download never.h5 from http://127.0.0.1:9/never.h5")
    assert "python -m cnnlab fetch" in text


# ---------------------------------------------------------------- classification

def test_page_path_top5_equals_keras_predict_and_decode(classifier):
    from keras.applications.inception_v3 import preprocess_input

    assert classifier.untrained is False and "CNNLAB_INCEPTION_WEIGHTS" in classifier.description
    # The Keras InceptionV3 that load_inception built from the weights file, run through
    # Keras' own predict: the page's decoding, preprocessing, traced forward pass and
    # label decoding must give the same top-5.
    oracle = classifier.model
    for name in ("chelsea", "rocket"):
        data = images.sample_photo_bytes(name)
        ours = classifier.classify_bytes(data, f"{name}.jpg", k=5)
        pixels = np.asarray(images.network_view(images.decode_image(data, f"{name}.jpg")))
        expected = oracle.predict(preprocess_input(pixels[None].astype("float32")), verbose=0)[0]
        top5 = expected.argsort()[-5:][::-1]
        labels = inception.imagenet_labels()
        assert [wnid for wnid, _, _ in ours.top] == [labels[i][0] for i in top5]
        np.testing.assert_allclose([p for *_, p in ours.top], expected[top5], rtol=1e-4, atol=1e-6)
        assert ours.view.size == (299, 299) and ours.seconds > 0
        assert ours.top[0][2] > 2 * ours.top[4][2]  # a clear ranking, not ties


def test_classify_bytes_refuses_bad_files(classifier):
    with pytest.raises(images.ImageError, match="^broken.png: "):
        classifier.classify_bytes(b"\x89PNG\r\n\x1a\n garbage", "broken.png")


def test_untrained_mode_is_labelled():
    classifier = inception.load_classifier("untrained")
    assert classifier.untrained and "UNTRAINED" in classifier.description
    assert classifier.predict(np.zeros((1, 299, 299, 3), np.float32)).shape == (1, 1000)
