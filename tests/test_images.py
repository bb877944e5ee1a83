"""imaging.decode.decode_image: hostile and unusual image inputs either decode correctly or fail with a
clear InputError (status, field-named message, no internals)."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

import effects
from common.errors import InputError
from imaging.decode import decode_image, sniff_format


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height RGB pixels but whose IDAT holds only a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def _exif(entries) -> bytes:
    """A little-endian EXIF block from (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def _refused(data, status, *fragments, **kwargs):
    with pytest.raises(InputError) as info:
        decode_image(data, field="image_url", **kwargs)
    message = str(info.value)
    assert info.value.status == status, message
    assert info.value.field == "image_url"
    assert message.startswith("image_url: ")
    for fragment in fragments:
        assert fragment in message
    for leak in ("Traceback", "PIL", "/tmp", "Errno", "plugin"):
        assert leak not in message
    return message


def _noise_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return _encode(Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)), "JPEG", quality=90)


# --- size caps -------------------------------------------------------------------------------------

def test_bomb_png_refused_from_header_before_decoding():
    # 8000×8000 = 64 MP > 50 MP default, yet below Pillow's own bomb error. Decoding first would fail
    # as "truncated" (400): the 413 proves the header check came first.
    _refused(_png_header_only(8000, 8000), 413, "8000×8000 (64.0 MP)", "limit is 50.0 MP")


def test_gigantic_bomb_png_refused():
    _refused(_png_header_only(100_000, 100_000), 413, "limit is 50.0 MP")


def test_pixel_cap_argument_and_env(monkeypatch):
    data = _encode(Image.new("RGB", (30, 20)), "PNG")
    _refused(data, 413, "30×20 (600 pixels)", "limit is 599 pixels", max_pixels=599)
    assert decode_image(data, field="image_url", max_pixels=600)[0].size == (30, 20)
    monkeypatch.setenv("STUDIO_MAX_PIXELS", "500")
    _refused(data, 413, "limit is 500 pixels")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_limit_applies_when_lower(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _refused(_encode(Image.new("L", (40, 40)), "PNG"), 413, "limit is 1000 pixels")


# --- corrupt, wrong and empty content ------------------------------------------------------------

def test_truncated_jpeg_data():
    data = _noise_jpeg()
    _refused(data[: len(data) // 2], 400, "JPEG data is corrupt or truncated")


def test_truncated_jpeg_header():
    _refused(_noise_jpeg()[:40], 400, "JPEG header is corrupt or truncated")


def test_truncated_png():
    data = _encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)), "PNG")
    _refused(data[: len(data) - 200], 400, "PNG data is corrupt or truncated")


@pytest.mark.parametrize("data", [
    b"<!doctype html><html><body>hello</body></html>",
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS would run Ghostscript: never opened
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    _encode(Image.new("RGB", (16, 16)), "ICO"),
    _encode(Image.new("RGB", (16, 16)), "PPM"),
    b"\x89PN",
])
def test_not_an_allowed_image(data):
    _refused(data, 415, "not an image in a supported format", "PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC/HEIF or AVIF")


def test_empty():
    _refused(b"", 400, "empty (0 bytes)")


def test_zero_width_header():
    _refused(_png_header_only(0, 10), 400, "PNG header is corrupt")


