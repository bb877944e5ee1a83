"""Color correction (docs/decisions.md §1.2): bit-exact against a plain Pillow + OpenCV reading of the node."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageStat

from effects.color_correction import _blend_lut, _pillow_luma_mean, color_correction

IMAGES = Path(__file__).resolve().parents[1] / "examples"
NEUTRAL = dict(temperature=0.0, brightness=0.0, contrast=0.0, saturation=0.0, gamma=1.0)


def literal_color_correct(image, temperature, brightness, contrast, saturation, gamma):
    """§1.2 step by step, written plainly with Pillow and OpenCV as the node does (hue = 0)."""
    b, c = 1 + brightness / 100, 1 + contrast / 100
    s, t = 1 + saturation / 100, temperature / 100
    pil = Image.fromarray((image * 255).astype(np.uint8))
    pil = ImageEnhance.Brightness(pil).enhance(b)
    pil = ImageEnhance.Contrast(pil).enhance(c)
    x = np.array(pil).astype(np.float32)
    if t > 0:
        x[:, :, 0] *= 1 + t
        x[:, :, 1] *= 1 + t * 0.4
    elif t < 0:
        x[:, :, 2] *= 1 - t
    x = np.clip(x, 0, 255) / 255
    x = np.clip(np.power(x, gamma), 0, 1)
    hls = cv2.cvtColor(x, cv2.COLOR_RGB2HLS)
    hls[:, :, 2] = np.clip(s * hls[:, :, 2], 0, 1)
    x = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB) * 255
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[:, :, 0] = (hsv[:, :, 0] + 0) % 360
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (np.clip(x, 0, 255).astype(np.uint8) / 255).astype(np.float32)


def _photo(name, box):
    rgb = np.asarray(Image.open(IMAGES / f"{name}.png").convert("RGB").crop(box), dtype=np.float32)
    return np.ascontiguousarray(rgb / 255)


def _grey(levels):
    """A 1xN grey image of the given 8-bit levels (may be fractional)."""
    return np.repeat(np.array(levels, np.float32)[None, :, None] / 255, 3, axis=2)


def _levels(image):
    return np.round(image[0, :, 0] * 255).astype(int).tolist()


# --- bit-exact parity with the literal pipeline -----------------------------------------------

def _random_params(rng):
    pick = lambda neutral, lo, hi: float(rng.choice([neutral, round(rng.uniform(lo, hi), 1)]))
    return dict(temperature=pick(0.0, -100, 100), brightness=pick(0.0, -100, 100),
                contrast=pick(0.0, -100, 100), saturation=pick(0.0, -100, 100),
                gamma=pick(1.0, 0.2, 2.2))


@pytest.mark.parametrize("name, box", [("astronaut", (100, 50, 228, 146)),
                                       ("coffee", (200, 100, 296, 228)),
                                       ("chelsea", (0, 0, 128, 97))])
def test_bit_exact_against_literal_pipeline_random_parameters(name, box):
    photo = _photo(name, box)
    rng = np.random.default_rng(sum(map(ord, name)))
    for k in range(25):
        params = _random_params(rng)
        # Odd rounds: values between 8-bit levels, as left by an earlier effect such as grain.
        image = photo if k % 2 == 0 else np.clip(
            photo + rng.normal(0, 0.02, photo.shape).astype(np.float32), 0, 1)
        np.testing.assert_array_equal(color_correction(image, **params),
                                      literal_color_correct(image, **params), err_msg=str(params))


@pytest.mark.parametrize("params", [
    dict(temperature=100.0, brightness=100.0, contrast=100.0, saturation=100.0, gamma=0.2),
    dict(temperature=-100.0, brightness=-100.0, contrast=-100.0, saturation=-100.0, gamma=2.2),
    dict(temperature=-100.0, brightness=100.0, contrast=-100.0, saturation=100.0, gamma=2.2),
    dict(temperature=0.0, brightness=-99.0, contrast=100.0, saturation=0.0, gamma=1.0),
])
def test_bit_exact_at_range_extremes(params):
    image = np.random.default_rng(1).random((31, 47, 3), dtype=np.float32)
    np.testing.assert_array_equal(color_correction(image, **params),
                                  literal_color_correct(image, **params))


# --- Pillow ImageEnhance semantics --------------------------------------------------------------

RAMP = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2))


@pytest.mark.parametrize("factor", [0.0, 0.01, 0.33, 0.5, 0.999, 1.0, 1.05, 1.1, 1.37, 1.5, 2.0])
def test_brightness_table_matches_pillow_for_every_level(factor):
    expected = np.asarray(ImageEnhance.Brightness(RAMP).enhance(factor))[0, :, 0]
    np.testing.assert_array_equal(_blend_lut(0, factor), expected)


@pytest.mark.parametrize("pivot", [0, 1, 37, 100, 128, 254, 255])
@pytest.mark.parametrize("factor", [0.0, 0.05, 0.5, 0.77, 1.0, 1.2, 1.5, 1.95, 2.0])
def test_contrast_table_matches_pillow_blend_with_grey(pivot, factor):
    grey = Image.new("RGB", RAMP.size, (pivot,) * 3)
    expected = np.asarray(Image.blend(grey, RAMP, factor))[0, :, 0]
    np.testing.assert_array_equal(_blend_lut(pivot, factor), expected)


def test_luma_mean_matches_pillow_imagestat():
    rng = np.random.default_rng(2)
    for shape in [(1, 1, 3), (1, 9, 3), (13, 17, 3), (64, 48, 3)]:
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = int(ImageStat.Stat(Image.fromarray(rgb).convert("L")).mean[0] + 0.5)
        assert _pillow_luma_mean(rgb) == expected


# --- single steps by hand (greys survive the HLS/HSV round trips exactly) ----------------------

def test_brightness_by_hand():
    image = _grey([100, 101, 200, 0])
    assert _levels(color_correction(image, **{**NEUTRAL, "brightness": -50.0})) == [50, 50, 100, 0]
    # float32(1.1) = 1.10000002: 101 * 1.1 = 111.1 -> 111; 200 * 1.1 = 220.
    assert _levels(color_correction(image, **{**NEUTRAL, "brightness": 10.0})) == [110, 111, 220, 0]
    assert _levels(color_correction(image, **{**NEUTRAL, "brightness": 50.0})) == [150, 151, 255, 0]


def test_contrast_pivots_on_the_rounded_mean_by_hand():
    # Mean of 50 and 150 is 100: 100 + 1.5 (v - 100).
    assert _levels(color_correction(_grey([50, 150]), **{**NEUTRAL, "contrast": 50.0})) == [25, 175]
    assert _levels(color_correction(_grey([50, 150]), **{**NEUTRAL, "contrast": -50.0})) == [75, 125]
    # Mean 100.5 rounds to 101: 101 + 2 (50 - 101) = -1 -> 0, 101 + 2 * 50 = 201.
    assert _levels(color_correction(_grey([50, 151]), **{**NEUTRAL, "contrast": 100.0})) == [0, 201]
    # Factor 0: everything becomes the pivot.
    assert _levels(color_correction(_grey([50, 151]), **{**NEUTRAL, "contrast": -100.0})) == [101, 101]


def test_contrast_uses_the_brightened_image_mean():
    # Brightness 0.5 first: 50, 150 -> 25, 75 (mean 50); contrast 2: 50 + 2 (v - 50) = 0, 100.
    out = color_correction(_grey([50, 150]), **{**NEUTRAL, "brightness": -50.0, "contrast": 100.0})
    assert _levels(out) == [0, 100]


def test_gamma_is_the_raw_exponent_by_hand():
    # (64/255)^2 * 255 = 16.06 -> 16; gamma > 1 darkens, gamma < 1 brightens.
    assert _levels(color_correction(_grey([64]), **{**NEUTRAL, "gamma": 2.0})) == [16]
    # (64/255)^0.5 * 255 = 127.75 -> 127.
    assert _levels(color_correction(_grey([64]), **{**NEUTRAL, "gamma": 0.5})) == [127]


@pytest.mark.parametrize("temperature, expected", [(50.0, (150, 120, 100)), (-50.0, (100, 100, 150)),
                                                   (100.0, (200, 140, 100))])
def test_temperature_by_hand(temperature, expected):
    out = color_correction(_grey([100]), **{**NEUTRAL, "temperature": temperature})[0, 0] * 255
    # The HLS/HSV round trips of a colour may lose one level to the final truncation (§1.2).
    assert np.all(out <= np.array(expected) + 1e-3) and np.all(out >= np.array(expected) - 1 - 1e-3)


def test_full_desaturation_gives_hls_lightness():
    # Pure red: L = (1 + 0) / 2 -> 127.5 -> truncated to 127 for every channel.
    red = np.array([[[1.0, 0.0, 0.0]]], np.float32)
    out = color_correction(red, **{**NEUTRAL, "saturation": -100.0})
    np.testing.assert_array_equal(out, np.full((1, 1, 3), np.float32(127 / 255)))


def test_saturation_leaves_greys_alone():
    image = _grey([0, 17, 128, 255])
    np.testing.assert_array_equal(color_correction(image, **{**NEUTRAL, "saturation": 80.0}), image)


# --- neutral settings ----------------------------------------------------------------------------

def test_neutral_is_exact_on_grey_levels_and_truncates_between_levels():
    levels = np.arange(256, dtype=np.float32)
    np.testing.assert_array_equal(color_correction(_grey(levels), **NEUTRAL), _grey(levels))
    assert _levels(color_correction(_grey([100.7, 254.99, 0.5]), **NEUTRAL)) == [100, 254, 0]


def test_neutral_on_colours_only_ever_drops_one_level_like_the_node():
    # Not an identity: the HLS and HSV round trips land just below some levels and the final
    # truncation drops them (about a quarter of all values; docs/decisions.md §1.2 says "quantised").
    image = _photo("coffee", (0, 0, 160, 120))
    out = color_correction(image, **NEUTRAL)
    np.testing.assert_array_equal(out, literal_color_correct(image, **NEUTRAL))
    drop = np.round((image - out) * 255)
    assert set(np.unique(drop)) == {0.0, 1.0}


# --- contract ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (7, 1, 3), (2, 3, 3), (33, 20, 3)])
def test_output_contract_and_input_untouched(shape):
    image = np.random.default_rng(3).random(shape, dtype=np.float32)
    before = image.copy()
    params = dict(temperature=30.0, brightness=-20.0, contrast=40.0, saturation=25.0, gamma=1.3)
    out = color_correction(image, **params)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape and out.flags.c_contiguous
    assert not np.shares_memory(out, image)
    assert out.min() >= 0.0 and out.max() <= 1.0
    levels = np.round(out * 255).astype(int)  # every value is exactly some k/255
    np.testing.assert_array_equal(out, (np.arange(256) / 255).astype(np.float32)[levels])
    np.testing.assert_array_equal(out, literal_color_correct(image, **params))


def test_float32_division_gives_the_nodes_float64_quotient_for_every_level():
    # color_correction's last step relies on it: k / 255 in float32 is k / 255 in float64, rounded.
    levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(np.divide(levels, np.float32(255), dtype=np.float32),
                                  (levels / 255).astype(np.float32))
