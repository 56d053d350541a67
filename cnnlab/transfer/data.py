"""The user's own image classes for transfer learning: a zip of class folders or a
directory on the server, validated, split and turned into pixels.

Safety: an uploaded archive is checked entry by entry *before* anything is written
(no absolute paths, no `..`, no links, no encrypted entries, a cap on the total
uncompressed size against zip bombs), and files are only ever written inside a
per-session `SessionWorkspace`, a temporary folder removed when the session ends.
Every file that is not used is listed with its reason: nothing is dropped silently.

Pillow and numpy only; no TensorFlow here.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import uuid
import weakref
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.vision.images import (
    MAX_UPLOAD_BYTES,
    ImageError,
    network_view,
    read_image,
    scale_to_unit_range,
)

MAX_ARCHIVE_MB = 200  # the page's upload widget refuses larger zips before cnnlab sees them
MAX_UNCOMPRESSED_BYTES = 1024**3  # 1 GiB unpacked: above it the archive is refused as a bomb
MAX_ENTRIES = 20_000  # files + folders in one archive
MAX_IMAGES = 5_000  # images kept in memory as uint8 pixels while training
MAX_IMAGE_BYTES = MAX_UPLOAD_BYTES  # per image inside the archive (the shared decoder's limit)
RECOMMENDED_PER_CLASS = 100  # fewer images per class than this gets a warning
MIN_PER_CLASS = 3  # one image each for train, validation and test
# Operating-system droppings that are listed as skipped but never decoded.
SYSTEM_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})
_COPY_CHUNK = 1024 * 1024


class DatasetError(ValueError):
    """A dataset that cannot be used; `str(error)` is one line for the user."""


@dataclass(frozen=True)
class SkippedFile:
    """A file of the dataset that is not used, and why (one line)."""

    name: str
    reason: str


class SessionWorkspace:
    """A temporary folder owned by one browser session.

    Removed by `cleanup()` (the page calls it from `st.cache_resource(scope="session",
    on_release=...)` when the session ends) and, as a fallback, when the object is
    garbage-collected or the interpreter exits (weakref.finalize runs at exit too).
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="cnnlab-transfer-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def new_folder(self, prefix: str) -> Path:
        """A fresh, empty folder inside the workspace."""
        folder = self.path / f"{prefix}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        return folder

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def cleanup(self) -> None:
        """Remove the folder and everything in it (idempotent)."""
        self._finalizer()


@dataclass
class ImageDataset:
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
# Archives


def _entry_parts(name: str) -> list[str]:
    """The path components of a zip entry, or DatasetError when it escapes its folder."""
    if "\x00" in name:
        raise DatasetError(f"Archive entry {name!r} has a NUL byte in its name; refused.")
    # Zip uses '/', but archives made on Windows sometimes use '\'.
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise DatasetError(f"Archive entry '{name}' has an absolute path; refused.")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(f"Archive entry '{name}' points outside the archive (..); refused.")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix permissions live in the high 16 bits of external_attr (zipfile does the same).
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(zf: zipfile.ZipFile, name: str = "archive") -> list[zipfile.ZipInfo]:
    """Every entry checked before anything is written; returns the file entries."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise DatasetError(f"{name}: {len(infos):,} entries, more than the {MAX_ENTRIES:,} allowed.")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise DatasetError(
            f"{name}: unpacks to {total / 1024**2:,.0f} MB, more than the "
            f"{MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB allowed (a zip bomb?); refused."
        )
    files = []
    for info in infos:
        _entry_parts(info.filename)
        if _is_symlink(info):
            raise DatasetError(f"Archive entry '{info.filename}' is a symbolic link; refused.")
        if info.flag_bits & 0x1:
            raise DatasetError(f"Archive entry '{info.filename}' is password-protected; refused.")
        if not info.is_dir():
            files.append(info)
    if not files:
        raise DatasetError(f"{name}: the archive is empty.")
    return files


def extract_archive(data: bytes, dest: Path, name: str = "archive") -> None:
    """Unpack a zip into `dest` after `check_archive`; never writes outside `dest`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise DatasetError(f"{name}: not a zip archive.") from None
    with zf:
        files = check_archive(zf, name)
        root = dest.resolve()
        written = 0
        for info in files:
            target = root.joinpath(*_entry_parts(info.filename))
            # Belt and braces: the checked parts cannot escape, but verify the real path.
            if not target.resolve().is_relative_to(root):
                raise DatasetError(f"Archive entry '{info.filename}' points outside the archive.")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    # Count the bytes really written: the sizes in the directory can lie.
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > MAX_UNCOMPRESSED_BYTES:
                            raise DatasetError(
                                f"{name}: unpacks to more than "
                                f"{MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB (a zip bomb?); refused."
                            )
                        out.write(chunk)
            except FileExistsError:
                raise DatasetError(f"{name}: entry '{info.filename}' appears twice.") from None
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                    NotImplementedError, RuntimeError) as exc:
                # A corrupt or unsupported entry: the archive as a whole is unusable.
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise DatasetError(f"{name}: entry '{info.filename}' cannot be read ({reason}).") from None


# ---------------------------------------------------------------------------------------
# Class folders


