"""Per-pixel effects: chromatic (§1.3), vignette (§1.5), parabolize (§1.6), tint (§1.7),
solarize (§1.12), desaturate (§1.13). Expected values are worked out by hand from docs/decisions.md."""
import math

import numpy as np
import pytest

from effects.chromatic import chromatic
from effects.desaturate import DESATURATE_WEIGHTS, desaturate
from effects.parabolize import parabolize
from effects.solarize import solarize
from effects.tint import TINT_MODES, tint
from effects.vignette import vignette

# fal's enums, copied from the API page (tests/data/fal-post-processing-api.txt).
FAL_TINT_MODES = ["sepia", "red", "green", "blue", "cyan", "magenta", "yellow", "purple", "orange",
                  "warm", "cool", "lime", "navy", "vintage", "rose", "teal", "maroon", "peach",
                  "lavender", "olive"]
FAL_DESATURATE_METHODS = ["luminance (Rec.709)", "luminance (Rec.601)", "average", "lightness"]

NO_SHIFT = dict(red_shift=0, red_direction="horizontal", green_shift=0, green_direction="horizontal",
                blue_shift=0, blue_direction="horizontal")

CALLS = {
    "chromatic": lambda im: chromatic(im, red_shift=3, red_direction="horizontal", green_shift=-2,
                                      green_direction="vertical", blue_shift=20,
                                      blue_direction="vertical"),
    "vignette": lambda im: vignette(im, vignette_strength=0.8),
    "parabolize": lambda im: parabolize(im, parabolize_coeff=-3.0, vertex_x=0.3, vertex_y=0.9),
    "tint": lambda im: tint(im, tint_strength=0.7, tint_mode="teal"),
    "solarize": lambda im: solarize(im, solarize_threshold=0.4),
    "desaturate": lambda im: desaturate(im, desaturate_factor=0.6, desaturate_method="lightness"),
}


def _ramp(h, w):
    """Distinct value per element: channel c of pixel (i, j) holds (100c + 10i + j) / 1000."""
    i, j, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((100 * c + 10 * i + j) / 1000).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (6, 1, 3), (2, 3, 3), (9, 16, 3)])
def test_output_contract_and_input_untouched(name, shape):
    image = np.random.default_rng(3).random(shape, dtype=np.float32)
    before = image.copy()
    out = CALLS[name](image)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape and out.flags.c_contiguous
    assert not np.shares_memory(out, image)
    assert out.min() >= 0.0 and out.max() <= 1.0


# --- chromatic aberration (§1.3) -------------------------------------------------------------

def test_chromatic_horizontal_positive_moves_right_with_wraparound():
    image = _ramp(2, 3)
    out = chromatic(image, **{**NO_SHIFT, "red_shift": 1})
    # out[i, j] = in[i, (j - 1) mod 3]: the last column wraps round to the front.
    expected_red = np.array([[0.002, 0.000, 0.001], [0.012, 0.010, 0.011]], np.float32)
    np.testing.assert_array_equal(out[..., 0], expected_red)
    np.testing.assert_array_equal(out[..., 1:], image[..., 1:])


def test_chromatic_horizontal_negative_moves_left():
    out = chromatic(_ramp(2, 3), **{**NO_SHIFT, "blue_shift": -1})
    expected_blue = np.array([[0.201, 0.202, 0.200], [0.211, 0.212, 0.210]], np.float32)
    np.testing.assert_array_equal(out[..., 2], expected_blue)


def test_chromatic_vertical_positive_moves_up():
    image = _ramp(3, 2)
    out = chromatic(image, **{**NO_SHIFT, "green_shift": 1, "green_direction": "vertical"})
    # out[i, j] = in[(i + 1) mod 3, j]: row 1 becomes row 0, row 0 wraps to the bottom.
    expected_green = np.array([[0.110, 0.111], [0.120, 0.121], [0.100, 0.101]], np.float32)
    np.testing.assert_array_equal(out[..., 1], expected_green)
    np.testing.assert_array_equal(out[..., [0, 2]], image[..., [0, 2]])


def test_chromatic_vertical_negative_moves_down():
    out = chromatic(_ramp(3, 2), **{**NO_SHIFT, "red_shift": -1, "red_direction": "vertical"})
    expected_red = np.array([[0.020, 0.021], [0.000, 0.001], [0.010, 0.011]], np.float32)
    np.testing.assert_array_equal(out[..., 0], expected_red)


