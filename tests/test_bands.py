"""The band pipeline equals the effect functions applied to the whole image, bit for bit.

The reference here is the plain whole-image loop (each enabled effect's function on the whole
previous result, with the pipeline's own keyword arguments and random streams). Band heights are
forced small so that odd sizes, thin strips and many band boundaries are all exercised.
"""
import numpy as np
import pytest
from PIL import Image

from effects import validate
from effects import bands
from effects.bands import BAND_PIXELS, apply_in_bands
from effects.blur import BLUR_TYPES
from effects.desaturate import DESATURATE_WEIGHTS
from effects.dodge_burn import DODGE_BURN_MODES
from effects.grain import GRAIN_STYLES
from effects.pipeline import _calls, apply, process
from effects.schema import EFFECTS
from effects.tint import TINT_MODES
from imaging import to_float_rgb, to_pil

ALL_ON = {e.enable.name: True for e in EFFECTS}

CASES = {
    **{f"grain {s}": {"enable_grain": True, "grain_style": s, "grain_scale": 3.7} for s in GRAIN_STYLES},
    "grain coarse lattice": {"enable_grain": True, "grain_scale": 100.0, "grain_intensity": 1.0},
    "color correction": {"enable_color_correction": True, "temperature": 40.0, "brightness": 20.0,
                         "contrast": 35.0, "saturation": -30.0, "gamma": 1.3},
    "color correction no contrast": {"enable_color_correction": True, "temperature": -50.0,
                                     "saturation": 60.0},
    "chromatic vertical": {"enable_chromatic": True, "red_shift": 7, "red_direction": "vertical",
                           "green_shift": -20, "green_direction": "vertical", "blue_shift": 3},
    "chromatic horizontal": {"enable_chromatic": True, "red_shift": -5, "blue_shift": 20},
    **{f"blur {t} r={r}": {"enable_blur": True, "blur_type": t, "blur_radius": r, "blur_sigma": 0.7}
       for t in BLUR_TYPES for r in (0, 1, 3, 31)},
    "vignette": {"enable_vignette": True, "vignette_strength": 0.8},
    "parabolize": {"enable_parabolize": True, "parabolize_coeff": -2.5, "vertex_x": 0.3},
    **{f"tint {m}": {"enable_tint": True, "tint_mode": m, "tint_strength": 0.7}
       for m in list(TINT_MODES)[::4]},
    "dissolve": {"enable_dissolve": True, "dissolve_factor": 0.37},
    **{f"dodge_burn {m}": {"enable_dodge_burn": True, "dodge_burn_mode": m} for m in DODGE_BURN_MODES},
    **{f"glow r={r}": {"enable_glow": True, "glow_radius": r, "glow_intensity": 2.0} for r in (1, 5, 50)},
    **{f"sharpen basic r={r}": {"enable_sharpen": True, "sharpen_radius": r, "sharpen_alpha": 1.7}
       for r in (1, 15)},
    **{f"sharpen smart d={d}": {"enable_sharpen": True, "sharpen_mode": "smart", "noise_radius": d}
       for d in (2, 7, 25)},
    "sharpen smart no denoise": {"enable_sharpen": True, "sharpen_mode": "smart",
                                 "preserve_edges": 0.0},
    "sharpen cas": {"enable_sharpen": True, "sharpen_mode": "cas", "cas_amount": 0.9},
    "solarize": {"enable_solarize": True, "solarize_threshold": 0.4},
    **{f"desaturate {m}": {"enable_desaturate": True, "desaturate_method": m, "desaturate_factor": 0.6}
       for m in DESATURATE_WEIGHTS},
    "all 13": ALL_ON,
    "all 13 heavy": {**ALL_ON, "grain_style": "analog", "contrast": 30.0, "red_shift": 9,
                     "red_direction": "vertical", "blur_type": "kuwahara", "blur_radius": 4,
                     "glow_radius": 9, "sharpen_mode": "smart", "noise_radius": 9},
    "grain then smart sharpen": {"enable_grain": True, "enable_sharpen": True,
                                 "sharpen_mode": "smart"},
    "tint then glow": {"enable_tint": True, "enable_glow": True},
    "desaturate then kuwahara": {"enable_blur": True, "blur_type": "kuwahara",
                                 "enable_desaturate": True},
    "vignette then vertical shift": {"enable_vignette": True, "enable_chromatic": True,
                                     "green_shift": 4, "green_direction": "vertical"},
}
# (height, width): thin strips, a single column, odd sizes.
SIZES = [(1, 1), (1, 9), (2, 5), (3, 64), (37, 1), (40, 3), (29, 17), (61, 32)]


def image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth gradient with noise (so filters, extremes and ties all occur), float32 k/255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / max(w, 1), y / max(h, 1), (x + y) % 7 / 7], axis=-1) * 200
    u8 = np.clip(base + rng.integers(0, 56, (h, w, 3)), 0, 255).astype(np.uint8)
    u8[rng.random((h, w)) < 0.05] = 255  # some pure white and black pixels
    u8[rng.random((h, w)) < 0.05] = 0
    return u8.astype(np.float32) / np.float32(255)


def whole_image(rgb: np.ndarray, request, other: np.ndarray) -> np.ndarray:
    """The reference: each effect function on the whole previous result."""
    for effect, kwargs in _calls(request, other, None, 1.0):
        rgb = effect.function(rgb, **kwargs)
    return rgb


