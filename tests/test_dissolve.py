"""Dissolve (docs/decisions.md §1.8, docs/decisions.md (d)): per-element dither, keep image where U < factor."""
import numpy as np
import pytest

from effects.dissolve import _uniform_below, dissolve


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    # Disjoint value ranges tell the sources apart element by element.
    return (rng.random(shape, dtype=np.float32) * 0.4, 0.6 + rng.random(shape, dtype=np.float32) * 0.4)


def _run(image, other, factor, seed=1):
    return dissolve(image, dissolve_factor=factor, other=other, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (9, 1, 3), (2, 3, 3), (7, 5, 3)])
def test_output_contract_and_inputs_untouched(shape):
    image, other = _pair(shape)
    before, other_before = image.copy(), other.copy()
    out = _run(image, other, 0.5)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(other, other_before)
    assert out.dtype == np.float32 and out.shape == shape
    assert not np.shares_memory(out, image) and not np.shares_memory(out, other)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_factor_one_returns_image_and_zero_returns_other():
    image, other = _pair((6, 8, 3))
    np.testing.assert_array_equal(_run(image, other, 1.0), image)
    np.testing.assert_array_equal(_run(image, other, 0.0), other)


def test_each_element_comes_from_u_below_factor():
    image, other = _pair((5, 6, 3))
    u = np.random.default_rng(1).random(image.shape, dtype=np.float32)
    np.testing.assert_array_equal(_run(image, other, 0.3, seed=1), np.where(u < 0.3, image, other))


def test_same_seed_same_output_other_seed_differs():
    image, other = _pair((16, 16, 3))
    np.testing.assert_array_equal(_run(image, other, 0.5, seed=42), _run(image, other, 0.5, seed=42))
    assert not np.array_equal(_run(image, other, 0.5, seed=42), _run(image, other, 0.5, seed=43))


@pytest.mark.parametrize("factor", [0.1, 0.5, 0.85])
def test_keep_fraction_is_factor_and_channels_are_independent(factor):
    image, other = _pair((256, 256, 3))
    kept = _run(image, other, factor, seed=7) < 0.5  # image values are < 0.4, other's > 0.6
    # 196608 draws: the binomial standard deviation is below 0.0012.
    assert abs(kept.mean() - factor) < 0.006
    # Per-channel draws: a pixel mixes sources with probability 1 - p^3 - (1-p)^3.
    mixed = kept.any(axis=2) & ~kept.all(axis=2)
    assert abs(mixed.mean() - (1 - factor ** 3 - (1 - factor) ** 3)) < 0.01


def test_non_contiguous_other_is_accepted():
    image, other = _pair((6, 8, 3))
    flipped = other[::-1]
    u = np.random.default_rng(1).random(image.shape, dtype=np.float32)
    np.testing.assert_array_equal(_run(image, flipped, 0.5), np.where(u < 0.5, image, flipped))


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (4, 6, 3)])  # odd and even counts
@pytest.mark.parametrize("factor", [0.0, 1e-9, 0.37, 0.5, np.float64(1 / 3), np.float32(0.77),
                                    0.99999999, 1.0])
@pytest.mark.parametrize("half_word_held", [False, True])
def test_raw_word_comparison_equals_numpy_floats_and_leaves_the_same_state(shape, factor,
                                                                           half_word_held):
    ours, numpys = np.random.default_rng(3), np.random.default_rng(3)
    if half_word_held:  # numpy holds the high half of a word: the fallback path
        ours.random(1, dtype=np.float32), numpys.random(1, dtype=np.float32)
    expected = numpys.random(shape, dtype=np.float32) < factor
    np.testing.assert_array_equal(_uniform_below(ours, shape, factor), expected)
    assert ours.bit_generator.state == numpys.bit_generator.state
    np.testing.assert_array_equal(ours.random(3, dtype=np.float32), numpys.random(3, dtype=np.float32))


def test_other_bit_generators_draw_as_numpy_does():
    ours, numpys = (np.random.Generator(np.random.MT19937(5)) for _ in range(2))
    np.testing.assert_array_equal(_uniform_below(ours, (3, 5, 3), 0.4),
                                  numpys.random((3, 5, 3), dtype=np.float32) < 0.4)
