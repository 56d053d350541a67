"""Inception v3 for cnnlab: where its weights come from, loading it, classifying with it.

Keras is imported only inside the functions that build or run a model. Weight sources,
in order (`weights_status`):

1. the file named by `CNNLAB_INCEPTION_WEIGHTS` (with top) or
   `CNNLAB_INCEPTION_WEIGHTS_NOTOP` (without): a lecture machine's offline copy;
2. Keras' own cache, `$KERAS_HOME/models/inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5`
   (what `python -m cnnlab fetch` or an earlier `weights="imagenet"` left there);
3. the real download: `keras.applications.InceptionV3(weights="imagenet")` fetches the
   file into that cache (`download_weights` shows its progress).

With none of these the answer is an honest `WeightsUnavailable` message. Random weights
are only ever used when asked for by name (`weights="untrained"`), and then every result
says so. Class names come from the shipped index; decoding never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cnnlab.vision import images

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from PIL import Image

ENV_WEIGHTS = "CNNLAB_INCEPTION_WEIGHTS"
ENV_WEIGHTS_NOTOP = "CNNLAB_INCEPTION_WEIGHTS_NOTOP"

# From keras/src/applications/inception_v3.py (Keras 3.15): file names, URLs and the MD5
# hashes Keras verifies after downloading.
_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"


@dataclass(frozen=True)
class WeightsFile:
    fname: str
    md5: str
    approx_bytes: int  # only for the progress bar; the MD5 is what is checked

    @property
    def url(self) -> str:
        return _BASE_URL + self.fname


WEIGHTS_FILES: dict[bool, WeightsFile] = {
    True: WeightsFile("inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                      "9a0d58056eeedaa3f26cb7ebd46da564", 96_112_376),
    False: WeightsFile("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "bcbd6486424b2319ff4ef7d526e38f63", 87_910_968),
}

LABELS_PATH = Path(__file__).resolve().parents[1] / "data" / "imagenet_class_index.json"
# The MD5 Keras checks for its own copy of the index (keras/src/applications/imagenet_utils.py):
# the shipped file is byte-for-byte the one Keras downloads.
LABELS_MD5 = "c2c37ea517e94d9795004a39431a14cb"
NUM_CLASSES = 1000
LAST_CONV_LAYER = "mixed10"  # 8 x 8 x 2048, the block Grad-CAM looks at

Source = Literal["env", "cache", "download", "none"]


class WeightsUnavailable(RuntimeError):
    """No Inception v3 weights can be had; `str(error)` says why and how to get them."""


@dataclass(frozen=True)
class WeightsStatus:
    """Where the weights would come from, with a one-paragraph human message."""

    include_top: bool
    source: Source
    path: Path | None
    message: str

    @property
    def on_disk(self) -> bool:
        """True when loading needs no network."""
        return self.source in ("env", "cache")


def keras_home() -> Path:
    """Keras' cache directory, decided as Keras decides it (keras/src/backend/config.py)."""
    import sys

    if "keras" in sys.modules:  # Keras read KERAS_HOME once, at import: ask it
        from keras.src.backend.config import keras_home as _keras_home

        return Path(_keras_home())
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return Path(base) / ".keras"


def cache_path(include_top: bool = True) -> Path:
    """Where `weights="imagenet"` keeps (or would download) the weights file."""
    return keras_home() / "models" / WEIGHTS_FILES[include_top].fname


def _how_to_get(include_top: bool) -> str:
    env = ENV_WEIGHTS if include_top else ENV_WEIGHTS_NOTOP
    return (f"Run `python -m cnnlab fetch` once while online, or copy "
            f"{WEIGHTS_FILES[include_top].fname} into {cache_path(include_top).parent}, "
            f"or set {env}=/path/to/the/weights.h5.")


def weights_status(include_top: bool = True) -> WeightsStatus:
    """Where Inception v3 weights would come from. Never touches the network."""
    env = ENV_WEIGHTS if include_top else ENV_WEIGHTS_NOTOP
    which = "with the classifier top" if include_top else "without the top (notop)"
    named = os.environ.get(env, "").strip()
    if named:
        path = Path(named).expanduser()
        if path.is_file():
            return WeightsStatus(include_top, "env", path,
                                 f"Inception v3 weights {which} from {path} (set by {env}).")
        # An explicit choice that fails is reported, never silently replaced.
        return WeightsStatus(include_top, "none", path,
                             f"{env} names {path}, which is not a file. {_how_to_get(include_top)}")
    cached = cache_path(include_top)
    if cached.is_file():
        return WeightsStatus(include_top, "cache", cached,
                             f"Inception v3 ImageNet weights {which} from the Keras cache ({cached}).")
    size = WEIGHTS_FILES[include_top].approx_bytes / 1e6
    return WeightsStatus(
        include_top, "download", None,
        f"The Inception v3 ImageNet weights {which} are not on this machine. Keras downloads "
        f"them (about {size:.0f} MB) from {WEIGHTS_FILES[include_top].url} into {cached.parent} "
        f"on first use; offline that fails. {_how_to_get(include_top)}")