@pytest.mark.parametrize("name", CASES)
def test_bands_equal_whole_image_every_effect_size_and_band_height(name):
    request = validate({**CASES[name], "seed": 11})
    for k, (h, w) in enumerate(SIZES):
        rgb = image(h, w, k)
        other = np.ascontiguousarray(image(h, w, k + 100)[::-1])
        expected = whole_image(rgb, request, other)
        for rows in (1, 2, 3, 7, None):
            got = apply_in_bands(rgb, _calls(request, other, None, 1.0), band_rows=rows)
            assert got.dtype == np.float32 and got.shape == rgb.shape
            assert np.array_equal(got, expected), f"{name}: {h}x{w}, band rows {rows}"


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_all_effects_every_seed_through_apply_and_process(seed):
    # Several default-sized bands (2 or 3 per stage) and an odd width.
    w = 509
    h = 2 * BAND_PIXELS // w + 37
    rgb = image(h, w, seed % 7)
    other = image(h, w, 9)
    request = validate({**ALL_ON, "seed": seed, "contrast": -20.0})
    expected = whole_image(rgb, request, other)
    assert np.array_equal(apply(rgb, request, dissolve_image=other), expected)
    main = to_pil(rgb)
    out = process(main, request, dissolve_image=to_pil(other))
    assert np.array_equal(np.asarray(out), np.asarray(to_pil(expected)))


@pytest.mark.parametrize("noise_radius", [3, 9])
def test_smart_sharpen_bands_see_the_whole_value_range(noise_radius):
    # OpenCV 4.x's float bilateral filter scales its colour weights by its input's min and max
    # (5.0 computes them exactly): here most bands hold only mid-greys, the image also black and white.
    rgb = 0.45 + 0.1 * image(48, 40, 2)
    rgb[-3:, :5] = [0.0, 1.0, 0.5]
    request = validate({"enable_sharpen": True, "sharpen_mode": "smart", "noise_radius": noise_radius,
                        "preserve_edges": 0.2})
    expected = whole_image(rgb, request, None)
    for rows in (1, 4, 16):
        assert np.array_equal(apply_in_bands(rgb, _calls(request, None, None, 1.0), band_rows=rows),
                              expected)


@pytest.mark.parametrize("kind", ["exif rotated", "palette with transparency", "other size"])
def test_process_reads_the_second_image_band_by_band_like_to_float_rgb(kind):
    w = 33
    h = 2 * BAND_PIXELS // w + 50  # three bands
    rgb = image(h, w, 4)
    second = to_pil(image(w, h, 6))  # rotated by EXIF below
    if kind == "exif rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        second.info["exif"] = exif.tobytes()
    elif kind == "palette with transparency":
        second = second.rotate(90, expand=True).quantize(64)
        second.info["transparency"] = 3
    else:
        second = second.resize((50, 2100))
    other = to_float_rgb(second)[0]
    if other.shape != rgb.shape:
        other = to_float_rgb(to_pil(other).resize((w, h), Image.LANCZOS))[0]
    request = validate({"enable_dissolve": True, "enable_blur": True, "seed": 5})
    expected = whole_image(rgb, request, other)
    out = process(to_pil(rgb), request, dissolve_image=second)
    assert np.array_equal(np.asarray(out), np.asarray(to_pil(expected)))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "CMYK", "P", "P transparent", "I;16",
                                  "exif rotated"])
def test_conversion_in_bands_equals_to_float_rgb(monkeypatch, mode):
    monkeypatch.setattr(bands, "BAND_PIXELS", 100)  # bands of 3 rows
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (53, 31, 4), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray(np.arange(53 * 31, dtype=np.uint16).reshape(53, 31) * 40)
    elif mode.startswith("P"):
        img = base.convert("RGB").quantize(50)
        if mode == "P transparent":
            img.info["transparency"] = 4
    elif mode == "exif rotated":
        img = base.convert("RGB")
        exif = Image.Exif()
        exif[0x0112] = 6
        img.info["exif"] = exif.tobytes()
    else:
        img = base.convert(mode)
    rgb, alpha = to_float_rgb(img)
    got_rgb, got_alpha = bands.to_float_rgb_in_bands(img)
    assert np.array_equal(got_rgb, rgb) and got_rgb.dtype == np.float32
    assert (alpha is None and got_alpha is None) or np.array_equal(got_alpha, alpha)


def test_process_keeps_alpha_with_bands():
    rgb = image(45, 13, 3)
    alpha = np.arange(45 * 13, dtype=np.uint8).reshape(45, 13)
    rgba = Image.fromarray(np.dstack([np.asarray(to_pil(rgb)), alpha]), "RGBA")
    request = validate({"enable_glow": True, "enable_vignette": True, "seed": 1})
    out = np.asarray(process(rgba, request))
    assert np.array_equal(out[..., 3], alpha)
    assert np.array_equal(out[..., :3], np.asarray(to_pil(whole_image(rgb, request, None))))


def test_input_is_not_modified_and_no_effect_is_a_copy():
    rgb = image(30, 20, 5)
    before = rgb.copy()
    out = apply_in_bands(rgb, [], band_rows=2)
    assert out is not rgb and np.array_equal(out, rgb)
    apply_in_bands(rgb, _calls(validate({**ALL_ON, "seed": 3}), rgb, None, 1.0), band_rows=3)
    assert np.array_equal(rgb, before)


def test_on_effect_hears_every_effect_in_order_before_it_runs():
    rgb = image(40, 20, 1)
    calls = _calls(validate({**ALL_ON, "seed": 1}), rgb, None, 1.0)
    heard = []
    apply_in_bands(rgb, calls, band_rows=4, on_effect=heard.append)
    assert heard == [effect.key for effect, _ in calls]

    class Stop(Exception):
        pass

    def stop_at_glow(key):
        if key == "glow":
            raise Stop
    work = rgb.copy()
    with pytest.raises(Stop):
        apply_in_bands(work, calls, band_rows=4, overwrite_input=True, on_effect=stop_at_glow)
