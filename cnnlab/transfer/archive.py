"""Uploaded zips of class folders, unpacked safely into a per-session workspace.

Safety: an uploaded archive is checked entry by entry *before* anything is written
(no absolute paths, no `..`, no links, no encrypted entries, caps on the entries, on the
files that could be images and on the total uncompressed size against zip bombs; the
session's disk budget charged with the declared size), and files are only ever written inside a
per-session `SessionWorkspace`, a temporary folder removed when the session ends.
A refused archive raises `ArchiveError` and leaves nothing behind.

Also the offline demo archive (`demo_archive`). Pillow and numpy only; no TensorFlow here.
"""

from __future__ import annotations

import io
import shutil
import stat
import tempfile
import uuid
import weakref
import zipfile
from pathlib import Path

import numpy as np

from cnnlab.budgets import BudgetError, DiskBudget, folder_bytes
from cnnlab.transfer.image_folder import (
    MAX_IMAGES,
    ImageFolder,
    ImageFolderError,
    hidden_or_system,
    scan_class_folders,
)
from cnnlab.ui.safe import one_line, quoted

MAX_ARCHIVE_MB = 200  # the page's upload widget refuses larger zips before cnnlab sees them
MAX_UNCOMPRESSED_BYTES = 1024**3  # 1 GiB unpacked: above it the archive is refused as a bomb
MAX_ENTRIES = 20_000  # files + folders in one archive
MAX_NAME_BYTES = 255  # one file or folder name (Linux's NAME_MAX)
_COPY_CHUNK = 1024 * 1024


class ArchiveError(ImageFolderError):
    """An uploaded zip refused before its images are looked at: not a zip, empty, unsafe
    (paths outside it, links, passwords) or too big unpacked."""


class SessionWorkspace:
    """A temporary folder owned by one browser session.

    Removed by `cleanup()` (the page calls it from `st.cache_resource(scope="session",
    on_release=...)` when the session ends) and, as a fallback, when the object is
    garbage-collected or the interpreter exits (weakref.finalize runs at exit too).
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="cnnlab-transfer-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)
        self._disk_limit = DiskBudget.for_session().limit

    @property
    def disk(self) -> DiskBudget:
        """This session's disk budget, charged from what its folder holds right now."""
        return DiskBudget(self._disk_limit, folder_bytes(self.path))

    def remove(self, folder: Path) -> None:
        """Delete one folder of this workspace (e.g. an upload that was replaced)."""
        folder = Path(folder)
        if folder.resolve().is_relative_to(self.path.resolve()) and folder != self.path:
            shutil.rmtree(folder, ignore_errors=True)

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


# ---------------------------------------------------------------------------------------
# Archives


def _entry_parts(name: str) -> list[str]:
    """The path components of a zip entry, or ArchiveError when it escapes its folder."""
    if "\x00" in name:
        raise ArchiveError(f"Archive entry {quoted(name)} has a NUL byte in its name; refused.")
    # Zip uses '/', but archives made on Windows sometimes use '\'.
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise ArchiveError(f"Archive entry {quoted(name)} has an absolute path; refused.")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"Archive entry {quoted(name)} points outside the archive (..); refused.")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise ArchiveError(f"Archive entry {quoted(name)}: a file or folder name longer than "
                               f"{MAX_NAME_BYTES} bytes; refused.")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix permissions live in the high 16 bits of external_attr (zipfile does the same).
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(zf: zipfile.ZipFile, name: str = "archive") -> list[zipfile.ZipInfo]:
    """Every entry checked before anything is written; returns the file entries."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ArchiveError(f"{name}: {len(infos):,} entries, more than the {MAX_ENTRIES:,} allowed.")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ArchiveError(
            f"{name}: unpacks to {total / 1024**2:,.0f} MB, more than the "
            f"{MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB allowed (a zip bomb?); refused."
        )
    files = []
    for info in infos:
        _entry_parts(info.filename)
        if _is_symlink(info):
            raise ArchiveError(f"Archive entry {quoted(info.filename)} is a symbolic link; refused.")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"Archive entry {quoted(info.filename)} is password-protected; "
                               "refused.")
        if not info.is_dir():
            files.append(info)
    if not files:
        raise ArchiveError(f"{name}: the archive is empty.")
    # Every file the scan would read could be an image (content decides, not the extension):
    # more of them than the image cap is refused from the directory, before unpacking.
    readable = sum(1 for info in files
                   if not any(hidden_or_system(part) for part in _entry_parts(info.filename)))
    if readable > MAX_IMAGES:
        raise ArchiveError(f"{name}: {readable:,} files, more than the {MAX_IMAGES:,} images "
                           "allowed; refused before unpacking.")
    return files


def extract_archive(data: bytes, dest: Path, name: str = "archive") -> None:
    """Unpack a zip into `dest` after `check_archive`; never writes outside `dest`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise ArchiveError(f"{name}: not a zip archive.") from None
    with zf:
        files = check_archive(zf, name)
        root = dest.resolve()
        written = 0
        for info in files:
            entry = quoted(info.filename)
            target = root.joinpath(*_entry_parts(info.filename))
            # Belt and braces: the checked parts cannot escape, but verify the real path.
            if not target.resolve().is_relative_to(root):
                raise ArchiveError(f"Archive entry {entry} points outside the archive.")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    # Count the bytes really written: the sizes in the directory can lie.
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > MAX_UNCOMPRESSED_BYTES:
                            raise ArchiveError(
                                f"{name}: unpacks to more than "
                                f"{MAX_UNCOMPRESSED_BYTES // 1024**2:,} MB (a zip bomb?); refused."
                            )
                        out.write(chunk)
            except FileExistsError:
                raise ArchiveError(f"{name}: entry {entry} appears twice (or as both a file "
                                   "and a folder).") from None
            except (NotADirectoryError, IsADirectoryError):
                raise ArchiveError(f"{name}: entry {entry} is both a file and a folder in this "
                                   "archive.") from None
            except OSError as exc:
                # errno text only: str(exc) would show the server's temporary path.
                reason = exc.strerror or type(exc).__name__
                raise ArchiveError(f"{name}: entry {entry} cannot be unpacked ({reason}).") from None
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
                    NotImplementedError, RuntimeError) as exc:
                # A corrupt or unsupported entry: the archive as a whole is unusable.
                reason = one_line(str(exc).splitlines()[0], 200) if str(exc) else type(exc).__name__
                raise ArchiveError(f"{name}: entry {entry} cannot be read ({reason}).") from None


def declared_size(data: bytes, name: str = "archive") -> int:
    """Bytes the zip says it unpacks to (its directory; checked again while unpacking)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise ArchiveError(f"{name}: not a zip archive.") from None


def load_zip(data: bytes, name: str, workspace: SessionWorkspace) -> ImageFolder:
    """Unpack an uploaded zip of class folders into the workspace and validate it
    (ArchiveError for the zip itself, ImageFolderError for what it holds). The session's
    disk budget (`CNNLAB_SESSION_DISK`) is charged with the declared size first."""
    try:
        workspace.disk.charge(name, declared_size(data, name))
    except BudgetError as exc:
        raise ArchiveError(str(exc)) from None
    dest = workspace.new_folder("upload")
    try:
        extract_archive(data, dest, name)
        return scan_class_folders(dest, name)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # a refused archive leaves nothing behind
        raise


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
