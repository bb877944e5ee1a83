"""Dodge & burn (docs/decisions.md §1.9) with the image as its own mask (docs/decisions.md (c))."""
import numpy as np
import pytest

from effects import dodge_burn as dodge_burn_module
from effects.dodge_burn import dodge_burn

MODES = ["dodge", "color_dodge", "linear_dodge", "burn", "color_burn", "linear_burn",
         "dodge_and_burn", "burn_and_dodge"]
EPS = 1e-7


def _row(values):
    return np.repeat(np.array(values, np.float32)[None, :, None], 3, axis=2)


def _run(image, mode, intensity):
    return dodge_burn(image, dodge_burn_intensity=intensity, dodge_burn_mode=mode)


def _clip(v):
    return min(max(v, 0.0), 1.0)


# Hand formulas of §1.9 with m = x (self-mask), unclipped like the node.
def _dodge(x, m, i):
    return x / (1 - m * i + EPS)


def _burn(x, m, i):
    return 1 - (1 - x) / (m * i + EPS)


HAND = {
    "dodge": lambda x, i: _dodge(x, x, i),
    "color_dodge": lambda x, i: x / (1 - x * i) if x < 1 else x,
    "linear_dodge": lambda x, i: x + x * i,
    "burn": lambda x, i: _burn(x, x, i),
    "color_burn": lambda x, i: 1 - (1 - x) / (x * i) if x > 0 else x,
    "linear_burn": lambda x, i: x - x * i,
    "dodge_and_burn": lambda x, i: _burn(_dodge(x, x, i), x, i),
    "burn_and_dodge": lambda x, i: _dodge(_burn(x, x, i), x, i),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 5, 3), (2, 3, 3), (6, 4, 3)])
def test_output_contract_and_input_untouched(mode, shape):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    before = image.copy()
    out = _run(image, mode, 0.5)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape
    assert not np.shares_memory(out, image)
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("intensity", [0.1, 0.5, 1.0])
def test_every_mode_matches_hand_formula(mode, intensity):
    values = [0.0, 0.2, 0.5, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0]
    expected = [_clip(HAND[mode](x, intensity)) for x in values]
    out = _run(_row(values), mode, intensity)
    np.testing.assert_allclose(out[0, :, 0], expected, atol=2e-5)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_worked_values_at_intensity_half():
    x = _row([0.2, 0.5, 0.8])
    np.testing.assert_allclose(_run(x, "dodge", 0.5)[0, :, 0], [0.2 / 0.9, 0.5 / 0.75, 1.0], rtol=1e-6)
    np.testing.assert_allclose(_run(x, "linear_dodge", 0.5)[0, :, 0], [0.3, 0.75, 1.0], rtol=1e-6)
    np.testing.assert_allclose(_run(x, "burn", 0.5)[0, :, 0], [0.0, 0.0, 0.5], atol=1e-6)  # 1-0.2/0.4
    np.testing.assert_allclose(_run(x, "linear_burn", 0.5)[0, :, 0], [0.1, 0.25, 0.4], rtol=1e-6)


def test_combined_modes_by_hand():
    # I = 0.1: dodge(0.9) = 0.9/0.91 = 0.98901, then burn -> 0.87790;
    # dodge(0.85) = 0.92896, then burn -> 0.16426.
    out = _run(_row([0.9, 0.85]), "dodge_and_burn", 0.1)[0, :, 0]
    np.testing.assert_allclose(out, [1 - (1 - 0.9 / 0.91) / 0.09, 1 - (1 - 0.85 / 0.915) / 0.085], atol=2e-5)
    # burn(0.95) = 0.47368, dodge of it = 0.52341.
    out = _run(_row([0.95]), "burn_and_dodge", 0.1)[0, 0, 0]
    np.testing.assert_allclose(out, (1 - 0.05 / 0.095) / (1 - 0.095), atol=2e-5)


@pytest.mark.parametrize("mode", ["color_dodge", "linear_dodge", "linear_burn"])
def test_intensity_zero_is_exact_identity(mode):
    image = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(_run(image, mode, 0.0), image)


def test_dodge_intensity_zero_only_divides_by_one_plus_eps():
    image = np.random.default_rng(2).random((4, 5, 3), dtype=np.float32)
    out = _run(image, "dodge", 0.0)
    np.testing.assert_allclose(out, image, rtol=2.5e-7, atol=0)
    assert np.all(out <= image)


def test_burn_intensity_zero_blackens_all_but_white():
    out = _run(_row([0.0, 0.5, 0.999, 1.0]), "burn", 0.0)[0, :, 0]
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 1.0])


def test_color_burn_intensity_zero_nan_becomes_black():
    # m > 0: x < 1 gives -inf, x = 1 gives 0/0 = NaN; both end as 0. x = 0 keeps x.
    out = _run(_row([0.0, 0.3, 1.0]), "color_burn", 0.0)
    np.testing.assert_array_equal(out, np.zeros_like(out))
    white = _run(np.ones((3, 4, 3), np.float32), "color_burn", 0.0)
    np.testing.assert_array_equal(white, np.zeros_like(white))


def test_color_modes_keep_x_where_mask_is_at_the_limit():
    # color_dodge keeps x where m = 1 (no division by 1 - I = 0 at I = 1);
    # color_burn keeps x where m = 0.
    np.testing.assert_array_equal(_run(_row([1.0]), "color_dodge", 1.0), _row([1.0]))
    np.testing.assert_array_equal(_run(_row([0.0]), "color_burn", 1.0), _row([0.0]))


def test_mask_source_is_the_image_and_pluggable(monkeypatch):
    image = _row([0.2, 0.6])
    assert dodge_burn_module.mask(image) is image
    # Swapping the strategy to a constant mask of 1 changes the maths accordingly.
    monkeypatch.setattr(dodge_burn_module, "mask", lambda img: np.ones_like(img))
    np.testing.assert_allclose(_run(image, "linear_dodge", 0.25)[0, :, 0], [0.45, 0.85], rtol=1e-6)


def test_channels_are_independent():
    image = np.array([[[0.2, 0.5, 0.8]]], np.float32)
    out = _run(image, "linear_burn", 0.5)
    np.testing.assert_allclose(out[0, 0], [0.1, 0.25, 0.4], rtol=1e-6)