# ---------------------------------------------------------------- download

_download_lock = threading.Lock()
Progress = Callable[[int, int], None]


def download_weights(include_top: bool = True, progress: Progress | None = None,
                     stall_seconds: float = 60.0) -> Path:
    """Download the weights into Keras' cache through Keras' own `get_file`, MD5-checked.

    `progress(bytes_so_far, bytes_expected)` is called a few times a second from the
    calling thread (so a page may draw with it); `get_file` itself runs on a worker
    thread and its file is watched as it grows. One download at a time per process.
    Raises `WeightsUnavailable` with the reason (offline, stalled, hash mismatch).
    """
    spec = WEIGHTS_FILES[include_top]
    target = cache_path(include_top)
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        try:
            from keras.utils import get_file

            outcome["path"] = get_file(spec.fname, spec.url, cache_subdir="models",
                                       file_hash=spec.md5)
        except BaseException as exc:  # reported on the calling thread
            outcome["error"] = exc

    with _download_lock:
        worker = threading.Thread(target=fetch, name=f"download-{spec.fname}", daemon=True)
        worker.start()
        last_size, last_change = -1, time.monotonic()
        while worker.is_alive():
            worker.join(timeout=0.25)
            size = target.stat().st_size if target.exists() else 0
            if size != last_size:
                last_size, last_change = size, time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                raise WeightsUnavailable(
                    f"The download of {spec.fname} from {spec.url} stalled for "
                    f"{stall_seconds:.0f} s. {_how_to_get(include_top)}")
            if progress is not None:
                progress(size, spec.approx_bytes)
    if "error" in outcome:
        reason = " ".join(str(outcome["error"]).split()) or type(outcome["error"]).__name__
        # get_file says "URL fetch failure on <url>: <code> -- <reason>"; the URL is ours already.
        reason = reason.rsplit(" -- ", 1)[-1] if reason.startswith("URL fetch failure") else reason
        raise WeightsUnavailable(
            f"Could not download {spec.fname} from {spec.url}: {reason}. {_how_to_get(include_top)}")
    if progress is not None:
        progress(spec.approx_bytes, spec.approx_bytes)
    return Path(outcome["path"])


# ---------------------------------------------------------------- loading

def load_inception(include_top: bool = True, weights: str = "auto") -> keras.Model:
    """A Keras InceptionV3 with real weights, or `WeightsUnavailable`.

    weights: "auto" (the env file, else the Keras cache via `weights="imagenet"`; never
    downloads: call `download_weights` first), "imagenet" (Keras' real path, which
    downloads when needed), "untrained" (random weights, for showing the pipeline only),
    or a path to an .h5 weights file.
    """
    from cnnlab.train.streaming import settle_keras

    if weights == "untrained":
        import keras

        settle_keras(keras)
        return keras.applications.InceptionV3(weights=None, include_top=include_top)
    if weights == "auto":
        status = weights_status(include_top)
        if status.source == "env":
            weights = str(status.path)
        elif status.source == "cache":
            weights = "imagenet"  # Keras finds its cached file and checks its MD5
        else:
            raise WeightsUnavailable(status.message)
    if weights != "imagenet" and not Path(weights).is_file():
        raise WeightsUnavailable(f"{weights} is not a file. {_how_to_get(include_top)}")
    import keras  # only now: a missing-weights answer should not wait for TensorFlow

    settle_keras(keras)
    try:
        return keras.applications.InceptionV3(weights=weights, include_top=include_top)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise WeightsUnavailable(
            f"Inception v3 weights from {weights} could not be loaded: {reason}. "
            f"{_how_to_get(include_top)}") from exc


# ---------------------------------------------------------------- labels

@cache
def imagenet_labels() -> list[tuple[str, str]]:
    """The 1000 ImageNet classes in Keras' order: index -> (WordNet id, name)."""
    index = json.loads(LABELS_PATH.read_text())
    return [tuple(index[str(i)]) for i in range(len(index))]  # type: ignore[misc]


def labels_md5() -> str:
    return hashlib.md5(LABELS_PATH.read_bytes()).hexdigest()


def class_index(name_or_wnid: str) -> int:
    """Index of a class by its name ("tabby") or WordNet id ("n02123045")."""
    for i, (wnid, name) in enumerate(imagenet_labels()):
        if name_or_wnid in (wnid, name):
            return i
    raise KeyError(f"no ImageNet class named {name_or_wnid!r}")


