"""Film grain (docs/decisions.md §1.1, §6): statistical parity of ``modern`` with a literal reading of the
reference FilmGrain, determinism, and the contract of our own five styles."""
import itertools

import numpy as np
import pytest

from effects.grain import _FIXED_ONE, _INK, _PAPER, _noise_field, grain

STYLES = ["modern", "analog", "kodak", "fuji", "cinematic", "newspaper"]
GRADIENTS = np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]])


def literal_field(h, w, scale, rs):
    """§1.1 step 1 as written, with numpy's legacy RNG in the reference's call order."""
    noise = np.zeros((h, w))
    for o in range(4):
        s = scale * 2 ** o
        x, y = np.linspace(0, 1, w, endpoint=False), np.linspace(0, 1, h, endpoint=False)
        X, Y = np.meshgrid(x, y)
        X, Y = X * s, Y * s
        xf, yf = X - X.astype(int), Y - Y.astype(int)
        u, v = xf * xf * (3 - 2 * xf), yf * yf * (3 - 2 * yf)

        def corner(dx, dy):
            g = GRADIENTS[rs.randint(0, 4, (h, w)) % 4]
            return g[:, :, 0] * dx + g[:, :, 1] * dy

        n00, n01 = corner(xf, yf), corner(xf, yf - 1)
        n10, n11 = corner(xf - 1, yf), corner(xf - 1, yf - 1)
        x1, x2 = n00 + u * (n10 - n00), n01 + u * (n11 - n01)
        noise += (x1 + v * (x2 - x1)) * 0.5 ** o
    return noise / (1 - 0.5 ** 4)


def literal_added_noise(h, w, scale, intensity, seed):
    """§1.1 steps 2-3: what the reference adds to every channel."""
    n = literal_field(h, w, scale, np.random.RandomState(seed))
    n = (n - n.min()) / (n.max() - n.min())
    return (n * 2 - 1) * intensity


def analytic_variance(h, w, scale):
    """Per-pixel variance of the un-normalised field (without the 1/0.9375): sum over octaves and
    corners of 0.25**o * w_c**2 * (dx_c**2 + dy_c**2), as each gradient component is an independent
    random sign."""
    total = np.zeros((h, w))
    for o in range(4):
        s = scale * 2 ** o
        X, Y = np.meshgrid(np.linspace(0, 1, w, endpoint=False) * s,
                           np.linspace(0, 1, h, endpoint=False) * s)
        xf, yf = X - X.astype(int), Y - Y.astype(int)
        u, v = xf * xf * (3 - 2 * xf), yf * yf * (3 - 2 * yf)
        var = ((1 - u) * (1 - v)) ** 2 * (xf ** 2 + yf ** 2) \
            + (u * (1 - v)) ** 2 * ((xf - 1) ** 2 + yf ** 2) \
            + ((1 - u) * v) ** 2 * (xf ** 2 + (yf - 1) ** 2) \
            + (u * v) ** 2 * ((xf - 1) ** 2 + (yf - 1) ** 2)
        total += 0.25 ** o * var
    return total


def _run(image, style, intensity=0.4, scale=10.0, seed=0):
    return grain(image, grain_intensity=intensity, grain_scale=scale, grain_style=style,
                 rng=np.random.default_rng(seed))


def _photo_like(shape=(48, 64, 3), seed=0):
    """A smooth colourful gradient image with some texture, values well inside (0, 1)."""
    h, w, _ = shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rgb = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.8 - 0.5 * x * y], axis=2)
    rgb += np.random.default_rng(seed).normal(0, 0.02, rgb.shape)
    return np.clip(rgb, 0, 1).astype(np.float32)


# --- contract -----------------------------------------------------------------------------------

