"""cnnlab.vision.images: every image mode to RGB, every bad input to a one-line ImageError, and
Inception preprocessing equal to Keras' own preprocess_input on the same pixels."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from cnnlab.vision import images
from cnnlab.vision.images import ImageError, decode_image


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def pixel(img: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(img)[xy[1], xy[0]])


# ---------------------------------------------------------------- formats and modes

@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"),
                                     ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")])
def test_every_allowed_format_decodes_to_rgb(fmt, ext):
    source = Image.new("RGB", (40, 30), (200, 30, 60))
    img = decode_image(encode(source, fmt), f"photo.{ext}")
    assert img.mode == "RGB" and img.size == (40, 30)
    # Lossy JPEG/WebP and the GIF palette may move a colour by a few levels, no more.
    assert np.abs(np.asarray(img, int) - (200, 30, 60)).max() <= 8


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert pixel(decode_image(data, "anim.gif")) == (255, 0, 0)


def test_exif_orientation_is_applied():
    # Left half black, right half white, stored landscape; orientation 6 means "rotate 90
    # degrees clockwise to display": the viewer sees a portrait image, black half on top.
    source = Image.new("RGB", (40, 20), (255, 255, 255))
    source.paste((0, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img = decode_image(encode(source, "JPEG", exif=exif, quality=95), "phone.jpg")
    assert img.size == (20, 40)
    assert sum(pixel(img, (10, 5))) < 60 and sum(pixel(img, (10, 35))) > 700


def test_transparency_is_composited_on_white_not_dropped():
    rgba = Image.new("RGBA", (4, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 0))      # fully transparent red: white
    rgba.putpixel((1, 0), (255, 0, 0, 255))    # opaque red: red
    rgba.putpixel((2, 0), (0, 0, 0, 128))      # half-transparent black: mid grey
    rgba.putpixel((3, 0), (0, 0, 255, 255))
    img = decode_image(encode(rgba, "PNG"), "logo.png")
    assert pixel(img, (0, 0)) == (255, 255, 255)
    assert pixel(img, (1, 0)) == (255, 0, 0)
    assert all(abs(v - 127) <= 1 for v in pixel(img, (2, 0)))
    assert pixel(img, (3, 0)) == (0, 0, 255)


def test_la_transparent_is_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (0, 255))
    img = decode_image(encode(la, "PNG"), "la.png")
    assert pixel(img, (0, 0)) == (255, 255, 255) and pixel(img, (1, 0)) == (0, 0, 0)


def test_palette_with_transparency_is_white_and_palette_without_is_converted():
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    plain = decode_image(encode(pal, "PNG"), "pal.png")
    assert pixel(plain, (0, 0)) == (255, 0, 0) and pixel(plain, (1, 0)) == (0, 255, 0)
    transparent = decode_image(encode(pal, "PNG", transparency=0), "pal.png")
    assert pixel(transparent, (0, 0)) == (255, 255, 255)
    assert pixel(transparent, (1, 0)) == (0, 255, 0)
    # GIF transparency (the common case of a P image with a transparent index)
    gif = decode_image(encode(pal, "GIF", transparency=0), "pal.gif")
    assert pixel(gif, (0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_is_scaled_not_clipped(fmt):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    source = Image.fromarray(values)
    assert source.mode == "I;16"
    assert source.convert("RGB").getpixel((1, 0)) == (255, 255, 255)  # Pillow clips
    img = decode_image(encode(source, fmt), f"scan.{fmt.lower()}")
    grey = np.asarray(img)[0, :, 0]
    np.testing.assert_array_equal(grey, [0, 4, 128, 255])  # v * 255 / 65535, rounded


def test_32_bit_int_and_float_are_stretched_to_8_bit():
    ints = Image.fromarray(np.array([[-1000, 0, 3000]], dtype=np.int32))
    assert ints.mode == "I"
    np.testing.assert_array_equal(np.asarray(decode_image(encode(ints, "TIFF"), "i.tif"))[0, :, 0],
                                  [0, 64, 255])  # (v + 1000) * 255 / 4000
    floats = Image.fromarray(np.array([[0.0, 0.25, 1.0]], dtype=np.float32))
    assert floats.mode == "F"
    np.testing.assert_array_equal(np.asarray(decode_image(encode(floats, "TIFF"), "f.tif"))[0, :, 0],
                                  [0, 64, 255])


def test_cmyk_is_converted():
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink: white paper
    cmyk.paste((255, 0, 0, 0), (0, 0, 4, 8))         # full cyan ink
    img = decode_image(encode(cmyk, "JPEG", quality=100), "print.jpg")
    assert img.mode == "RGB"
    assert all(v >= 245 for v in pixel(img, (6, 4)))
    r, g, b = pixel(img, (1, 4))
    assert r < 20 and g > 235 and b > 235
    tiff = decode_image(encode(cmyk, "TIFF"), "print.tiff")
    assert pixel(tiff, (1, 4)) == (0, 255, 255)


@pytest.mark.parametrize("mode,value,expected", [("L", 77, (77, 77, 77)), ("1", 1, (255, 255, 255))])
def test_grey_and_bilevel_become_rgb(mode, value, expected):
    img = decode_image(encode(Image.new(mode, (3, 3), value), "PNG"), "grey.png")
    assert img.mode == "RGB" and pixel(img) == expected


def test_missing_or_unknown_extension_is_judged_by_content():
    data = encode(Image.new("RGB", (5, 5), (1, 2, 3)), "PNG")
    assert decode_image(data, "download").size == (5, 5)
    assert decode_image(data, "photo.PNG").size == (5, 5)  # case does not matter


# ---------------------------------------------------------------- bad input

def assert_one_line(error: ImageError, name: str, *words: str) -> None:
    text = str(error)
    assert "\n" not in text and text.startswith(f"{name}: ")
    for word in words:
        assert word in text, text


def test_empty_file():
    with pytest.raises(ImageError) as info:
        decode_image(b"", "empty.jpg")
    assert_one_line(info.value, "empty.jpg", "empty")


def test_not_an_image():
    with pytest.raises(ImageError) as info:
        decode_image(b"%PDF-1.7 this is a document, not a photo", "notes.jpg")
    assert_one_line(info.value, "notes.jpg", "not an image", "JPEG")


def test_format_outside_the_allowlist_is_refused():
    ico = encode(Image.new("RGB", (32, 32), (9, 9, 9)), "ICO")
    assert Image.open(io.BytesIO(ico)).format == "ICO"  # Pillow itself would decode it
    with pytest.raises(ImageError) as info:
        decode_image(ico, "favicon.ico")
    assert_one_line(info.value, "favicon.ico", "not an image in a supported format")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(fmt):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), fmt)
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2], f"cut.{fmt.lower()}")
    assert_one_line(info.value, f"cut.{fmt.lower()}", "truncated")


def test_decompression_bomb_is_refused_before_decoding():
    data = encode(Image.new("1", (20_000, 20_000)), "PNG")  # 400 megapixels
    assert len(data) < 100_000                                # in a small file
    with pytest.raises(ImageError) as info:
        decode_image(data, "bomb.png")
    assert_one_line(info.value, "bomb.png", "decompression bomb")


def test_pillow_warning_zone_is_an_error_too():
    # 90 MP: above Pillow's warning threshold, below its hard error.
    data = encode(Image.new("1", (10_000, 9_000)), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data, "warn.png")
    assert_one_line(info.value, "warn.png", "decompression bomb")


def test_image_above_our_pixel_cap():
    data = encode(Image.new("1", (8_000, 7_000)), "PNG")  # 56 MP: Pillow would accept it
    with pytest.raises(ImageError) as info:
        decode_image(data, "huge.png")
    assert_one_line(info.value, "huge.png", "8000x7000", "megapixels", "limit")


def test_file_too_large_is_refused_before_decoding():
    data = b"\xff\xd8\xff" + bytes(images.MAX_UPLOAD_BYTES)
    with pytest.raises(ImageError) as info:
        decode_image(data, "big.jpg")
    assert_one_line(info.value, "big.jpg", "20.0 MB", "limit")


def test_lying_extension():
    data = encode(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data, "holiday.jpg")
    assert_one_line(info.value, "holiday.jpg", "JPEG", "PNG")


def test_read_image_names_the_file(tmp_path):
    with pytest.raises(ImageError) as info:
        images.read_image(tmp_path / "missing.png")
    assert_one_line(info.value, "missing.png", "no such file")
    path = tmp_path / "ok.png"
    path.write_bytes(encode(Image.new("RGB", (3, 2)), "PNG"))
    assert images.read_image(path).size == (3, 2)


def test_a_name_with_a_newline_stays_on_one_line():
    error = ImageError("evil\nerror: fake.png", "not an image")
    assert str(error) == "'evil\\nerror: fake.png': not an image"
    assert "\n" not in str(error) and error.name == "evil\nerror: fake.png"
    bidi = ImageError("photo\u202egnp.exe", "not an image")  # right-to-left override shown
    assert str(bidi).startswith("'photo\\u202egnp.exe': ")
    assert str(ImageError("café.png", "x")) == "café.png: x"  # printable names as they are


# ---------------------------------------------------------------- files on disk: kind and size first

def test_special_files_are_refused_by_kind_before_reading(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)  # nobody writes to it: reading would wait for ever
    for reader in (images.read_image, images.probe_file, images.read_file_bytes):
        with pytest.raises(ImageError) as info:
            reader(fifo)
        assert_one_line(info.value, "x.png", "FIFO", "not a regular file")
    with pytest.raises(ImageError) as info:
        images.read_image("/dev/zero")  # endless: an unbounded read would never stop
    assert_one_line(info.value, "zero", "character device", "not a regular file")
    with pytest.raises(ImageError) as info:
        images.read_image(tmp_path)
    assert_one_line(info.value, tmp_path.name, "is a directory")


def test_huge_and_empty_files_are_refused_by_size_before_reading(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:  # sparse: 21 MB long, nothing on disk
        f.truncate(21 * 1024 * 1024)
    for reader in (images.read_image, images.probe_file):
        with pytest.raises(ImageError) as info:
            reader(big)
        assert_one_line(info.value, "big.png", "21.0 MB", "the limit is 20.0 MB")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as info:
        images.read_image(tmp_path / "empty.png")
    assert_one_line(info.value, "empty.png", "empty")


# ---------------------------------------------------------------- budgets before work: the header

def test_probe_reads_the_header_and_estimates_decoding_memory():
    header = images.probe_image(encode(Image.new("L", (7000, 7000), 7), "PNG"), "grey.png")
    assert (header.format, header.mode, header.width, header.height) == ("PNG", "L", 7000, 7000)
    assert header.frames == 1 and header.pixels == 49_000_000
    assert header.decode_bytes == 49_000_000  # one byte a pixel, nothing else
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "lime")]
    webp = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    assert images.probe_image(webp, "anim.webp").frames == 3
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert images.probe_image(gif, "anim.gif").frames is None  # GIF declares no count


def test_probe_file_reads_only_the_header(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(Image.new("RGB", (4000, 3000), (200, 30, 60)), "JPEG"))
    header = images.probe_file(path)
    assert (header.format, header.width, header.height) == ("JPEG", 4000, 3000)
    # 3000 // DECODE_SIDE (598) = 5: libjpeg's largest scale under it is 1/4
    assert header.draft_scale == 4 and header.decoded_pixels == 1000 * 750


@pytest.mark.parametrize("data,name,words", [
    (b"", "empty.png", ["empty"]),
    (b"GIF89a but not really", "x.gif", ["not an image"]),
    (encode(Image.new("RGB", (8, 8)), "PNG"), "holiday.jpg", ["JPEG", "PNG"]),
    (encode(Image.new("1", (8_000, 7_000)), "PNG"), "huge.png", ["56 megapixels", "limit"]),
])
def test_probe_refuses_what_decode_refuses(data, name, words):
    with pytest.raises(ImageError) as probed:
        images.probe_image(data, name)
    with pytest.raises(ImageError) as decoded:
        decode_image(data, name)
    assert str(probed.value) == str(decoded.value)
    assert_one_line(probed.value, name, *words)


def test_what_would_take_too_much_memory_is_refused_before_decoding():
    # One strip holding the whole 49 MP float image: libtiff's strip buffer (196 MB) on
    # top of the frame (196 MB).
    floats = encode(Image.new("F", (7000, 7000), 0.5), "TIFF",
                    compression="tiff_adobe_deflate", strip_size=2**31 - 1)
    with pytest.raises(ImageError) as info:
        decode_image(floats, "float.tif")
    assert_one_line(info.value, "float.tif", "7000x7000 TIFF (F)", "373.8 MB",
                    "the limit is 200.0 MB per image")
    # libwebp and Pillow hold four RGBA copies: 16 bytes a pixel.
    webp = encode(Image.new("RGB", (3700, 3700), (9, 9, 9)), "WEBP", lossless=True)
    with pytest.raises(ImageError) as info:
        images.probe_image(webp, "big.webp")
    assert_one_line(info.value, "big.webp", "WEBP", "208.9 MB")
    # A progressive JPEG keeps every DCT coefficient, 2 bytes a pixel per component:
    # full-resolution colour (4:4:4) at 36 MP is 216 MB (208 MiB with the frame), 4:2:0 is
    # half that and decodes.
    photo = Image.new("RGB", (6000, 6000), (120, 80, 40))
    with pytest.raises(ImageError) as info:
        images.probe_image(encode(photo, "JPEG", progressive=True, subsampling=0), "p.jpg")
    assert_one_line(info.value, "p.jpg", "JPEG (RGB)", "208.1 MB")
    small = decode_image(encode(photo, "JPEG", progressive=True, subsampling=2), "p.jpg")
    assert small.size == (750, 750)  # libjpeg decoded it at 1/8


def test_a_multi_scan_baseline_jpeg_is_charged_like_a_progressive_one():
    data = bytearray(encode(Image.new("RGB", (4000, 3000), (1, 2, 3)), "JPEG"))
    baseline = images.probe_image(bytes(data), "b.jpg").decode_bytes
    sos = data.index(b"\xff\xda")
    assert data[sos + 4] == 3       # the first scan carries all three components
    data[sos + 4] = 1               # ...now only one: libjpeg buffers the whole image
    multi = images.probe_image(bytes(data), "b.jpg").decode_bytes
    assert baseline == 1000 * 750 * 4 and multi == baseline + 3000 * 4000 * 2 * 3 // 2


# ---------------------------------------------------------------- large images reduced while decoding

@pytest.mark.parametrize("mode,size", [("L", (7000, 7000)), ("1", (7100, 7042))])
def test_large_images_are_decoded_reduced(mode, size):
    data = encode(Image.new(mode, size, 1 if mode == "1" else 77), "PNG")
    assert len(data) < 100_000  # 49-50 MP in a small file
    img = decode_image(data, "big.png")
    factor = min(size) // images.DECODE_SIDE  # 11: the largest keeping 598 pixels
    assert img.mode == "RGB" and img.size == tuple(-(-side // factor) for side in size)
    assert images.DECODE_SIDE <= min(img.size) < 2 * images.DECODE_SIDE
    assert pixel(img, (5, 5)) == ((255,) * 3 if mode == "1" else (77,) * 3)


def test_reduction_gives_what_converting_whole_then_box_reducing_gives():
    rng = np.random.default_rng(3)
    rgba = Image.fromarray(rng.integers(0, 256, (1300, 1700, 4), dtype=np.uint8), "RGBA")
    img = decode_image(encode(rgba, "PNG"), "noise.png")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    expected = Image.alpha_composite(white, rgba).convert("RGB").reduce(2)
    assert img.size == (850, 650)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(expected))
    for mode, fmt in (("L", "PNG"), ("1", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("CMYK", "TIFF")):
        source = rgba.convert("RGB").convert(mode)
        img = decode_image(encode(source, fmt), f"noise.{fmt.lower()}")
        np.testing.assert_array_equal(np.asarray(img), np.asarray(source.convert("RGB").reduce(2)))
    sixteen = rng.integers(0, 65536, (1300, 1700), dtype=np.uint16)
    img = decode_image(encode(Image.fromarray(sixteen), "PNG"), "scan.png")
    grey = Image.fromarray(np.rint(sixteen * (255 / 65535)).astype(np.uint8))
    np.testing.assert_array_equal(np.asarray(img)[..., 1], np.asarray(grey.reduce(2)))
    # Floats are stretched by the whole image's range, not each tile's: the minimum and
    # the maximum sit in different tiles, and NaN/inf do not count.
    values = np.full((1300, 1700), 0.5, np.float32)
    values[:10, :10], values[-10:, -10:] = -1.0, 3.0
    values[600, 600], values[700, 700] = np.nan, np.inf
    img = decode_image(encode(Image.fromarray(values), "TIFF"), "f.tif")
    stretched = np.clip(np.rint((np.nan_to_num(values, nan=-1.0, posinf=3.0) + 1) * 255 / 4), 0, 255)
    expected = Image.fromarray(stretched.astype(np.uint8)).reduce(2)
    np.testing.assert_array_equal(np.asarray(img)[..., 0], np.asarray(expected))


def test_exif_orientation_is_applied_to_the_reduced_image():
    source = Image.new("RGB", (2400, 1200), (255, 255, 255))
    source.paste((0, 0, 0), (0, 0, 1200, 1200))  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: black on top
    img = decode_image(encode(source, "JPEG", exif=exif, quality=95), "phone.jpg")
    assert img.size == (600, 1200)  # drafted at 1/2, then upright
    assert sum(pixel(img, (300, 100))) < 60 and sum(pixel(img, (300, 1100))) > 700


def test_min_side_and_panoramas():
    data = encode(Image.new("RGB", (1000, 1000), (10, 20, 30)), "PNG")
    assert decode_image(data, "digit.png", min_side=56).size == (59, 59)  # 1000 // 56 = 17
    assert decode_image(data, "photo.png").size == (1000, 1000)  # under 2 x 598: untouched
    # A long panorama keeps few pixels in all, whatever its shorter side.
    assert images.reduction_factor((40_000, 1_000)) == 4
    factor = images.reduction_factor((25_000_000, 2))
    assert -(-25_000_000 // factor) <= images.MAX_DECODED_PIXELS


# ---------------------------------------------------------------- preprocessing

def test_center_crop_square_keeps_the_middle():
    strip = np.tile(np.arange(250, dtype=np.uint8)[None, :], (150, 1))  # value = column
    img = Image.fromarray(np.stack([strip] * 3, axis=-1))
    square = images.center_crop_square(img)
    assert square.size == (150, 150)
    assert pixel(square, (0, 0))[0] == 50 and pixel(square, (149, 0))[0] == 199
    tall = images.center_crop_square(img.transpose(Image.Transpose.ROTATE_90))
    assert tall.size == (150, 150)


def test_inception_input_equals_keras_preprocess_input():
    from keras.applications.inception_v3 import preprocess_input

    photo = images.sample_photo("coffee")                 # 600x400, not square
    x = images.inception_input(photo)
    assert x.shape == (299, 299, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9 and x.max() > 0.9
    seen = np.asarray(images.network_view(photo))
    assert seen.shape == (299, 299, 3) and seen.dtype == np.uint8
    np.testing.assert_array_equal(x, preprocess_input(seen.astype("float32")))
    np.testing.assert_array_equal(x, preprocess_input(seen.copy()))  # uint8 input too
    # The network sees the centre: the left 100 columns of the photo are cropped away.
    np.testing.assert_array_equal(
        seen, np.asarray(images.center_crop_square(photo).resize(
            (299, 299), Image.Resampling.BICUBIC, reducing_gap=3.0)))


def test_inception_input_other_size():
    x = images.inception_input(images.sample_photo("rocket"), size=150)
    assert x.shape == (150, 150, 3)


def test_sample_photos_are_real_rgb_photos():
    photos = images.sample_photos()
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        assert name in photos
    for name, photo in photos.items():
        assert photo.mode == "RGB" and min(photo.size) >= 300, name
        assert np.asarray(photo).std() > 20, name  # a photograph, not a flat colour
    assert set(images.sample_titles()) == set(photos)
    # encoded samples go through the same decoder as uploads
    assert decode_image(images.sample_photo_bytes("chelsea"), "chelsea.jpg").size == (451, 300)


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # damaged tags, expected
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP"])
def test_corrupted_bytes_give_image_error_or_an_image_never_a_crash(fmt):
    rng = np.random.default_rng(7)
    exif = Image.Exif()
    exif[0x0112] = 3
    source = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    data = bytearray(encode(source, fmt, **({"exif": exif} if fmt in ("JPEG", "PNG", "WEBP") else {})))
    for trial in range(40):
        damaged = bytearray(data)
        for position in rng.integers(0, len(damaged), size=1 + trial % 8):
            damaged[position] = int(rng.integers(0, 256))
        try:
            img = decode_image(bytes(damaged), f"fuzz.{fmt.lower()}")
        except ImageError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"fuzz.{fmt.lower()}: ")
        else:
            assert img.mode == "RGB"
