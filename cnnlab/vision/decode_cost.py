"""What decoding one image will cost in memory, from its header alone (nothing decoded).

Pillow's decoders, measured on this stack (Pillow 13; peak RSS of a child process, issue 15):

- every format holds the first frame at Pillow's in-memory size: 1 byte a pixel for
  "1"/"L"/"P", 2 for 16-bit grey, 4 for everything else (RGB is stored as 4 bytes);
- libjpeg keeps all DCT coefficients of a progressive or multi-scan JPEG, 2 bytes a pixel
  per component at full resolution, even when it decodes at 1/8 (a 49 MP 4:2:0
  progressive file: 147 MB); a baseline file streams (8 MB for 48 MP at 1/8);
- libtiff decodes one strip or tile at a time into a buffer of its own: a 49 MP float
  TIFF written as one strip peaked at 381 MB, in Pillow's 64 KB strips at 194 MB;
- libwebp and Pillow hold four RGBA copies of a WebP: 755 MB for 49 MP (15.4 B a pixel).

`cnnlab.vision.images` refuses an image whose estimate is over `MAX_DECODE_BYTES`.
"""

from __future__ import annotations

import io
import math

from PIL import Image

# Bytes per pixel of Pillow's in-memory modes (RGB is stored as 4 bytes, like RGBA).
PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_MAX_SEGMENTS = 10_000  # JPEG marker segments walked before the first scan, at most


def _tiff_block_bytes(img: Image.Image) -> int:
    """libtiff decodes one strip or tile at a time into a buffer of its own."""
    tags = getattr(img, "tag_v2", {})
    width, height = img.size
    samples = int(tags.get(277, 1) or 1)
    bits = tags.get(258, 8)
    bits = sum(bits) if isinstance(bits, tuple) and len(bits) == samples else \
        int(bits[0] if isinstance(bits, tuple) else bits) * samples
    per_pixel = math.ceil(bits / 8)
    if tags.get(259) in (6, 7) or tags.get(262) == 6:  # JPEG or YCbCr: read as RGBA
        per_pixel = max(per_pixel, 4)
    if 322 in tags and 323 in tags:
        return int(tags[322]) * int(tags[323]) * per_pixel
    rows = min(height, int(tags.get(278, height) or height))
    return width * rows * per_pixel


def _jpeg_keeps_coefficients(img: Image.Image) -> bool:
    """True for a progressive JPEG, or one whose first scan lacks some components (libjpeg's
    `has_multiple_scans`, jdinput.c): both are buffered whole before any row comes out.
    Walks the marker segments up to the first SOS (start of scan); unreadable, or more
    than `_MAX_SEGMENTS` segments before it: True (charged, never under-estimated)."""
    if img.info.get("progressive"):
        return True
    fp = getattr(img, "fp", None)
    if fp is None:
        return True
    position = fp.tell()
    try:
        fp.seek(0)
        if fp.read(2) != b"\xff\xd8":
            return True
        for _ in range(_MAX_SEGMENTS):
            byte = fp.read(1)
            if byte != b"\xff":
                return True
            marker = fp.read(1)
            while marker == b"\xff":  # fill bytes
                marker = fp.read(1)
            if not marker:
                return True
            if 0xD0 <= marker[0] <= 0xD7 or marker[0] == 0x01:
                continue  # standalone markers carry no length
            length = int.from_bytes(fp.read(2), "big")
            if length < 2:
                return True
            if marker[0] == 0xDA:  # SOS: its first byte is the number of components
                components = fp.read(1)
                return not components or components[0] < len(getattr(img, "layer", []))
            fp.seek(length - 2, io.SEEK_CUR)
        return True
    finally:
        fp.seek(position)


def decode_bytes(img: Image.Image, fmt: str, scale: int = 1) -> int:
    """The decoder's memory for the first frame of `img` (opened, not loaded), whose format
    is `fmt` (MPO counted as JPEG), decoded at 1/`scale` (JPEG only)."""
    width, height = img.size
    frame = math.ceil(width / scale) * math.ceil(height / scale) * PIXEL_BYTES.get(img.mode, 4)
    if fmt == "JPEG" and _jpeg_keeps_coefficients(img):
        # libjpeg keeps every DCT coefficient of a progressive or multi-scan JPEG: 2 bytes
        # a pixel per component (subsampled ones less), at full resolution whatever the
        # scale (measured: 147 MB for a 49 MP 4:2:0 progressive file decoded at 1/8).
        layers = getattr(img, "layer", []) or [(0, 1, 1, 0)]
        h_max = max(layer[1] for layer in layers) or 1
        v_max = max(layer[2] for layer in layers) or 1
        frame += sum(2 * width * height * layer[1] * layer[2] // (h_max * v_max)
                     for layer in layers)
    elif fmt == "WEBP":
        frame = 16 * width * height  # measured 15.4 B/px: four RGBA copies
    elif fmt == "TIFF":
        frame += _tiff_block_bytes(img)
    return frame
