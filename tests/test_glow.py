"""Glow effect (docs/decisions.md §1.10): out = clip(x + I * blur(x)), kernel sigma r/3, zero padding."""
import math

import numpy as np
import pytest

from effects.blur import blur
from effects.glow import glow


def _weights(radius):
    """Normalised 1-D weights of the §1.4 kernel with sigma r/3 in normalised coordinates.

    exp(-(i/r)^2 / (2 (r/3)^2)) = exp(-4.5 i^2 / r^4): pixel sigma r^2/3.
    """
    raw = [math.exp(-4.5 * i * i / radius ** 4) for i in range(-radius, radius + 1)]
    return [w / sum(raw) for w in raw]


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 8, 3), (8, 1, 3), (2, 3, 3), (6, 9, 3)])
def test_output_contract_and_input_untouched(shape):
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    before = image.copy()
    out = glow(image, glow_intensity=2.5, glow_radius=5)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape
    assert not np.shares_memory(out, image)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(out >= image)  # additive: never darkens


def test_intensity_zero_is_exact_identity():
    image = np.random.default_rng(2).random((5, 7, 3), dtype=np.float32)
    np.testing.assert_array_equal(glow(image, glow_intensity=0.0, glow_radius=5), image)


def test_single_pixel_by_hand():
    # r=1: weights e^-4.5/(1+2e^-4.5) ~ 0.011 at the edge, as §1.10 notes.
    w_edge, w0, _ = _weights(1)
    assert abs(w_edge - 0.011) < 0.0005
    image = np.array([[[0.4, 0.2, 0.0]]], np.float32)
    expected = image * (1 + 1.5 * w0 * w0)  # only the centre of the 3x3 kernel sees data
    np.testing.assert_allclose(glow(image, glow_intensity=1.5, glow_radius=1), expected, rtol=1e-6)


def test_one_row_by_hand_radius_2():
    w = _weights(2)  # taps at -2..2
    row = [0.1, 0.3, 0.0, 0.2, 0.05]
    image = np.repeat(np.array(row, np.float32)[None, :, None], 3, axis=2)
    blurred = [w[2] * sum(w[k + 2] * row[j + k] for k in range(-2, 3) if 0 <= j + k < 5) for j in range(5)]
    expected = [x + 0.8 * b for x, b in zip(row, blurred)]
    np.testing.assert_allclose(glow(image, glow_intensity=0.8, glow_radius=2)[0, :, 2], expected, rtol=1e-6)


def test_flat_image_interior_and_zero_padded_corner():
    c, intensity = 0.3, 1.0
    w = _weights(1)
    out = glow(np.full((5, 5, 3), c, np.float32), glow_intensity=intensity, glow_radius=1)[..., 0]
    np.testing.assert_allclose(out[2, 2], c * (1 + intensity), rtol=1e-6)
    np.testing.assert_allclose(out[0, 0], c * (1 + intensity * (w[1] + w[2]) ** 2), rtol=1e-6)


def test_bright_image_clips_at_one():
    out = glow(np.full((4, 4, 3), 0.8, np.float32), glow_intensity=1.0, glow_radius=1)
    assert out[1:3, 1:3].min() == 1.0


def test_radius_3_uses_the_blur_kernel_with_sigma_one():
    # r/3 = 1, so the glow's blur is exactly the gaussian blur with r=3, sigma=1.
    image = np.random.default_rng(3).random((7, 10, 3), dtype=np.float32)
    blurred = blur(image, blur_type="gaussian", blur_radius=3, blur_sigma=1.0)
    np.testing.assert_allclose(glow(image, glow_intensity=0.7, glow_radius=3),
                               np.clip(image + 0.7 * blurred, 0, 1), atol=1e-6)


def test_large_radius_pixel_sigma_is_r_squared_over_3():
    # r=6 -> pixel sigma 12 but the kernel stops at +-6, so it is nearly a box:
    # the outermost tap still weighs e^-0.125 ~ 0.88 of the centre tap.
    w = _weights(6)
    assert abs(w[0] / w[6] - math.exp(-0.125)) < 1e-12
    image = np.zeros((1, 13, 3), np.float32)
    image[0, 6] = 1.0
    out = glow(image, glow_intensity=1.0, glow_radius=6)[0, :, 0]
    np.testing.assert_allclose(out[0] / out[5], w[0] / w[5], rtol=1e-5)


def test_matches_torch_conv2d_oracle():
    # The reference node: kernel size k = 2r+1, sigma (k-1)/6 on the
    # linspace(-1, 1) grid, zero-padded depthwise conv2d, clamp(x + I * blur).
    torch = pytest.importorskip("torch")
    image = np.random.default_rng(22).random((19, 27, 3), dtype=np.float32)
    radius, intensity = 5, 0.6
    size = 2 * radius + 1
    sigma = (size - 1) / 6
    t = torch.linspace(-1, 1, size)
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    kernel = torch.exp(-(tx * tx + ty * ty) / (2 * sigma * sigma))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1).unsqueeze(1)
    nchw = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)
    blurred = torch.nn.functional.conv2d(nchw, kernel, padding=radius, groups=3)
    oracle = torch.clamp(nchw + intensity * blurred, 0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(glow(image, glow_intensity=intensity, glow_radius=radius), oracle, atol=1e-6)