@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (7, 1, 3), (2, 3, 3), (40, 57, 3)])
def test_output_contract_and_input_untouched(style, shape):
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    before = image.copy()
    out = _run(image, style, intensity=0.9, scale=37.5)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape and out.flags.c_contiguous
    assert not np.shares_memory(out, image)
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("style", STYLES)
def test_intensity_zero_is_exact_identity(style):
    image = _photo_like()
    np.testing.assert_array_equal(_run(image, style, intensity=0.0), image)


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_output_different_seed_different_output(style):
    image = _photo_like()
    a, b, c = _run(image, style, seed=5), _run(image, style, seed=5), _run(image, style, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_styles_all_differ_from_each_other():
    image = _photo_like()
    outs = {style: _run(image, style) for style in STYLES}
    for a, b in itertools.combinations(STYLES, 2):
        assert np.abs(outs[a] - outs[b]).mean() > 0.01, (a, b)


def test_scale_changes_the_result():
    image = np.full((32, 48, 3), 0.5, np.float32)
    assert not np.array_equal(_run(image, "modern", scale=10.0), _run(image, "modern", scale=11.0))


def test_one_pixel_image_has_no_grain_instead_of_nan():
    # A 1x1 field is constant, so min-max normalisation is 0/0 in the reference.
    image = np.array([[[0.2, 0.5, 0.7]]], np.float32)
    np.testing.assert_array_equal(_run(image, "modern", intensity=1.0), image)


# --- modern = the reference, statistically --------------------------------------------------------

def test_modern_is_monochrome_and_spans_exactly_plus_minus_intensity():
    grey = np.full((40, 50, 3), 0.5, np.float32)
    out = _run(grey, "modern", intensity=0.3, scale=7.0)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    added = out[..., 0] - 0.5
    np.testing.assert_allclose([added.min(), added.max()], [-0.3, 0.3], atol=1e-6)


def test_modern_adds_the_same_grain_to_each_channel_of_a_colour_image():
    image = _photo_like()
    added = _run(image, "modern", intensity=0.1) - image
    inside = np.all((image > 0.1) & (image < 0.9), axis=2)  # no clipping there
    np.testing.assert_allclose(added[inside][:, 0], added[inside][:, 1], atol=1e-6)
    np.testing.assert_allclose(added[inside][:, 0], added[inside][:, 2], atol=1e-6)


def test_modern_added_noise_distribution_matches_the_literal_reference():
    h, w, scale, intensity, runs = 64, 80, 10.0, 0.5, 8
    grey = np.full((h, w, 3), 0.5, np.float32)
    ours = [(_run(grey, "modern", intensity, scale, seed=s) - 0.5)[..., 0].astype(np.float64)
            for s in range(runs)]
    refs = [literal_added_noise(h, w, scale, intensity, seed) for seed in range(runs)]

    # Per-run mean and spread vary with the extremes that set the normalisation; compare their
    # averages over runs (run-to-run sd of the std is ~0.01, of the mean ~0.04).
    assert abs(np.mean([a.std() for a in ours]) - np.mean([a.std() for a in refs])) < 0.015
    assert abs(np.mean([a.mean() for a in ours]) - np.mean([a.mean() for a in refs])) < 0.05
    # Pooled histograms over [-I, I]: as close as two halves of the reference are to each other.
    bins = np.linspace(-intensity, intensity, 41)
    hist = lambda arrays: np.histogram(np.concatenate([a.ravel() for a in arrays]), bins)[0] / (
        len(arrays) * h * w)
    ref_vs_ref = np.abs(hist(refs[:4]) - hist(refs[4:])).sum()
    ours_vs_ref = np.abs(hist(ours) - hist(refs)).sum()
    assert ours_vs_ref < max(1.5 * ref_vs_ref, 0.06), (ours_vs_ref, ref_vs_ref)
    # Kurtosis of the standardised noise: a sum of 32 weighted random signs is lighter-tailed than
    # a gaussian (kurtosis 3); ours must agree with the reference.
    kurt = lambda arrays: np.mean([(((a - a.mean()) / a.std()) ** 4).mean() for a in arrays])
    assert abs(kurt(ours) - kurt(refs)) < 0.1


def test_modern_per_pixel_variance_follows_the_reference_cell_pattern():
    # grain_scale shapes a periodic amplitude pattern; estimate each pixel's variance over many
    # draws and compare it with the reference's exact per-pixel variance.
    h, w, scale, draws = 24, 40, 3.0, 300
    fields = np.stack([_noise_field(h, w, scale, np.random.default_rng(k)) for k in range(draws)])
    variance = np.var(fields / _FIXED_ONE, axis=0)
    expected = analytic_variance(h, w, scale)
    assert abs(variance.mean() / expected.mean() - 1) < 0.02
    assert np.corrcoef(variance.ravel(), expected.ravel())[0, 1] > 0.93
    # The pattern is strong: the quietest pixels (at lattice points) are far below the loudest.
    assert expected.min() < 0.3 * expected.max()


# --- our styles (§6) --------------------------------------------------------------------------------

def test_kodak_is_warm_and_fuji_is_cool():
    grey = np.full((48, 64, 3), 0.5, np.float32)
    warmth = lambda out: float(np.mean(out[..., 0] - out[..., 2]))
    assert warmth(_run(grey, "kodak", intensity=0.5)) > 0.05
    assert warmth(_run(grey, "fuji", intensity=0.5)) < -0.03
    assert np.mean(_run(grey, "fuji", intensity=0.5)[..., 1] - 0.5) > 0.01  # and greener


def test_analog_grain_is_softer_and_weighted_to_midtones():
    h, w = 64, 64
    mid, dark = np.full((h, w, 3), 0.5, np.float32), np.full((h, w, 3), 0.05, np.float32)
    mid_noise = _run(mid, "analog", intensity=0.3)[..., 0] - 0.5
    dark_noise = _run(dark, "analog", intensity=0.3)[..., 0] - 0.05
    assert dark_noise.std() < 0.5 * mid_noise.std()
    # Blurred: neighbouring pixels correlate, unlike the near-white modern grain.
    corr = lambda a: np.corrcoef(a[:, 1:].ravel(), a[:, :-1].ravel())[0, 1]
    modern_noise = _run(mid, "modern", intensity=0.3)[..., 0] - 0.5
    assert corr(mid_noise) > 0.3 and abs(corr(modern_noise)) < 0.1


def test_cinematic_grain_is_finer_than_modern():
    grey = np.full((48, 64, 3), 0.5, np.float32)  # luma 0.5: the S-curve is flat there
    cinematic = _run(grey, "cinematic", intensity=0.4)[..., 0] - 0.5
    modern = _run(grey, "modern", intensity=0.4)[..., 0] - 0.5
    np.testing.assert_allclose(cinematic, 0.5 * modern, atol=1e-6)


@pytest.mark.parametrize("level", [0.25, 0.75])
def test_cinematic_adds_a_smoothstep_contrast_curve_on_luma(level):
    # Same seed, so the noise is the same: cinematic = x + 0.5 I n + 0.6 I (smoothstep(L) - L).
    grey = np.full((16, 16, 3), level, np.float32)
    noise = (_run(grey, "modern", intensity=0.2) - level) / 0.2
    curve = level * level * (3 - 2 * level) - level  # -0.09375 at 0.25, +0.09375 at 0.75
    expected = level + 0.5 * 0.2 * noise + 0.6 * 0.2 * curve
    np.testing.assert_allclose(_run(grey, "cinematic", intensity=0.2), expected, atol=1e-5)


def test_newspaper_is_two_tone_monochrome_print_from_intensity_half():
    image = _photo_like((60, 80, 3))
    out = _run(image, "newspaper", intensity=0.5)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert set(np.unique(out)) == {_INK, _INK + (_PAPER - _INK)}
    np.testing.assert_allclose([_INK, _PAPER], [0.1, 0.93])
    # Darker regions get more ink.
    ink = lambda v: (_run(np.full((60, 80, 3), v, np.float32), "newspaper", intensity=1.0) == _INK).mean()
    assert ink(0.3) > ink(0.7) + 0.3


def test_unknown_style_is_a_clear_error():
    with pytest.raises(ValueError, match="grain_style must be one of modern, analog, kodak, fuji, "
                                         "cinematic, newspaper; got 'sepia'"):
        _run(np.zeros((2, 2, 3), np.float32), "sepia")
