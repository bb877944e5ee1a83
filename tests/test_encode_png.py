"""imaging.encode: the parallel Up-filtered PNG path is lossless, keeps Pillow's metadata chunks and
streams to files."""
import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from imaging import encode_png
from imaging import encode as png_encode
from imaging.encode import write_png

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def random_image(mode: str, w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8), mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40, 1), (37, 91), (333, 20)])
def test_fast_path_is_lossless_over_many_bands(monkeypatch, mode, size):
    monkeypatch.setattr(png_encode, "_BAND_BYTES", 500)  # several bands, some of a single row
    image = random_image(mode, *size)
    data = encode_png(image)
    back = Image.open(io.BytesIO(data))
    assert back.mode == mode and back.size == size
    assert np.array_equal(np.asarray(back), np.asarray(image))
    # A second, strict decoder (libpng/spng check every CRC and the Adler-32).
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).reshape(
        size[1], size[0], -1)
    order = [2, 1, 0, 3][:len(mode)]
    assert np.array_equal(decoded[..., order], np.asarray(image))


def test_metadata_chunks_come_from_pillow():
    image = random_image("RGB", 64, 48)
    image.info["icc_profile"] = SRGB
    image.info["transparency"] = (1, 2, 3)
    back = Image.open(io.BytesIO(encode_png(image)))
    back.load()
    assert back.info["icc_profile"] == SRGB and back.info["transparency"] == (1, 2, 3)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "I;16"])
def test_other_modes_are_saved_by_pillow(mode):
    if mode == "I;16":
        image = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 97)
    else:
        image = random_image("RGB", 30, 20).convert(mode)
    back = Image.open(io.BytesIO(encode_png(image)))
    assert back.mode == image.mode and np.array_equal(np.asarray(back), np.asarray(image))


def test_fast_path_compresses_smooth_images():
    image = Image.radial_gradient("L").resize((600, 400)).convert("RGB")
    data = encode_png(image)
    assert len(data) < 600 * 400 * 3 / 10  # a smooth image compresses
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))


def test_write_png_streams_the_same_bytes(tmp_path):
    image = random_image("RGBA", 50, 70)
    path = tmp_path / "x.png"
    with path.open("wb") as file:
        write_png(image, file)
    assert path.read_bytes() == encode_png(image)


def test_adler32_combine_matches_zlib():
    rng = np.random.default_rng(1)
    for n1, n2 in ((0, 5), (1, 1), (1000, 777), (70000, 123456)):
        a, b = rng.bytes(n1), rng.bytes(n2)
        assert png_encode._adler32_combine(zlib.adler32(a), zlib.adler32(b), n2) == zlib.adler32(a + b)


def test_save_png_writes_the_file_and_records_its_size(monkeypatch, tmp_path):
    from studio import results
    monkeypatch.setattr(results, "cache_folder", lambda: tmp_path)
    image = random_image("RGB", 40, 30)
    path, record = results.save_png(image)
    assert path.read_bytes() == encode_png(image)
    assert record["file_size"] == path.stat().st_size and (record["width"], record["height"]) == (40, 30)