def _is_system(name: str) -> bool:
    return name.lower() in SYSTEM_NAMES or name.startswith("._")


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


def _decode_check(path: Path) -> str | None:
    """None when the file is a readable image, otherwise the one-line reason."""
    if path.is_symlink():
        return "symbolic link, not followed"
    try:
        # The shared decoder checks the size before reading (MAX_UPLOAD_BYTES per image).
        read_image(path)
    except ImageError as exc:
        return exc.reason
    return None


def scan_class_folders(root: Path, source: str) -> ImageDataset:
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
        raise DatasetError(
            f"{source}: needs at least two class folders (one per class, e.g. cats/ and dogs/); "
            f"found {len(class_dirs)} ({found})."
        )

    paths: list[Path] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, class_dir in enumerate(class_dirs):
        found_here = 0
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
                reason = _decode_check(path)
                if reason is not None:
                    skipped.append(SkippedFile(shown(path), reason))
                    continue
                paths.append(path)
                labels.append(label)
                found_here += 1
        if found_here == 0:
            empty.append(class_dir.name)

    if len(paths) == 0:
        raise DatasetError(f"{source}: no readable images in any class folder.")
    if empty:
        raise DatasetError(
            f"{source}: class folder{'s' if len(empty) > 1 else ''} "
            f"{', '.join(repr(e) for e in empty)} hold{'' if len(empty) > 1 else 's'} no readable images."
        )
    if len(paths) > MAX_IMAGES:
        raise DatasetError(f"{source}: {len(paths):,} images, more than the {MAX_IMAGES:,} allowed.")
    dataset = ImageDataset(
        source=source,
        root=root,
        class_names=[d.name for d in class_dirs],
        paths=paths,
        labels=np.asarray(labels, dtype=np.int64),
        skipped=sorted(skipped, key=lambda s: s.name),
    )
    small = [n for n, c in dataset.counts().items() if c < MIN_PER_CLASS]
    if small:
        raise DatasetError(
            f"{source}: class{'es' if len(small) > 1 else ''} {', '.join(repr(s) for s in small)} "
            f"{'have' if len(small) > 1 else 'has'} fewer than {MIN_PER_CLASS} readable images "
            "(one each for training, validation and test)."
        )
    return dataset


def load_zip(data: bytes, name: str, workspace: SessionWorkspace) -> ImageDataset:
    """Unpack an uploaded zip of class folders into the workspace and validate it."""
    dest = workspace.new_folder("upload")
    try:
        extract_archive(data, dest, name)
        return scan_class_folders(dest, name)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # a refused archive leaves nothing behind
        raise


def server_directories() -> list[Path]:
    """Dataset folders named by the server's config: env CNNLAB_TRANSFER_DATA (os.pathsep list)."""
    value = os.environ.get("CNNLAB_TRANSFER_DATA", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def load_directory(path: str | Path) -> ImageDataset:
    """Validate a folder of class folders on the server (read in place, nothing written)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a directory on the server.")
    return scan_class_folders(folder, str(folder))


# ---------------------------------------------------------------------------------------
# Splits and pixels


@dataclass(frozen=True)
class Split:
    """Indices into an ImageDataset for training, validation and test."""

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


def stratified_split(labels: np.ndarray, val_fraction: float = 0.15,
                     test_fraction: float = 0.15, seed: int = 0) -> Split:
    """Split each class separately (so every part keeps the class proportions), seeded.

    Each class gives round(n * fraction) images, at least one, to validation and to test;
    the rest train.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DatasetError(
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
            raise DatasetError(f"Class {int(c)} has {n} images: too few to split three ways.")
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
        out[i] = np.asarray(network_view(read_image(path), size))
    return out


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1] (Inception's `preprocess_input`, mode "tf")."""
    return scale_to_unit_range(pixels)


# ---------------------------------------------------------------------------------------
# A demo dataset (offline)

DEMO_CLASSES = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}


def demo_archive(per_class: int = 20, size: int = 96, seed: int = 0,
                 classes: dict[str, str] | None = None) -> bytes:
    """A zip of class folders made of random crops of real sample photos.

    Each class is ONE photo (scikit-image's cat, coffee cup, rocket) cut into `per_class`
    random square crops (40-90 % of the short side, some mirrored), saved as JPEG. Real
    pixels, clearly different classes, no download: for trying the page and for tests. It is
    not a real dataset: every crop of a class shares one scene.
    """
    from PIL import Image

    from cnnlab.vision.images import sample_photo

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for class_name, photo in (classes or DEMO_CLASSES).items():
            img = sample_photo(photo)
            w, h = img.size
            for i in range(per_class):
                side = int(min(w, h) * rng.uniform(0.4, 0.9))
                left = int(rng.integers(0, w - side + 1))
                top = int(rng.integers(0, h - side + 1))
                crop = img.crop((left, top, left + side, top + side)).resize(
                    (size, size), Image.Resampling.BILINEAR)
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                out = io.BytesIO()
                crop.save(out, format="JPEG", quality=90)
                zf.writestr(f"{class_name}/{class_name}_{i:03d}.jpg", out.getvalue())
    return buffer.getvalue()
