"""`python -m cnnlab fetch`: download everything a lecture needs, ahead of time.

Inception v3 weights (with and without the classifier top), MNIST and Fashion-MNIST go
into Keras' own cache through `keras.utils.get_file`, the function Keras itself uses,
with its progress bar and its checksum verification, so that afterwards
`InceptionV3(weights="imagenet")` and `keras.datasets.*.load_data()` work offline.
Files already present are verified, not downloaded again. Exit 0 when everything is
present; otherwise each failure is named and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class Download:
    group: str        # what a lecture calls it
    fname: str        # file name in the Keras cache
    cache_subdir: str  # under $KERAS_HOME, as Keras' own loader uses it
    url: str
    file_hash: str    # md5 or sha256, as get_file accepts
    hash_source: str


def catalogue(mirror: str | None = None) -> list[Download]:
    """The files, with the hashes their publishers give (Keras' sources; Zalando for Fashion)."""
    from cnnlab.vision.inception import WEIGHTS_FILES

    def url(default: str) -> str:
        return mirror.rstrip("/") + "/" + default.rsplit("/", 1)[1] if mirror else default

    items = [
        Download(f"Inception v3 weights ({'top' if top else 'notop'})", spec.fname, "models",
                 url(spec.url), spec.md5, "keras/src/applications/inception_v3.py")
        for top, spec in ((True, WEIGHTS_FILES[True]), (False, WEIGHTS_FILES[False]))
    ]
    items.append(Download(
        "MNIST", "mnist.npz", "datasets", url(KERAS_DATASETS_URL + "mnist.npz"),
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        "keras/src/datasets/mnist.py"))
    # keras/src/datasets/fashion_mnist.py passes no hash; these are the MD5s Zalando
    # publishes in the Fashion-MNIST README for the same four files.
    fashion = {
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    }
    items += [Download("Fashion-MNIST", fname, os.path.join("datasets", "fashion-mnist"),
                       url(KERAS_DATASETS_URL + fname), md5, "zalandoresearch/fashion-mnist README")
              for fname, md5 in fashion.items()]
    return items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="only report what is present (verified) and what is missing")
    parser.add_argument("--only", choices=("inception", "mnist", "fashion_mnist"),
                        help="fetch one group only")
    parser.add_argument("--mirror", metavar="URL",
                        help="download from a mirror holding the same file names")


def _selected(items: list[Download], only: str | None) -> list[Download]:
    prefix = {"inception": "Inception", "mnist": "MNIST", "fashion_mnist": "Fashion"}.get(only or "")
    return [item for item in items if not prefix or item.group.startswith(prefix)]


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras.src.utils.file_utils import validate_file
    from keras.utils import get_file

    from cnnlab.vision.inception import keras_home

    home = keras_home()
    print(f"Keras cache: {home}")
    failures: list[str] = []
    items = _selected(catalogue(args.mirror), args.only)
    for item in items:
        target = Path(home) / item.cache_subdir / item.fname
        label = f"{item.group}: {item.fname}"
        if target.is_file() and validate_file(str(target), item.file_hash):
            print(f"present   {label} (checksum verified)")
            continue
        if args.check:
            state = "corrupt" if target.is_file() else "missing"
            print(f"{state:<9} {label}")
            failures.append(f"{label} is {state}")
            continue
        print(f"fetching  {label}", flush=True)  # Keras prints the URL and a progress bar
        try:
            get_file(item.fname, item.url, cache_subdir=item.cache_subdir, file_hash=item.file_hash)
        except Exception as exc:  # offline, HTTP error, checksum mismatch: name it, go on
            reason = " ".join(str(exc).split()) or type(exc).__name__
            print(f"FAILED    {label}: {reason}")
            failures.append(f"{label}: {reason}")
        else:
            print(f"fetched   {label} (checksum verified)")
    if failures:
        verb = "missing" if args.check else "could not be fetched (see FAILED above)"
        print(f"error: {len(failures)} of {len(items)} files {verb}", file=sys.stderr)
        return 1
    print("Everything a lecture needs is present.")
    return 0
