"""Budgets checked before work: an ingestion sums cheap facts (declared pixels from image
headers, bytes about to be written) and refuses with one line before the expensive step.

- `PixelBudget`: declared pixels summed over one upload or one archive, from
  `cnnlab.vision.images.probe_image`/`probe_file` headers, before any image is decoded.
  Decoding costs (bench/hostile.py, one core): about 4 ns a pixel for a 1-bit PNG, 10 for
  grey, 35 for a float TIFF, 57 for an RGBA PNG (49 MP in 2.8 s), so the default
  `ARCHIVE_PIXELS` (1 gigapixel: 5,000 images of 447x447) is a minute of decoding at worst,
  where the issue's 19,990 copies of a 50 MP PNG would have been 74 minutes.
- `DiskBudget`: bytes one session may hold on the server's disk (`CNNLAB_SESSION_DISK`,
  e.g. "1G" or "500M"; default `SESSION_DISK_BYTES`), charged before extracting.

Pure Python; every refusal is a `BudgetError` whose text is one line for the user.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.ui.safe import quoted

ARCHIVE_PIXELS = 1_000_000_000  # declared pixels in one archive or one batch of uploads
SESSION_DISK_BYTES = 1024**3  # 1 GiB per session unless CNNLAB_SESSION_DISK says otherwise
SESSION_DISK_ENV = "CNNLAB_SESSION_DISK"

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "T": 1024**4, "TB": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", re.IGNORECASE)


class BudgetError(ValueError):
    """Work refused because it would exceed a budget; `str(error)` is one line."""


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} megapixels" if pixels >= 10**6 else f"{pixels:,} pixels"


def _bytes(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def _charged(used: int, amount: int, limit: int, unit: str,
             refusal: Callable[[], str]) -> int:
    """`used + amount`, or a `BudgetError` with `refusal()` when that would pass `limit`
    (a negative `amount`, named `unit` in the message, is a ValueError)."""
    if amount < 0:
        raise ValueError(f"{unit} must be >= 0, got {amount}")
    if used + amount > limit:
        raise BudgetError(refusal())
    return used + amount


@dataclass
class PixelBudget:
    """Declared pixels summed over one upload or archive, refused past `limit`.

    `charge(name, pixels)` before decoding the image it describes; `what` names the whole
    ("archive cats.zip", "this upload") in the message."""

    what: str
    limit: int = ARCHIVE_PIXELS
    used: int = 0

    def charge(self, name: str, pixels: int) -> None:
        self.used = _charged(self.used, pixels, self.limit, "pixels", lambda: (
            f"{self.what}: its images declare more than {megapixels(self.limit)} in all "
            f"({megapixels(self.used + pixels)} with {quoted(name)}); refused before "
            "decoding. Use fewer or smaller images."))


def parse_size(text: str) -> int:
    """'1G', '500M', '2.5GB', '1048576' -> bytes (powers of 1024). ValueError otherwise."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 1G, 500M or a number of bytes)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])


def session_disk_limit(environ: dict[str, str] | None = None) -> int:
    """Bytes one session may hold on disk: `CNNLAB_SESSION_DISK` or `SESSION_DISK_BYTES`."""
    value = (os.environ if environ is None else environ).get(SESSION_DISK_ENV, "").strip()
    if not value:
        return SESSION_DISK_BYTES
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ValueError(f"{SESSION_DISK_ENV}: {exc}") from None


@dataclass
class DiskBudget:
    """Bytes a session holds on the server's disk; `charge` before writing them,
    `release` when they are deleted."""

    limit: int
    used: int = 0

    @classmethod
    def for_session(cls) -> DiskBudget:
        return cls(session_disk_limit())

    def charge(self, what: str, nbytes: int) -> None:
        self.used = _charged(self.used, nbytes, self.limit, "nbytes", lambda: (
            f"{what}: unpacking needs {_bytes(nbytes)}, and this session already holds "
            f"{_bytes(self.used)} of its {_bytes(self.limit)} on the server; refused. "
            "Remove an earlier upload or use a smaller archive."))

    def release(self, nbytes: int) -> None:
        self.used = max(0, self.used - nbytes)


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of the regular files under `path` (symbolic links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
