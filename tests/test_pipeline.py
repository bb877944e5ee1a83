"""effects.process: order, image modes, alpha, EXIF, odd sizes, seeds, dissolve handling."""
import io

import numpy as np
import pytest
from PIL import Image

from effects import ValidationError, process
from imaging import to_float_rgb, to_pil
from effects.schema import EFFECTS

ALL_ON = {e.enable.name: True for e in EFFECTS}


def photo(w=24, h=16, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)


def test_no_effect_enabled_is_an_exact_identity():
    img = photo()
    out = process(img, {})
    assert out is not img and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_fixed_order_parabolize_before_solarize():
    # 51/255 = 0.2: parabolize (1, 0.5, 0.5) gives 0.09 + 0.5 = 0.59, then solarize (t=0.5) gives
    # 1 - 0.59 = 0.41 -> 104.55 -> 105. The other order would give 0.59 -> 150.
    img = Image.new("RGB", (3, 2), (51, 51, 51))
    out = process(img, {"enable_parabolize": True, "enable_solarize": True})
    assert np.all(np.asarray(out) == 105)


def test_rgba_alpha_passes_through_untouched():
    rgb = np.asarray(photo())
    alpha = np.arange(rgb.shape[0] * rgb.shape[1], dtype=np.uint8).reshape(rgb.shape[:2])
    img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    out = process(img, {"enable_solarize": True, "solarize_threshold": 0.0})
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)
    assert np.array_equal(np.asarray(out)[..., :3], np.where(rgb > 0, 255 - rgb, rgb))  # strict >
    la = process(img.convert("LA"), {})
    assert la.mode == "RGBA" and np.array_equal(np.asarray(la)[..., 3], alpha)


def test_palette_with_transparency_keeps_alpha():
    img = Image.new("P", (4, 3), 0)
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    out = np.asarray(process(img, {}))
    assert out.shape == (3, 4, 4)
    assert out[1, 1].tolist() == [200, 100, 50, 255] and out[0, 0].tolist() == [10, 20, 30, 0]


def test_sixteen_bit_png_keeps_precision():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 0, 1, 128, 255 in 8 bits
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.mode.startswith("I")
    rgb, alpha = to_float_rgb(img)
    assert alpha is None and rgb.dtype == np.float32 and rgb.shape == (1, 4, 3)
    np.testing.assert_allclose(rgb[0, :, 0], values[0] / 65535, rtol=1e-6)
    out = np.asarray(process(img, {}))
    assert out[0, :, 0].tolist() == [0, 1, 128, 255] and out.shape == (1, 4, 3)


def test_grey_and_cmyk_modes():
    grey = Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8), "L")
    assert np.asarray(process(grey, {})).tolist() == [[[0] * 3, [100] * 3, [255] * 3]]
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in Pillow's naive conversion
    assert np.asarray(process(cmyk, {}))[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied_first():
    img = photo(6, 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    out = process(Image.open(io.BytesIO(buf.getvalue())), {})
    assert out.size == (4, 6)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (7, 1), (5, 3), (33, 20)])
def test_every_effect_on_odd_sizes(size):
    img = photo(*size)
    out = process(img, {**ALL_ON, "seed": 3}, dissolve_image=photo(2, 2, seed=1))
    assert out.size == img.size and out.mode == "RGB"


@pytest.mark.parametrize("mode", ["cas", "smart", "basic"])
def test_all_effects_each_sharpen_mode_and_kuwahara(mode):
    params = {**ALL_ON, "sharpen_mode": mode, "blur_type": "kuwahara", "seed": 1}
    out = process(photo(), params, dissolve_image=photo(seed=2))
    assert out.size == (24, 16)


def test_same_seed_same_bytes_different_seed_different_bytes():
    params = {"enable_grain": True, "enable_dissolve": True, "seed": 42}
    second = photo(seed=9)
    a = process(photo(), params, dissolve_image=second).tobytes()
    b = process(photo(), params, dissolve_image=second).tobytes()
    c = process(photo(), {**params, "seed": 43}, dissolve_image=second).tobytes()
    assert a == b and a != c


def test_without_seed_grain_is_random():
    a = process(photo(), {"enable_grain": True}).tobytes()
    b = process(photo(), {"enable_grain": True}).tobytes()
    assert a != b


def test_dissolve_without_second_image_is_a_value_error():
    with pytest.raises(ValidationError, match="dissolve_image_url: enable_dissolve is true but no second"):
        process(photo(), {"enable_dissolve": True})


def test_dissolve_resizes_the_second_image_with_lanczos():
    second = photo(7, 5, seed=4)
    resized = np.asarray(second.resize((24, 16), Image.LANCZOS))
    out = np.asarray(process(photo(), {"enable_dissolve": True, "dissolve_factor": 0.0},
                             dissolve_image=second))
    assert np.array_equal(out, resized)  # factor 0 keeps nothing of the main image


def test_invalid_params_raise_before_any_work():
    with pytest.raises(ValidationError, match="glow_radius"):
        process(photo(), {"enable_glow": True, "glow_radius": 0})


def test_to_pil_rounds_half_up():
    rgb = np.array([[[0.5 / 255, 1.5 / 255, 254.5 / 255]]], dtype=np.float64).astype(np.float32)
    assert np.asarray(to_pil(rgb)).tolist() == [[[1, 2, 255]]]


def test_rgb_with_a_transparent_colour_gets_alpha():
    img = Image.new("RGB", (3, 1), (10, 20, 30))
    img.putpixel((1, 0), (200, 100, 50))
    img.info["transparency"] = (10, 20, 30)  # as a PNG tRNS chunk opens
    out = np.asarray(process(img, {}))
    assert out[..., 3].tolist() == [[0, 255, 0]] and out[0, 1].tolist() == [200, 100, 50, 255]
