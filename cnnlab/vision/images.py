"""The one image decoder of cnnlab: every page and command that takes images uses it.

Pillow + numpy only (no TensorFlow). Untrusted bytes go through `decode_image`, which
follows Pillow's security guide (docs/handbook/security.rst): a size limit before
decoding, an allowlist of formats, decompression-bomb warnings treated as errors with a
lower pixel cap of our own. Every failure is an `ImageError` whose text is one line,
"<file name>: <reason>", ready for `st.error` (through `cnnlab.ui.safe.plain`) or stderr.

Budgets before work. `probe_image`/`probe_file` read only the header (`Image.open` decodes
nothing) and refuse early: format, declared width x height (`MAX_PIXELS`) and the memory
decoding would take (`ImageHeader.decode_bytes`, at most `MAX_DECODE_BYTES`). Ingestion of
many images sums the headers' pixels (`cnnlab.budgets.PixelBudget`) before decoding any.

The memory bound, measured (bench/hostile.py): decoding one image raises the process's
peak memory by at most `DECODE_PEAK_BYTES` (256 MiB) beyond twice the file's bytes. That
holds because (1) the decoder's own need is estimated from the header and refused above
`MAX_DECODE_BYTES`: the first frame at Pillow's in-memory size, plus libtiff's strip or tile
buffer, libjpeg's coefficient buffers, or libwebp's four RGBA copies; (2) JPEGs are decoded
already reduced (`Image.draft`: libjpeg's DCT scaling by 1/2, 1/4 or 1/8); (3) everything
else is box-reduced (`Image.reduce`) before or as it is converted: plain RGB and grey
directly, other modes one 512-pixel tile at a time, so no second full-size copy (RGBA,
float64, RGB) ever exists. The result keeps a shorter side of at least `DECODE_SIDE` (twice
what Inception v3 needs) when the original has it, and at most `MAX_DECODED_PIXELS` pixels.
Measured rises, 49-50 MP files of 13-304 KB (before this decoder, same machine): float TIFF
199 MB (1,735 MB), RGBA PNG 194 MB (937 MB), grey PNG 49 MB (236 MB), 1-bit PNG 50 MB (241 MB).

Then the seed's preprocessing contract for Inception v3: RGB, centre-cropped square,
resized to 299x299, values in [-1, 1] exactly as
`keras.applications.inception_v3.preprocess_input` computes them (mode "tf").
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePath
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnnlab.ui.safe import one_line, quoted
from cnnlab.vision.decode_cost import decode_bytes

# Pillow format names we decode. Animated GIF/WebP and multi-page TIFF only give their
# first frame. Every other Pillow plugin stays unused: fewer parsers see untrusted bytes.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP, TIFF"
# Extensions the file uploader accepts (and the CLI recognises), by format.
EXTENSIONS: dict[str, str] = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP", ".dib": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF",
}
UPLOAD_TYPES: list[str] = [ext.lstrip(".") for ext in EXTENSIONS]

# The most bytes one image file may have, on a page or from the CLI.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# Our own cap, below Pillow's 89.5 MP warning threshold: a 50 MP phone photo still
# decodes, a small PNG that inflates to hundreds of megapixels does not.
MAX_PIXELS = 50_000_000
# The decoder's own memory for one image, estimated from the header (`decode_bytes`):
# a 50 MP RGBA PNG (200 MB) fits; a 49 MP single-strip float TIFF (392 MB) or a 20 MP
# WebP (320 MB: libwebp and Pillow hold four RGBA copies) does not.
MAX_DECODE_BYTES = 200 * 1024 * 1024
# The promise, measured: what decode_image adds to the process's peak memory at most.
DECODE_PEAK_BYTES = 256 * 1024 * 1024
# Inception v3's input side (keras.applications.inception_v3: default 299, minimum 75).
INCEPTION_SIZE = 299
# Decoded images keep at least this shorter side (a 299 crop resized with some margin)...
DECODE_SIDE = 2 * INCEPTION_SIZE
# ...and at most this many pixels (16 MB as RGB), however long a panorama is.
MAX_DECODED_PIXELS = 4_000_000
# Side of the tiles converted and reduced one at a time (1 MB each as RGBA).
_TILE = 512

# Pillow format names that are the same container as an allowed one (a camera JPEG with a
# second picture opens as MPO).
_FORMAT_ALIASES = {"MPO": "JPEG"}
_WHITE = (255, 255, 255, 255)
# EXIF orientation -> the transposition that shows the image upright
# (the table of PIL.ImageOps.exif_transpose, applied here to the reduced image).
_ORIENTATION = 0x0112
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


class ImageError(ValueError):
    """A file that cnnlab will not decode. `str(error)` is one line, "<file name>: <reason>";
    a name with a newline or another unprintable character is shown quoted, escaped."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{quoted(name)}: {reason}")


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares, read without decoding it."""

    name: str
    format: str          # Pillow's format name: JPEG, PNG, WEBP, GIF, BMP, TIFF (MPO: JPEG)
    mode: str            # Pillow's mode of the first frame ("RGB", "P", "I;16", "F"...)
    width: int
    height: int
    frames: int | None   # as the header declares it; None where only a scan would tell (GIF, TIFF)
    draft_scale: int     # 1, 2, 4 or 8: JPEGs are decoded this much smaller (libjpeg)
    decode_bytes: int    # the decoder's memory for the first frame, estimated

    @property
    def pixels(self) -> int:
        """Declared pixels of the first frame (what budgets sum)."""
        return self.width * self.height

    @property
    def decoded_pixels(self) -> int:
        """Pixels the decoder really produces at full rate (a JPEG's after DCT scaling)."""
        return math.ceil(self.width / self.draft_scale) * math.ceil(self.height / self.draft_scale)


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return one_line(text.splitlines()[0], 200) if text else type(exc).__name__


def _check_extension(name: str, fmt: str) -> None:
    """A known image extension must match the content; unknown or none: judged by content."""
    suffix = PurePath(name).suffix.lower()
    claimed = EXTENSIONS.get(suffix)
    actual = _FORMAT_ALIASES.get(fmt, fmt)
    if claimed is not None and claimed != actual:
        raise ImageError(name, f"the extension says {claimed} ({suffix}) but the content is {actual}")


def _check_size(size: int, name: str) -> None:
    if size == 0:
        raise ImageError(name, "the file is empty (0 bytes)")
    if size > MAX_UPLOAD_BYTES:
        raise ImageError(name, f"the file is {_megabytes(size)}; "
                               f"the limit is {_megabytes(MAX_UPLOAD_BYTES)}")


def _open(fp: BinaryIO, name: str) -> Image.Image:
    """Image.open, which reads the header only: nothing is decoded yet."""
    try:
        # Pillow warns above 89.5 MP and raises above twice that; the warning is an error
        # here (security guide).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(fp, formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError:
        raise ImageError(name, f"not an image in a supported format ({FORMAT_NAMES})") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(name, "a decompression bomb: the image declares far too many pixels"
                         f" (limit {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except Exception as exc:  # any parser failure on untrusted bytes is the file's fault
        raise ImageError(name, f"unreadable image header ({_first_line(exc)})") from None


def reduction_factor(size: tuple[int, int], min_side: int = DECODE_SIDE) -> int:
    """The integer box-reduction for an image of `size`: as large as keeps the shorter side
    at least `min_side`, and at least what brings it under `MAX_DECODED_PIXELS`."""
    width, height = size
    factor = max(1, min(width, height) // max(1, min_side))
    while math.ceil(width / factor) * math.ceil(height / factor) > MAX_DECODED_PIXELS:
        factor += 1
    return factor


def _jpeg_draft_scale(size: tuple[int, int], min_side: int) -> int:
    """libjpeg's scale (8, 4, 2 or 1) for this reduction, as JpegImageFile.draft picks it."""
    factor = reduction_factor(size, min_side)
    return next(s for s in (8, 4, 2, 1) if s <= factor)


def _header(img: Image.Image, name: str, min_side: int) -> ImageHeader:
    _check_extension(name, img.format or "")
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(name, f"{width}x{height} is {width * height / 1e6:.0f} megapixels; "
                               f"the limit is {MAX_PIXELS / 1e6:.0f}")
    if width == 0 or height == 0:
        raise ImageError(name, f"the image has no pixels ({width}x{height})")
    fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
    scale = _jpeg_draft_scale(img.size, min_side) if fmt == "JPEG" else 1
    try:
        need = decode_bytes(img, fmt, scale)
    except Exception as exc:  # damaged tags or markers: the file's fault, one line
        raise ImageError(name, f"unreadable image header ({_first_line(exc)})") from None
    if need > MAX_DECODE_BYTES:
        raise ImageError(name, f"decoding this {width}x{height} {fmt} ({img.mode}) would need "
                               f"about {_megabytes(need)}; the limit is "
                               f"{_megabytes(MAX_DECODE_BYTES)} per image")
    # n_frames is an attribute where the header declares it (APNG, WebP, MPO); GIF and TIFF
    # compute it by walking the whole file, which a probe does not do.
    declared = vars(img).get("n_frames")
    frames = int(declared) if declared is not None else (None if fmt in ("GIF", "TIFF") else 1)
    return ImageHeader(name, fmt, img.mode, width, height, frames, scale, need)


def probe_image(data: bytes, name: str, *, min_side: int = DECODE_SIDE) -> ImageHeader:
    """The header of untrusted bytes, checked (ImageError as `decode_image` would raise it
    for a file that is empty, too large, not an allowed image, lying about its extension,
    a bomb, over `MAX_PIXELS` or over `MAX_DECODE_BYTES`); no pixel is decoded."""
    name = PurePath(name).name or "image"
    _check_size(len(data), name)
    with _open(io.BytesIO(data), name) as img:
        return _header(img, name, min_side)


def probe_file(path: str | os.PathLike, *, min_side: int = DECODE_SIDE) -> ImageHeader:
    """`probe_image` for a file on disk, reading only its header (special files refused)."""
    path = Path(path)
    name = path.name or str(path)
    with _open_regular(path) as file:
        with _open(file, name) as img:
            return _header(img, name, min_side)


def decode_image(data: bytes, name: str, *, min_side: int = DECODE_SIDE) -> Image.Image:
    """Decode untrusted bytes to an RGB image (first frame, EXIF orientation applied),
    reduced while decoding to a shorter side of at least `min_side` (never enlarged).

    Raises `ImageError` ("<name>: <reason>") for everything `probe_image` refuses, and
    for truncated or corrupt data.
    """
    name = PurePath(name).name or "image"
    _check_size(len(data), name)
    with _open(io.BytesIO(data), name) as img:
        header = _header(img, name, min_side)
        try:
            return _decode(img, header, min_side)
        except Image.DecompressionBombError:
            raise ImageError(name, "a decompression bomb: a frame declares far too many "
                                   "pixels") from None
        except MemoryError:
            raise ImageError(name, "not enough memory to decode this image") from None
        except Exception as exc:  # OSError "truncated", SyntaxError, struct.error, bad EXIF...
            raise ImageError(name, f"truncated or corrupt image data ({_first_line(exc)})") from None


def _decode(img: Image.Image, header: ImageHeader, min_side: int) -> Image.Image:
    img.seek(0)  # first frame of an animated GIF/WebP, first page of a TIFF
    if header.draft_scale > 1:
        img.draft(None, (img.width // header.draft_scale, img.height // header.draft_scale))
    img.load()
    orientation = img.getexif().get(_ORIENTATION)
    rgb = _reduced_rgb(img, reduction_factor(img.size, min_side))
    img.close()  # the full-size frame goes now, before anything else is allocated
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(method) if method is not None else rgb


def _reduced_rgb(img: Image.Image, factor: int) -> Image.Image:
    """`img` in RGB, box-reduced by `factor`: exactly what converting the whole image and
    then reducing it gives, without a second full-size copy."""
    value_range = _value_range(img) if img.mode.startswith(("I", "F")) else None
    if factor == 1:  # then the image has at most MAX_DECODED_PIXELS: convert it whole
        return _to_rgb(img, value_range)
    plain = "transparency" not in img.info
    if plain and img.mode in ("RGB", "L"):  # converting to RGB changes no value: reduce first
        return img.reduce(factor).convert("RGB")
    # Otherwise one tile at a time: converted (palette, alpha on white, CMYK, 16-bit and
    # float scaling are per pixel), reduced, pasted. Grey stays one byte a pixel until the
    # end (a box average of grey is the same in L as in each band of RGB).
    grey = plain and (img.mode == "1" or img.mode.startswith(("I", "F")))
    width, height = img.size
    out = Image.new("L" if grey else "RGB", (math.ceil(width / factor), math.ceil(height / factor)))
    step = factor * max(1, _TILE // factor)  # tiles start on the reduction's box grid
    for top in range(0, height, step):
        for left in range(0, width, step):
            tile = img.crop((left, top, min(width, left + step), min(height, top + step)))
            if grey:
                tile = _to_8bit(tile, value_range) if value_range else tile.convert("L")
            else:
                tile = _to_rgb(tile, value_range)
            out.paste(tile.reduce(factor), (left // factor, top // factor))
    return out.convert("RGB") if grey else out


def _tiles(img: Image.Image):
    width, height = img.size
    for top in range(0, height, _TILE):
        for left in range(0, width, _TILE):
            yield img.crop((left, top, min(width, left + _TILE), min(height, top + _TILE)))


def _value_range(img: Image.Image) -> tuple[float, float]:
    """The range 16/32-bit values are scaled from: 16-bit data from its declared full range
    0..65535; 32-bit int and float images have none, so their own finite min..max."""
    if img.mode.startswith("I;16"):
        return 0.0, 65535.0
    low, high = math.inf, -math.inf
    for tile in _tiles(img):
        values = np.asarray(tile, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else (0.0, 1.0)


def _to_8bit(img: Image.Image, value_range: tuple[float, float]) -> Image.Image:
    """Integer/float single-channel modes to "L", scaled rather than clipped: `convert("RGB")`
    clips, an I;16 value of 1000 becomes 255 (Pillow 13 probe)."""
    low, high = value_range
    if high <= low:
        high = low + 1.0
    values = np.asarray(img, dtype=np.float64)
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    scaled = np.clip((values - low) * (255.0 / (high - low)), 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _to_rgb(img: Image.Image, value_range: tuple[float, float] | None = None) -> Image.Image:
    """Any decoded mode to RGB: transparency on white, palettes and CMYK converted."""
    if img.mode.startswith(("I", "F")):
        img = _to_8bit(img, value_range or _value_range(img))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        # P-with-transparency and L/RGB with a tRNS chunk become RGBA here (Pillow warns
        # otherwise); dropping alpha would show transparent pixels in their hidden colour.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading, refusing special files by kind and huge or empty
    files by size before reading a byte. O_NONBLOCK: opening a FIFO never waits for a
    writer; the kind is checked on the opened descriptor (no race with a swapped path)."""
    name = path.name or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be opened ({one_line(exc.strerror or exc, 100)})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(name, "is a directory, not an image file")
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _KINDS if test(info.st_mode)), "a special file")
            raise ImageError(name, f"is {kind}, not a regular file")
        _check_size(info.st_size, name)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, refused (ImageError) before reading when it is special,
    empty or over `MAX_UPLOAD_BYTES`, and while reading when it grows past that."""
    path = Path(path)
    with _open_regular(path) as file:
        data = file.read(MAX_UPLOAD_BYTES + 1)
    _check_size(len(data), path.name or str(path))
    return data


def read_image(path: str | os.PathLike, *, min_side: int = DECODE_SIDE) -> Image.Image:
    """Decode an image file from disk (kind and size checked before reading it)."""
    path = Path(path)
    return decode_image(read_file_bytes(path), path.name or str(path), min_side=min_side)


def center_crop_square(img: Image.Image) -> Image.Image:
    """The largest centred square of `img` (what Inception sees of a non-square photo)."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def network_view(img: Image.Image, size: int = INCEPTION_SIZE) -> Image.Image:
    """The image as the network sees it: centre-cropped square, resized to size x size."""
    square = center_crop_square(img.convert("RGB") if img.mode != "RGB" else img)
    if square.size == (size, size):
        return square
    # Bicubic with antialiasing; reducing_gap decodes large photos by a fast box
    # reduction first, with no visible difference at 299 pixels.
    return square.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)


def scale_to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1], the same operations as Keras' mode "tf".

    keras/src/applications/imagenet_utils.py::_preprocess_numpy_input casts to float32,
    then `x /= 127.5; x -= 1.0`; doing the same two steps gives bit-identical values.
    """
    x = np.asarray(pixels).astype(np.float32)
    x /= 127.5
    x -= 1.0
    return x


def inception_input(img: Image.Image, size: int = INCEPTION_SIZE) -> np.ndarray:
    """float32 (size, size, 3) in [-1, 1]: `network_view` then Keras' preprocess_input."""
    return scale_to_unit_range(np.asarray(network_view(img, size)))


# name -> (title, loader). Real photographs shipped inside installed packages, so the
# gallery works offline: scikit-image's data module and scikit-learn's sample images.
_SAMPLES: dict[str, tuple[str, str]] = {
    "chelsea": ("Chelsea the cat (scikit-image)", "skimage:chelsea"),
    "coffee": ("A cup of coffee (scikit-image)", "skimage:coffee"),
    "rocket": ("Rocket launch (scikit-image)", "skimage:rocket"),
    "astronaut": ("Astronaut Eileen Collins (scikit-image)", "skimage:astronaut"),
    "china": ("Summer Palace, China (scikit-learn)", "sklearn:china.jpg"),
    "flower": ("A flower (scikit-learn)", "sklearn:flower.jpg"),
}


def sample_titles() -> dict[str, str]:
    """name -> human title of each gallery photo."""
    return {name: title for name, (title, _) in _SAMPLES.items()}


@cache
def _sample_array(name: str) -> np.ndarray:
    source, _, key = _SAMPLES[name][1].partition(":")
    if source == "skimage":
        import skimage.data

        array = getattr(skimage.data, key)()
    else:
        from sklearn.datasets import load_sample_image

        array = load_sample_image(key)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    array.setflags(write=False)  # shared by every caller: read-only
    return array


def sample_photo(name: str) -> Image.Image:
    """One gallery photo as an RGB image (KeyError for an unknown name)."""
    if name not in _SAMPLES:
        raise KeyError(f"unknown sample photo {name!r}; choose from {', '.join(_SAMPLES)}")
    return Image.fromarray(_sample_array(name), mode="RGB")


def sample_photos() -> dict[str, Image.Image]:
    """Real sample photos (cat, coffee, rocket, astronaut, ...) as RGB images, by name."""
    return {name: sample_photo(name) for name in _SAMPLES}


def sample_photo_bytes(name: str, fmt: str = "JPEG") -> bytes:
    """A gallery photo encoded as a file would be (for upload-like flows and tests)."""
    buffer = io.BytesIO()
    sample_photo(name).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()