def test_chromatic_shift_larger_than_image_wraps_fully():
    image = _ramp(2, 3)
    # 20 mod 3 = 2 columns right; -20 vertical on 2 rows = 0 rows (20 mod 2 = 0).
    out = chromatic(image, red_shift=20, red_direction="horizontal", green_shift=-20,
                    green_direction="vertical", blue_shift=3, blue_direction="horizontal")
    np.testing.assert_array_equal(out[..., 0], image[:, [1, 2, 0], 0])
    np.testing.assert_array_equal(out[..., 1:], image[..., 1:])


def test_chromatic_matches_np_roll_per_channel():
    image = np.random.default_rng(4).random((5, 8, 3), dtype=np.float32)
    out = chromatic(image, red_shift=-7, red_direction="vertical", green_shift=13,
                    green_direction="horizontal", blue_shift=4, blue_direction="vertical")
    np.testing.assert_array_equal(out[..., 0], np.roll(image[..., 0], 7, axis=0))
    np.testing.assert_array_equal(out[..., 1], np.roll(image[..., 1], 13, axis=1))
    np.testing.assert_array_equal(out[..., 2], np.roll(image[..., 2], -4, axis=0))


@pytest.mark.parametrize("direction", ["horizontal", "vertical"])
def test_chromatic_zero_shift_is_exact_identity(direction):
    image = np.random.default_rng(5).random((4, 6, 3), dtype=np.float32)
    params = {k: (direction if k.endswith("direction") else v) for k, v in NO_SHIFT.items()}
    np.testing.assert_array_equal(chromatic(image, **params), image)


def test_chromatic_one_pixel_wide_image_is_unchanged_horizontally():
    image = np.random.default_rng(6).random((4, 1, 3), dtype=np.float32)
    out = chromatic(image, **{**NO_SHIFT, "red_shift": 5, "blue_shift": -3})
    np.testing.assert_array_equal(out, image)


# --- vignette (§1.5) ---------------------------------------------------------------------------

