"""The user's image classes as a folder dataset: class folders scanned and validated
(`ImageFolder`), split by fraction into training, validation and test, turned into pixels.

Every file that is not used is listed with its reason: nothing is dropped silently.
Symbolic links are never followed. Pillow and numpy only; no TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.budgets import BudgetError, PixelBudget
from cnnlab.errors import ConfigError
from cnnlab.vision.images import (
    ImageError,
    network_view,
    probe_file,
    read_image,
    scale_to_unit_range,
)

MAX_IMAGES = 5_000  # images kept in memory as uint8 pixels while training
CHECK_SIDE = 32  # the scan's decode check reduces images to about this (the data, not the detail)
RECOMMENDED_PER_CLASS = 100  # fewer images per class than this gets a warning
MIN_PER_CLASS = 3  # one image each for train, validation and test
# Operating-system droppings that are listed as skipped but never decoded.
SYSTEM_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})


class ImageFolderError(ValueError):
    """The user's images cannot be used as a dataset (too few classes or images, an empty
    class, an unreadable archive...); `str(error)` is one line for the user."""


@dataclass(frozen=True)
class SkippedFile:
    """A file of the dataset that is not used, and why (one line)."""

    name: str
    reason: str



@dataclass
class ImageFolder:
    """Readable images in class folders: `paths[i]` belongs to `class_names[labels[i]]`."""

    source: str
    root: Path
    class_names: list[str]
    paths: list[Path]
    labels: np.ndarray
    skipped: list[SkippedFile] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        per_class = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(n) for name, n in zip(self.class_names, per_class, strict=True)}

    def warnings(self) -> list[str]:
        """One line per class with fewer images than recommended."""
        return [
            f"Class '{name}' has only {n} images; at least {RECOMMENDED_PER_CLASS} per class "
            "are recommended for a reliable classifier."
            for name, n in self.counts().items()
            if n < RECOMMENDED_PER_CLASS
        ]

    def relative_name(self, index: int) -> str:
        return self.paths[index].relative_to(self.root).as_posix()

    def fingerprint(self) -> str:
        """Identifies the exact files and labels (for caching bottleneck features)."""
        import hashlib

        digest = hashlib.sha256(self.source.encode())
        for path, label in zip(self.paths, self.labels.tolist(), strict=True):
            st_ = path.stat()
            digest.update(f"{path}|{label}|{st_.st_size}|{st_.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]




# ---------------------------------------------------------------------------------------
# Class folders


def _is_system(name: str) -> bool:
    return name.lower() in SYSTEM_NAMES or name.startswith("._")


def hidden_or_system(name: str) -> bool:
    """A file or folder the scan lists as skipped and never reads (system or hidden)."""
    return _is_system(name) or name.startswith(".")


def _visible_children(folder: Path) -> tuple[list[Path], list[Path]]:
    dirs, files = [], []
    for child in sorted(folder.iterdir()):
        if _is_system(child.name) or child.name.startswith("."):
            continue
        if child.is_symlink():
            files.append(child)  # listed as skipped later, never followed
        elif child.is_dir():
            dirs.append(child)
        else:
            files.append(child)
    return dirs, files


def find_class_root(root: Path) -> Path:
    """Descend through single wrapper folders (`pets/cats`, `pets/dogs` → `pets`)."""
    current = root
    for _ in range(8):
        dirs, files = _visible_children(current)
        if len(dirs) == 1 and not files and _visible_children(dirs[0])[0]:
            current = dirs[0]
        else:
            break
    return current


def _probe(path: Path) -> tuple[int | None, str | None]:
    """(declared pixels, None) when the header is a readable image, else (None, reason).
    Reads the header only: nothing is decoded."""
    if path.is_symlink():
        return None, "symbolic link, not followed"
    try:
        return probe_file(path).pixels, None
    except ImageError as exc:
        return None, exc.reason


def _decode_check(path: Path) -> str | None:
    """None when the file decodes, otherwise the one-line reason. Decoded small (the check
    needs the data, not the resolution), one image at a time."""
    try:
        read_image(path, min_side=CHECK_SIDE)
    except ImageError as exc:
        return exc.reason
    return None


def scan_class_folders(root: Path, source: str) -> ImageFolder:
    """Validate class folders under `root`; unreadable files are skipped and listed."""
    class_root = find_class_root(root)
    skipped: list[SkippedFile] = []

    def shown(path: Path) -> str:
        return path.relative_to(root).as_posix()

    for dirpath, dirnames, filenames in os.walk(root):
        # Everything the class walk below will not see: system droppings, hidden files,
        # files next to the class folders.
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if _is_system(name) or name.startswith("."):
                skipped.append(SkippedFile(shown(here / name) + "/", "system or hidden folder"))
            elif (here / name).is_symlink():
                # os.walk lists links to folders but never enters them: say so.
                skipped.append(SkippedFile(shown(here / name) + "/", "symbolic link, not followed"))
            else:
                kept.append(name)
        dirnames[:] = kept
        inside_class = here != class_root and here.is_relative_to(class_root)
        for name in sorted(filenames):
            path = here / name
            if _is_system(name) or name.startswith("."):
                skipped.append(SkippedFile(shown(path), "system or hidden file"))
            elif not inside_class:
                skipped.append(SkippedFile(shown(path), "not inside a class folder"))

    class_dirs, _ = _visible_children(class_root)
    class_dirs = [d for d in class_dirs if not d.is_symlink()]
    if len(class_dirs) < 2:
        found = ", ".join(d.name for d in class_dirs) or "none"
        raise ImageFolderError(
            f"{source}: needs at least two class folders (one per class, e.g. cats/ and dogs/); "
            f"found {len(class_dirs)} ({found})."
        )

    paths: list[Path] = []
    labels: list[int] = []
    budget = PixelBudget(f"{source}")
    for label, class_dir in enumerate(class_dirs):
        for dirpath, dirnames, filenames in os.walk(class_dir):  # links never followed
            # Same pruning as the listing walk above, which has recorded what it prunes.
            dirnames[:] = sorted(
                d for d in dirnames
                if not (_is_system(d) or d.startswith(".") or Path(dirpath, d).is_symlink())
            )
            for name in sorted(filenames):
                if _is_system(name) or name.startswith("."):
                    continue  # listed above
                path = Path(dirpath) / name
                # Budgets before work (issue 15): headers only, counted and summed first.
                pixels, reason = _probe(path)
                if reason is not None:
                    skipped.append(SkippedFile(shown(path), reason))
                    continue
                if len(paths) >= MAX_IMAGES:
                    raise ImageFolderError(f"{source}: more than the {MAX_IMAGES:,} images "
                                           "allowed; refused before decoding any.")
                try:
                    budget.charge(shown(path), pixels)
                except BudgetError as exc:
                    raise ImageFolderError(str(exc)) from None
                paths.append(path)
                labels.append(label)

    # Every header passed and the archive is within its budgets: now decode each image once
    # (one at a time, reduced while decoding) to catch truncated or corrupt data.
    readable = []
    for path, label in zip(paths, labels, strict=True):
        reason = _decode_check(path)
        if reason is not None:
            skipped.append(SkippedFile(shown(path), reason))
        else:
            readable.append((path, label))
    counted = np.bincount([label for _, label in readable], minlength=len(class_dirs))
    empty = [d.name for d, n in zip(class_dirs, counted, strict=True) if n == 0]
    paths = [path for path, _ in readable]
    labels = [label for _, label in readable]
    if len(paths) == 0:
        raise ImageFolderError(f"{source}: no readable images in any class folder.")
    if empty:
        raise ImageFolderError(
            f"{source}: class folder{'s' if len(empty) > 1 else ''} "
            f"{', '.join(repr(e) for e in empty)} hold{'' if len(empty) > 1 else 's'} no readable images."
        )
    if len(paths) > MAX_IMAGES:
        raise ImageFolderError(f"{source}: {len(paths):,} images, more than the {MAX_IMAGES:,} allowed.")
    dataset = ImageFolder(
        source=source,
        root=root,
        class_names=[d.name for d in class_dirs],
        paths=paths,
        labels=np.asarray(labels, dtype=np.int64),
        skipped=sorted(skipped, key=lambda s: s.name),
    )
    small = [n for n, c in dataset.counts().items() if c < MIN_PER_CLASS]
    if small:
        raise ImageFolderError(
            f"{source}: class{'es' if len(small) > 1 else ''} {', '.join(repr(s) for s in small)} "
            f"{'have' if len(small) > 1 else 'has'} fewer than {MIN_PER_CLASS} readable images "
            "(one each for training, validation and test)."
        )
    return dataset


def server_directories() -> list[Path]:
    """Dataset folders named by the server's config: env CNNLAB_TRANSFER_DATA (os.pathsep list)."""
    value = os.environ.get("CNNLAB_TRANSFER_DATA", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def load_directory(path: str | Path) -> ImageFolder:
    """Validate a folder of class folders on the server (read in place, nothing written)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ImageFolderError(f"{folder}: not a directory on the server.")
    return scan_class_folders(folder, str(folder))


# ---------------------------------------------------------------------------------------
# Splits and pixels


@dataclass(frozen=True)
class Split:
    """Indices into an ImageFolder for training, validation and test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int

    def sizes(self, labels: np.ndarray, class_names: Sequence[str]) -> list[dict[str, object]]:
        """One row per class plus a total row: images in each part."""
        rows: list[dict[str, object]] = []
        for c, name in enumerate(class_names):
            rows.append({
                "class": name,
                "train": int(np.sum(labels[self.train] == c)),
                "validation": int(np.sum(labels[self.val] == c)),
                "test": int(np.sum(labels[self.test] == c)),
            })
        rows.append({"class": "total", "train": len(self.train), "validation": len(self.val),
                     "test": len(self.test)})
        return rows


def split_by_fraction(labels: np.ndarray, val_fraction: float = 0.15,
                      test_fraction: float = 0.15, seed: int = 0) -> Split:
    """Three parts by FRACTION of each class, seeded: every part keeps the class proportions.

    Each class gives round(n * fraction) images, at least one, to validation and to test;
    the rest train. ConfigError (one line) when the fractions cannot be honoured.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"Validation ({val_fraction}) and test ({test_fraction}) fractions must be above 0 "
            "and add up to less than 1."
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = len(members)
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise ConfigError(f"Class {int(c)} has {n} images: too few to split three ways.")
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    return Split(
        train=np.sort(np.concatenate(parts["train"])),
        val=np.sort(np.concatenate(parts["val"])),
        test=np.sort(np.concatenate(parts["test"])),
        seed=seed,
    )


def load_pixels(paths: Sequence[Path], size: int) -> np.ndarray:
    """uint8 (n, size, size, 3): each image exactly as the Classify page shows it to the
    network (`network_view`: centre crop, resize). Kept as bytes so thousands fit in memory;
    `to_model_input` then scales them to [-1, 1] like Keras' `preprocess_input`."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = np.asarray(network_view(read_image(path, min_side=size), size))
    return out


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1] (Inception's `preprocess_input`, mode "tf")."""
    return scale_to_unit_range(pixels)


PARTS = ("train", "val", "test")


class SplitImages:
    """One run's images: per part of the split, the files, labels and (once decoded) pixels.

    The training and validation pixels can be released once the run is over; the test
    images stay for the gallery of mistakes.
    """

    def __init__(self, dataset: ImageFolder, split: Split, size: int) -> None:
        self.size = size
        self.paths = {part: [dataset.paths[i] for i in getattr(split, part)] for part in PARTS}
        self.labels = {part: dataset.labels[getattr(split, part)] for part in PARTS}
        self.test_names = [dataset.relative_name(i) for i in split.test]
        self.pixels: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return sum(len(p) for p in self.paths.values())

    def decode(self, stop: Callable[[], bool],
               on_progress: Callable[[int, int], None] | None = None) -> bool:
        """`load_pixels` for every part not decoded yet; False when `stop()` says so first.
        `on_progress(done, total)` is called before each part."""
        total, done = len(self), 0
        for part in PARTS:
            if part in self.pixels:
                done += len(self.pixels[part])
                continue
            if stop():
                return False
            if on_progress is not None:
                on_progress(done, total)
            self.pixels[part] = load_pixels(self.paths[part], self.size)
            done += len(self.pixels[part])
        return True

    def release_training(self) -> None:
        """Drop the training and validation pixels (the test pixels stay)."""
        for part in ("train", "val"):
            self.pixels.pop(part, None)