def decode_top(probs: np.ndarray, k: int = 5) -> list[tuple[str, str, float]]:
    """The k most probable classes as (WordNet id, name, probability), best first.

    Same ordering rule as keras.applications.imagenet_utils.decode_predictions
    (`argsort()[-k:][::-1]`), from the shipped index: no network.
    """
    probs = np.asarray(probs)
    if probs.ndim == 2 and probs.shape[0] == 1:
        probs = probs[0]
    if probs.shape != (NUM_CLASSES,):
        raise ValueError(f"decode_top expects {NUM_CLASSES} class probabilities, got shape {probs.shape}")
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"k must be between 1 and {NUM_CLASSES}, got {k}")
    labels = imagenet_labels()
    return [(*labels[i], float(probs[i])) for i in probs.argsort()[-k:][::-1]]


# ---------------------------------------------------------------- the page's path

@dataclass
class Classification:
    """One image through the network: what it saw, what it said, how long it took."""

    name: str
    view: Image.Image            # 299x299 RGB: the image as the network sees it
    probs: np.ndarray            # (n_classes,) softmax output
    top: list[tuple[str, str, float]]  # (WordNet id or "", name, probability), best first
    seconds: float               # preprocess + predict + decode, wall clock
    indices: list[int] = field(default_factory=list)  # class index of each `top` entry


@dataclass
class Classifier:
    """A loaded InceptionV3 shared read-only by every session of a server process.

    The forward pass is one traced `tf.function` (fixed input signature, so one trace and
    no retracing); tf.functions may be called from several threads at once and nothing
    here mutates the model.
    """

    model: keras.Model
    untrained: bool = False
    description: str = ""
    labels: list[str] | None = None  # class names of a non-ImageNet model (Transfer's)
    _forward: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def class_names(self) -> list[str]:
        """Readable name of every output class, in output order."""
        if self.labels is not None:
            return list(self.labels)
        return [name.replace("_", " ") for _, name in imagenet_labels()]

    @property
    def size(self) -> int:
        return int(self.model.input_shape[1] or images.INCEPTION_SIZE)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities (n, 1000) for preprocessed inputs (n, size, size, 3)."""
        if self._forward is None:
            with self._lock:
                if self._forward is None:
                    import tensorflow as tf

                    spec = tf.TensorSpec((None, self.size, self.size, 3), tf.float32)
                    self._forward = tf.function(lambda x: self.model(x, training=False),
                                                input_signature=[spec])
        return self._forward(np.asarray(batch, dtype=np.float32)).numpy()

    def classify(self, img: Image.Image, name: str = "image", k: int = 5) -> Classification:
        """Preprocess (crop, resize, [-1, 1]), predict, decode the top k."""
        start = time.perf_counter()
        view = images.network_view(img, self.size)
        x = images.scale_to_unit_range(np.asarray(view))[None]
        probs = self.predict(x)[0]
        if self.labels is None:
            top = decode_top(probs, k)
            indices = [int(i) for i in probs.argsort()[-k:][::-1]]
        else:  # same ordering rule as decode_top, over the model's own classes
            indices = [int(i) for i in probs.argsort()[-min(k, len(self.labels)):][::-1]]
            top = [("", self.labels[i], float(probs[i])) for i in indices]
        return Classification(name, view, probs, top, time.perf_counter() - start, indices)

    def classify_bytes(self, data: bytes, name: str, k: int = 5) -> Classification:
        """Decode untrusted bytes (ImageError on bad input), then `classify`."""
        start = time.perf_counter()
        result = self.classify(images.decode_image(data, name), name, k)
        result.seconds = time.perf_counter() - start
        return result


def load_classifier(weights: str = "auto", warm_gradcam: bool = False) -> Classifier:
    """`load_inception` (with top) wrapped for classification; warmed up with one image.

    warm_gradcam: also trace Grad-CAM's gradient function now (seconds on a CPU), so that
    a page's first heat map is as quick as the later ones.
    """
    untrained = weights == "untrained"
    if untrained:
        description = "UNTRAINED network: random weights, its classes mean nothing"
    elif weights == "auto":
        description = weights_status(True).message
    else:
        description = f"Inception v3 weights from {weights}"
    classifier = Classifier(load_inception(True, weights), untrained, description)
    # Trace the forward pass now, so the first user's click is not the slow one.
    blank = np.zeros((classifier.size, classifier.size, 3), np.float32)
    classifier.predict(blank[None])
    if warm_gradcam:
        from cnnlab.vision import gradcam

        gradcam.grad_cam(classifier.model, blank, class_index=0)
    return classifier
