"""The one image decoder of cnnlab: every page and command that takes images uses it.

Pillow + numpy only (no TensorFlow). Untrusted bytes go through `decode_image`, which
follows Pillow's security guide (docs/handbook/security.rst): a size limit before
decoding, an allowlist of formats, decompression-bomb warnings treated as errors with a
lower pixel cap of our own. Every failure is an `ImageError` whose text is one line,
"<file name>: <reason>", ready for `st.error` or stderr.

Then the seed's preprocessing contract for Inception v3: RGB, centre-cropped square,
resized to 299x299, values in [-1, 1] exactly as
`keras.applications.inception_v3.preprocess_input` computes them (mode "tf").
"""

from __future__ import annotations

import io
import warnings
from functools import cache
from pathlib import PurePath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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

# Same figure as server.maxUploadSize in .streamlit/config.toml, so that the CLI (which
# Streamlit does not guard) refuses the same files as the page.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# Our own cap, below Pillow's 89.5 MP warning threshold: a 50 MP phone photo still
# decodes, a small PNG that inflates to hundreds of megapixels does not. At 4 bytes a
# pixel (RGBA) the worst accepted image needs 200 MB while it is converted.
MAX_PIXELS = 50_000_000
# Inception v3's input side (keras.applications.inception_v3: default 299, minimum 75).
INCEPTION_SIZE = 299

# Pillow formats that are the same container as an allowed one (a camera JPEG with a
# second picture opens as MPO).
_FORMAT_ALIASES = {"MPO": "JPEG"}
_WHITE = (255, 255, 255, 255)


class ImageError(ValueError):
    """A file that cnnlab will not decode. `str(error)` is "<file name>: <reason>"."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _check_extension(name: str, fmt: str) -> None:
    """A known image extension must match the content; unknown or none: judged by content."""
    suffix = PurePath(name).suffix.lower()
    claimed = EXTENSIONS.get(suffix)
    actual = _FORMAT_ALIASES.get(fmt, fmt)
    if claimed is not None and claimed != actual:
        raise ImageError(name, f"the extension says {claimed} ({suffix}) but the content is {actual}")


def _to_8bit(img: Image.Image) -> Image.Image:
    """Integer/float single-channel modes to "L", scaled rather than clipped.

    `convert("RGB")` clips: an I;16 value of 1000 becomes 255 (Pillow 13 probe). 16-bit
    data is scaled from its declared full range 0..65535; 32-bit int and float images have
    no declared range, so their own min..max is stretched to 0..255.
    """
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low)), 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded mode to RGB: transparency on white, palettes and CMYK converted."""
    if img.mode.startswith(("I", "F")):
        img = _to_8bit(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        # P-with-transparency and L/RGB with a tRNS chunk become RGBA here (Pillow warns
        # otherwise); dropping alpha would show transparent pixels in their hidden colour.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(data: bytes, name: str) -> Image.Image:
    """Decode untrusted bytes to an RGB image (first frame, EXIF orientation applied).

    Raises `ImageError` ("<name>: <reason>") for an empty or oversized file, content that
    is not an image in an allowed format, an extension that lies about the content, a
    decompression bomb or an image over `MAX_PIXELS`, and truncated or corrupt data.
    """
    name = PurePath(name).name or "image"
    if len(data) == 0:
        raise ImageError(name, "the file is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(
            name, f"the file is {_megabytes(len(data))}; the limit is {_megabytes(MAX_UPLOAD_BYTES)}"
        )
    try:
        # Pillow warns above 89.5 MP and raises above twice that; the warning is an error
        # here (security guide). Image.open only reads the header: nothing is decoded yet.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError:
        raise ImageError(name, f"not an image in a supported format ({FORMAT_NAMES})") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(name, "a decompression bomb: the image declares far too many pixels"
                         f" (limit {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except Exception as exc:  # any parser failure on untrusted bytes is the file's fault
        raise ImageError(name, f"unreadable image header ({_first_line(exc)})") from None

    _check_extension(name, img.format or "")
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(name, f"{width}x{height} is {width * height / 1e6:.0f} megapixels; "
                               f"the limit is {MAX_PIXELS / 1e6:.0f}")
    if width == 0 or height == 0:
        raise ImageError(name, f"the image has no pixels ({width}x{height})")
    try:
        img.seek(0)  # first frame of an animated GIF/WebP, first page of a TIFF
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except Image.DecompressionBombError:
        raise ImageError(name, "a decompression bomb: a frame declares far too many pixels") from None
    except MemoryError:
        raise ImageError(name, "not enough memory to decode this image") from None
    except Exception as exc:  # OSError "truncated", SyntaxError, struct.error, bad EXIF...
        raise ImageError(name, f"truncated or corrupt image data ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def read_image(path: str | PurePath) -> Image.Image:
    """Decode an image file from disk (size checked before the whole file is read)."""
    from pathlib import Path

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise ImageError(path.name, f"the file is {_megabytes(size)}; "
                                        f"the limit is {_megabytes(MAX_UPLOAD_BYTES)}")
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageError(path.name or str(path), "is a directory, not an image file") from None
    except FileNotFoundError:
        raise ImageError(path.name or str(path), "no such file") from None
    except PermissionError:
        raise ImageError(path.name or str(path), "permission denied") from None
    return decode_image(data, path.name)


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