def test_vignette_3x3_by_hand():
    image = np.full((3, 3, 3), 0.8, np.float32)
    a = 0.6
    out = vignette(image, vignette_strength=a)[..., 0]
    edge = 0.8 * (1 - a / math.sqrt(2))  # rho = 1/sqrt(2) at the edge midpoints
    expected = [[0.8 * (1 - a), edge, 0.8 * (1 - a)], [edge, 0.8, edge], [0.8 * (1 - a), edge, 0.8 * (1 - a)]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_vignette_non_square_uses_hxw_orientation():
    # H=2, W=3: y in {-1, 1}, x in {-1, 0, 1}; every row is an image edge.
    image = np.full((2, 3, 3), 0.5, np.float32)
    out = vignette(image, vignette_strength=1.0)[..., 1]
    corner, middle = 0.5 * 0.0, 0.5 * (1 - 1 / math.sqrt(2))
    np.testing.assert_allclose(out, [[corner, middle, corner]] * 2, atol=1e-7)


def test_vignette_single_pixel_is_a_corner():
    out = vignette(np.full((1, 1, 3), 0.5, np.float32), vignette_strength=0.25)
    np.testing.assert_allclose(out, np.full((1, 1, 3), 0.375), rtol=1e-6)


def test_vignette_one_row_image():
    # H=1: y = -1 everywhere; x = -1, -0.5, 0, 0.5, 1.
    out = vignette(np.ones((1, 5, 3), np.float32), vignette_strength=0.5)[0, :, 2]
    rho = [math.hypot(x, 1) / math.sqrt(2) for x in (-1, -0.5, 0, 0.5, 1)]
    np.testing.assert_allclose(out, [1 - 0.5 * r for r in rho], rtol=1e-6)


def test_vignette_strength_zero_is_exact_identity():
    image = np.random.default_rng(7).random((5, 4, 3), dtype=np.float32)
    np.testing.assert_array_equal(vignette(image, vignette_strength=0.0), image)


def test_vignette_strength_above_one_is_clamped():
    image = np.random.default_rng(8).random((6, 9, 3), dtype=np.float32)
    one = vignette(image, vignette_strength=1.0)
    np.testing.assert_array_equal(vignette(image, vignette_strength=10.0), one)
    np.testing.assert_array_equal(vignette(image, vignette_strength=3.7), one)
    assert not np.array_equal(vignette(image, vignette_strength=0.9), one)


# --- parabolize (§1.6) -------------------------------------------------------------------------

def test_parabolize_by_hand():
    image = np.array([[[0.2, 0.5, 0.9]]], np.float32)
    out = parabolize(image, parabolize_coeff=2.0, vertex_x=0.5, vertex_y=0.1)
    np.testing.assert_allclose(out, [[[2 * 0.09 + 0.1, 0.1, 2 * 0.16 + 0.1]]], rtol=1e-6)


def test_parabolize_fal_defaults_wash_out_to_half_to_three_quarters():
    image = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    out = parabolize(image, parabolize_coeff=1.0, vertex_x=0.5, vertex_y=0.5)
    np.testing.assert_allclose(out, [[[0.75, 0.5, 0.75]]], rtol=1e-6)


def test_parabolize_clips_both_ends():
    image = np.array([[[0.0, 0.45, 1.0]]], np.float32)
    high = parabolize(image, parabolize_coeff=10.0, vertex_x=0.5, vertex_y=0.5)
    np.testing.assert_allclose(high, [[[1.0, 0.525, 1.0]]], rtol=1e-6)
    low = parabolize(np.array([[[0.0, 0.3, 1.0]]], np.float32), parabolize_coeff=-10.0, vertex_x=0.0,
                     vertex_y=1.0)
    np.testing.assert_allclose(low, [[[1.0, 1 - 10 * 0.3 ** 2, 0.0]]], rtol=1e-6)


def test_parabolize_zero_coefficient_is_flat():
    image = np.random.default_rng(9).random((3, 4, 3), dtype=np.float32)
    out = parabolize(image, parabolize_coeff=0.0, vertex_x=0.7, vertex_y=0.3)
    np.testing.assert_allclose(out, 0.3, rtol=1e-7)


# --- tint (§1.7) -------------------------------------------------------------------------------

def test_tint_modes_are_fals_enum_in_order_with_spec_multipliers():
    assert list(TINT_MODES) == FAL_TINT_MODES
    assert TINT_MODES["sepia"] == (1.0, 0.8, 0.6)
    assert TINT_MODES["maroon"] == (0.7, 0.3, 0.5)
    assert TINT_MODES["olive"] == (0.6, 0.7, 0.4)
    assert TINT_MODES["peach"] == TINT_MODES["sepia"]
    assert TINT_MODES["lavender"] == TINT_MODES["purple"]


@pytest.mark.parametrize("mode", FAL_TINT_MODES)
def test_tint_every_mode_full_strength_by_hand(mode):
    image = np.array([[[0.2, 0.6, 1.0], [1.0, 1.0, 1.0]]], np.float32)
    grey = [0.2989 * 0.2 + 0.5870 * 0.6 + 0.1140 * 1.0, 0.9999]
    expected = [[[g * f for f in TINT_MODES[mode]] for g in grey]]
    np.testing.assert_allclose(tint(image, tint_strength=1.0, tint_mode=mode), expected, rtol=1e-6)


def test_tint_partial_strength_blends_with_the_original():
    image = np.array([[[0.2, 0.6, 1.0]]], np.float32)
    grey = 0.2989 * 0.2 + 0.5870 * 0.6 + 0.1140 * 1.0
    s, (fr, fg, fb) = 0.3, TINT_MODES["navy"]
    expected = [[[s * grey * fr + 0.7 * 0.2, s * grey * fg + 0.7 * 0.6, s * grey * fb + 0.7 * 1.0]]]
    np.testing.assert_allclose(tint(image, tint_strength=s, tint_mode="navy"), expected, rtol=1e-6)


def test_tint_distinct_modes_differ_and_aliases_agree():
    image = np.random.default_rng(10).random((4, 5, 3), dtype=np.float32)
    outs = {m: tint(image, tint_strength=0.8, tint_mode=m) for m in FAL_TINT_MODES}
    np.testing.assert_array_equal(outs["peach"], outs["sepia"])
    np.testing.assert_array_equal(outs["lavender"], outs["purple"])
    distinct = [m for m in FAL_TINT_MODES if m not in ("peach", "lavender")]
    for k, a in enumerate(distinct):
        for b in distinct[k + 1:]:
            assert not np.allclose(outs[a], outs[b]), (a, b)


# --- solarize (§1.12) --------------------------------------------------------------------------

def test_solarize_strictly_above_threshold_by_hand():
    image = np.array([[[0.25, 0.5, 0.75], [0.0, 1.0, 0.5000001]]], np.float32)
    out = solarize(image, solarize_threshold=0.5)
    np.testing.assert_array_equal(out, np.array([[[0.25, 0.5, 0.25], [0.0, 0.0, 1 - np.float32(0.5000001)]]],
                                                np.float32))


def test_solarize_compares_in_float32_like_the_node():
    # float32(0.1) > 0.1 in float64, but the node compares float32 tensors: equal, so kept.
    at = np.float32(0.1)
    above = np.nextafter(at, np.float32(1))
    image = np.array([[[at, above, 0.05]]], np.float32)
    out = solarize(image, solarize_threshold=0.1)
    np.testing.assert_array_equal(out, np.array([[[at, np.float32(1) - above, 0.05]]], np.float32))


def test_solarize_threshold_one_is_identity_and_zero_inverts():
    image = np.random.default_rng(11).random((3, 5, 3), dtype=np.float32)
    image[0, 0] = 0.0
    np.testing.assert_array_equal(solarize(image, solarize_threshold=1.0), image)
    inverted = solarize(image, solarize_threshold=0.0)
    np.testing.assert_array_equal(inverted, np.where(image > 0, np.float32(1) - image, image))
    assert np.all(inverted[0, 0] == 0.0)


# --- desaturate (§1.13) ------------------------------------------------------------------------

def test_desaturate_methods_are_fals_strings():
    assert list(DESATURATE_WEIGHTS) == FAL_DESATURATE_METHODS


@pytest.mark.parametrize("method, grey", [
    ("luminance (Rec.709)", 0.2126 * 0.2 + 0.7152 * 0.6 + 0.0722 * 1.0),  # 0.54384
    ("luminance (Rec.601)", 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0),     # 0.526
    ("average", 0.6),
    ("lightness", (1.0 + 0.2) / 2),
])
def test_desaturate_each_method_by_hand(method, grey):
    image = np.array([[[0.2, 0.6, 1.0]]], np.float32)
    np.testing.assert_allclose(desaturate(image, desaturate_factor=1.0, desaturate_method=method),
                               [[[grey] * 3]], rtol=1e-6)
    f = 0.25
    np.testing.assert_allclose(desaturate(image, desaturate_factor=f, desaturate_method=method),
                               [[[(1 - f) * v + f * grey for v in (0.2, 0.6, 1.0)]]], rtol=1e-6)


def test_desaturate_lightness_uses_max_and_min_per_pixel():
    image = np.array([[[0.9, 0.1, 0.4], [0.3, 0.3, 0.8]]], np.float32)
    out = desaturate(image, desaturate_factor=1.0, desaturate_method="lightness")
    np.testing.assert_allclose(out, [[[0.5] * 3, [0.55] * 3]], rtol=1e-6)


@pytest.mark.parametrize("method", FAL_DESATURATE_METHODS)
def test_desaturate_factor_zero_is_exact_identity(method):
    image = np.random.default_rng(12).random((4, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(desaturate(image, desaturate_factor=0.0, desaturate_method=method),
                                  image)


@pytest.mark.parametrize("method", FAL_DESATURATE_METHODS)
def test_desaturate_white_stays_white_and_in_range(method):
    out = desaturate(np.ones((2, 2, 3), np.float32), desaturate_factor=1.0, desaturate_method=method)
    assert out.max() <= 1.0
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


# --- unknown enum values -----------------------------------------------------------------------

def test_unknown_enum_values_are_clear_errors():
    image = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"tint_mode must be one of sepia, red, .*, olive; got 'pink'"):
        tint(image, tint_strength=1.0, tint_mode="pink")
    with pytest.raises(ValueError, match=r"desaturate_method must be one of luminance \(Rec.709\), "
                                         r"luminance \(Rec.601\), average, lightness; got 'luma'"):
        desaturate(image, desaturate_factor=1.0, desaturate_method="luma")
    with pytest.raises(ValueError, match="green_direction must be horizontal or vertical; got 'up'"):
        chromatic(image, **{**NO_SHIFT, "green_direction": "up"})