def test_path_input_and_unreadable_path(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(_encode(Image.new("RGB", (5, 4), (1, 2, 3)), "PNG"))
    image, _ = decode_image(path, field="image_url")
    assert image.size == (5, 4) and image.getpixel((0, 0)) == (1, 2, 3)
    image, _ = decode_image(str(path), field="image_url")
    assert image.size == (5, 4)
    message = _refused(tmp_path / "missing.png", 400, "could not be read")
    assert "missing.png" not in message and str(tmp_path) not in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _refused(path, 400, "empty (0 bytes)")


# --- unusual but valid images ----------------------------------------------------------------------

def test_one_by_one():
    image, warnings = decode_image(_encode(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG"), field="image_url")
    assert image.size == (1, 1) and image.getpixel((0, 0)) == (9, 8, 7) and warnings == []


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_first_frame_with_warning(fmt):
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    image, warnings = decode_image(data, field="image_url")
    assert image.convert("RGB").getpixel((3, 3)) == (255, 0, 0)
    assert warnings == ["image_url: animated or multi-frame image (3 frames); only the first frame is used"]


def test_sixteen_bit_png_keeps_precision():
    data = _encode(Image.fromarray(np.full((4, 5), 60000, np.uint16)), "PNG")
    image, _ = decode_image(data, field="image_url")
    assert image.mode == "I;16" and image.size == (5, 4)
    assert np.asarray(image).max() == 60000


def test_sixteen_bit_big_endian_tiff_becomes_I():
    data = _encode(Image.frombytes("I;16B", (2, 3), np.full((3, 2), 513, ">u2").tobytes()), "TIFF")
    image, _ = decode_image(data, field="image_url")
    assert image.mode == "I" and np.asarray(image).max() == 513


def test_cmyk_jpeg():
    data = _encode(Image.new("CMYK", (10, 6), (0, 255, 255, 0)), "JPEG", quality=95)
    image, _ = decode_image(data, field="image_url")
    assert image.mode == "CMYK" and image.size == (10, 6)
    red = image.convert("RGB").getpixel((5, 3))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_palette_with_transparency_keeps_alpha_through_process():
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    image, _ = decode_image(_encode(palette, "PNG", transparency=0), field="image_url")
    assert image.mode == "P" and image.info["transparency"] == 0
    out = effects.process(image, {})
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((1, 1)) == (255, 0, 0, 255)


def test_one_bit_and_la_modes():
    image, _ = decode_image(_encode(Image.new("1", (5, 5), 1), "BMP"), field="image_url")
    assert image.mode == "L" and image.getpixel((2, 2)) == 255
    image, _ = decode_image(_encode(Image.new("LA", (5, 5), (100, 50)), "PNG"), field="image_url")
    assert image.mode == "LA" and image.getpixel((0, 0)) == (100, 50)


def _oriented_jpeg(exif: bytes) -> bytes:
    # 40×20, left half red, right half blue: after a 90° clockwise turn (orientation 6) red is on top.
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    return _encode(image, "JPEG", quality=95, exif=exif)


def test_exif_orientation_applied():
    image, _ = decode_image(_oriented_jpeg(_exif([(0x0112, 3, 1, struct.pack("<HH", 6, 0))])),
                            field="image_url")
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_damaged_exif_still_oriented_and_safe_downstream():
    # Orientation 6 next to a rational tag (WhitePoint) holding text: Pillow's own exif_transpose
    # raises on this (it re-serialises the whole EXIF block); decode_image applies the orientation
    # and keeps the block without that colour tag (the result carries its own profile).
    exif = _exif([(0x0112, 3, 1, struct.pack("<HH", 6, 0)), (0x013F, 2, 4, b"abc\x00")])
    with pytest.raises(TypeError):
        ImageOps.exif_transpose(Image.open(io.BytesIO(_oriented_jpeg(exif))))
    image, warnings = decode_image(_oriented_jpeg(exif), field="image_url")
    assert image.size == (20, 40) and warnings == []
    assert dict(image.getexif()) == {0x0112: 1}
    out = effects.process(image, {})  # the pipeline's own EXIF pass works too
    carried = Image.Exif()
    carried.load(out.info["exif"])
    assert out.size == (20, 40) and dict(carried) == {0x0112: 1}


@pytest.mark.parametrize("image, fmt", [
    (Image.new("RGB", (7, 5), (10, 20, 30)), "PNG"), (Image.new("RGBA", (7, 5), (10, 20, 30, 40)), "PNG"),
    (Image.new("RGB", (7, 5), (10, 20, 30)), "BMP"), (Image.new("RGB", (7, 5), (10, 20, 30)), "TIFF"),
    (Image.new("RGB", (7, 5), (10, 20, 30)), "WEBP"), (Image.new("L", (7, 5), 77), "GIF"),
])
def test_plain_formats_decode_and_process(image, fmt):
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    decoded, warnings = decode_image(_encode(image, fmt, **kwargs), field="image_url")
    assert decoded.size == (7, 5) and warnings == []
    assert np.array_equal(np.asarray(decoded.convert(image.mode)), np.asarray(image))
    assert effects.process(decoded, {}).size == (7, 5)


def test_sniff_format():
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "WEBP"
    assert sniff_format(b"RIFF\0\0\0\0WAVEfmt ") is None
    assert sniff_format(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff_format(b"MM\x00*\0\0\0\x08") == "TIFF"
    assert sniff_format(b"") is None


# --- HEIC/HEIF and AVIF (ISO base media files) ---------------------------------------------------

@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_iso_media_formats_are_capped_truncation_checked_and_first_frame(fmt):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8))
    data = _encode(image, fmt, quality=80)
    decoded, warnings = decode_image(data, field="image_url")
    assert decoded.size == (80, 64) and decoded.mode == "RGB" and warnings == []
    _refused(data, 413, "80×64 (5120 pixels)", "limit is 5000 pixels", max_pixels=5000)
    _refused(data[:40], 400, f"{fmt} header is corrupt or truncated")
    assert "corrupt or truncated" in _refused(data[: len(data) // 2], 400)
    frames = _encode(image, fmt, save_all=True, append_images=[image, image])
    assert decode_image(frames, field="image_url")[1] == [
        "image_url: animated or multi-frame image (3 frames); only the first frame is used"]
