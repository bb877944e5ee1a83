"""Sharpen effect (docs/decisions.md §1.11): basic box-Laplacian, smart (bilateral + PIL Sharpness), CAS."""
import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from effects.sharpen import sharpen

DEFAULTS = dict(sharpen_radius=1, sharpen_alpha=1.0, noise_radius=7, preserve_edges=0.75,
                smart_sharpen_strength=5.0, smart_sharpen_ratio=0.5, cas_amount=0.8)


def _sharpen(image, mode, **overrides):
    return sharpen(image, sharpen_mode=mode, **{**DEFAULTS, **overrides})


def _random(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _gray_row(values):
    return np.repeat(np.array(values, np.float32)[None, :, None], 3, axis=2)


@pytest.mark.parametrize("mode", ["basic", "smart", "cas"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 6, 3), (6, 1, 3), (2, 3, 3), (5, 5, 3), (8, 11, 3)])
def test_output_contract_and_input_untouched(mode, shape):
    image = _random(shape, seed=len(mode))
    before = image.copy()
    out = _sharpen(image, mode)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape
    assert not np.shares_memory(out, image)
    assert out.min() >= 0.0 and out.max() <= 1.0


# ---------------------------------------------------------------- basic

@pytest.mark.parametrize("row, alpha", [([0.5, 0.55, 0.6, 0.2], 0.1), ([0.0, 0.9, 0.0, 0.3], 0.2)])
def test_basic_one_row_by_hand(row, alpha):
    # r=1, K=3: out = clip(alpha * (10 x - S)), S = 3x3 window sum; only the
    # centre row exists, so S = x[j-1] + x[j] + x[j+1] with zeros outside.
    # Row 1 -> 0.395, 0.385, 0.465, 0.12; row 2 -> clip(-0.18, 1.62, -0.24, 0.54).
    s = [row[0] + row[1], row[0] + row[1] + row[2], row[1] + row[2] + row[3], row[2] + row[3]]
    expected = [min(max(alpha * (10 * x - t), 0.0), 1.0) for x, t in zip(row, s)]
    out = _sharpen(_gray_row(row), "basic", sharpen_alpha=alpha)[0, :, 0]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_basic_flat_image_scales_by_alpha_and_brightens_borders():
    c, alpha = 0.6, 0.5
    out = _sharpen(np.full((5, 5, 3), c, np.float32), "basic", sharpen_alpha=alpha)[..., 0]
    np.testing.assert_allclose(out[1:4, 1:4], alpha * c, rtol=1e-6)   # (K²+1)c - K²c = c
    np.testing.assert_allclose(out[0, 2], min(alpha * (10 * c - 6 * c), 1), rtol=1e-6)  # 0.5*2.4 -> 1
    np.testing.assert_allclose(out[0, 0], min(alpha * (10 * c - 4 * c), 1), rtol=1e-6)
    low = _sharpen(np.full((5, 5, 3), 0.1, np.float32), "basic", sharpen_alpha=1.0)[..., 0]
    np.testing.assert_allclose([low[2, 2], low[0, 2], low[0, 0]], [0.1, 0.4, 0.6], rtol=1e-5)


def test_basic_radius_2_centre_pixel_by_hand():
    image = _random((5, 5, 3), seed=4) * 0.2 + 0.4
    out = _sharpen(image, "basic", sharpen_radius=2, sharpen_alpha=1.0)
    # K=5: the centre pixel sees the whole image; 26 x - S.
    expected = np.clip(26 * image[2, 2].astype(np.float64) - image.sum(axis=(0, 1), dtype=np.float64), 0, 1)
    np.testing.assert_allclose(out[2, 2], expected, atol=2e-6)


def test_basic_matches_literal_node_kernel_convolution():
    image = _random((6, 7, 3), seed=5)
    radius, alpha = 2, 1.3
    size = 2 * radius + 1
    kernel = -alpha * np.ones((size, size))
    kernel[radius, radius] = alpha * size * size
    padded = np.pad(image.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)))
    conv = sum(kernel[dy, dx] * padded[dy:dy + 6, dx:dx + 7] for dy in range(size) for dx in range(size))
    np.testing.assert_allclose(_sharpen(image, "basic", sharpen_radius=radius, sharpen_alpha=alpha),
                               np.clip(conv, 0, 1), atol=1e-5)


# ---------------------------------------------------------------- smart

def test_installed_opencv_bilateral_with_zero_sigma_color_is_identity():
    # The documented preserve_edges=0 behaviour relies on this (OpenCV >= 4.14).
    image = _random((9, 9, 3), seed=6)
    np.testing.assert_array_equal(cv2.bilateralFilter(image, 7, 0.0, 1.4), image)


@pytest.mark.parametrize("noise_radius, preserve_edges, sigma_color, sigma_space", [
    (7, 0.75, 0.25, 1.4),     # the defaults quoted in §1.11
    (4, 0.3, 0.7, 0.95),      # 0.3 * ((4-1)*0.5 - 1) + 0.8
    (2, 1.0, 0.05, 0.65),     # 1 - 1 = 0 is floored at 0.05
    (25, 0.5, 0.5, 4.1),
])
def test_smart_denoise_parameter_mapping(noise_radius, preserve_edges, sigma_color, sigma_space):
    image = _random((12, 10, 3), seed=noise_radius)
    # ratio 0 keeps only the bilateral branch.
    out = _sharpen(image, "smart", noise_radius=noise_radius, preserve_edges=preserve_edges,
                   smart_sharpen_ratio=0.0)
    expected = np.clip(cv2.bilateralFilter(image, noise_radius, sigma_color, sigma_space), 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert not np.array_equal(out, image)  # the bilateral branch really ran


@pytest.mark.parametrize("noise_radius, preserve_edges", [(1, 0.75), (7, 0.0)])
def test_smart_without_denoise_or_sharpening_is_identity(noise_radius, preserve_edges):
    image = _random((6, 8, 3), seed=8)
    out = _sharpen(image, "smart", noise_radius=noise_radius, preserve_edges=preserve_edges,
                   smart_sharpen_strength=0.0, smart_sharpen_ratio=0.3)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_smart_strength_one_is_identity():
    image = _random((6, 8, 3), seed=9)
    out = _sharpen(image, "smart", noise_radius=1, smart_sharpen_strength=1.0, smart_sharpen_ratio=1.0)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_smart_sharpness_centre_pixel_by_hand():
    # D = (sum of 3x3 + 4 x_c) / 13; sharpened = clip(D + f (x - D)).
    image = np.full((3, 3, 3), 0.5, np.float32)
    image[1, 1] = 0.6
    d = (8 * 0.5 + 5 * 0.6) / 13
    for f, ratio in [(2.0, 1.0), (0.5, 1.0), (3.0, 0.25)]:
        sharp = min(max(d + f * (0.6 - d), 0), 1)
        out = _sharpen(image, "smart", noise_radius=1, smart_sharpen_strength=f, smart_sharpen_ratio=ratio)
        np.testing.assert_allclose(out[1, 1], ratio * sharp + (1 - ratio) * 0.6, atol=1e-6)
        # The 1-px border keeps x (the blend then mixes x with x).
        np.testing.assert_allclose(out[0], image[0], atol=1e-7)
        np.testing.assert_allclose(out[:, 0], image[:, 0], atol=1e-7)


@pytest.mark.parametrize("factor", [0.5, 2.0, 5.0])
def test_smart_sharpening_matches_pillow_sharpness(factor):
    rng = np.random.default_rng(int(factor * 10))
    pixels = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    image = pixels.astype(np.float32) / 255
    pil = np.asarray(ImageEnhance.Sharpness(Image.fromarray(pixels)).enhance(factor), np.float32) / 255
    out = _sharpen(image, "smart", noise_radius=1, smart_sharpen_strength=factor, smart_sharpen_ratio=1.0)
    # Pillow rounds its smoothed image and the blend to uint8; that rounding,
    # amplified by |1 - f|, is the whole difference.
    tolerance = (0.5 * abs(1 - factor) + 0.5) / 255 + 1e-6
    assert np.abs(out - pil).max() <= tolerance
    np.testing.assert_array_equal(out[[0, -1]], image[[0, -1]])        # border copied, as in PIL
    np.testing.assert_array_equal(out[:, [0, -1]], image[:, [0, -1]])


def test_smart_sharpens_the_original_not_the_denoised_image():
    image = _random((10, 10, 3), seed=11)
    sharp_only = _sharpen(image, "smart", noise_radius=1, smart_sharpen_ratio=1.0)
    with_denoise = _sharpen(image, "smart", noise_radius=9, smart_sharpen_ratio=1.0)
    np.testing.assert_array_equal(sharp_only, with_denoise)


# ---------------------------------------------------------------- cas

def _cas_by_hand(n, amount):
    """§1.11 for the centre of a 3x3 neighbourhood n (list of rows a b c / d e f / g h i)."""
    (a, b, c), (d, e, f), (g, h, i) = n
    mn = min(b, d, e, f, h) + min(a, c, g, i)
    mx = max(b, d, e, f, h) + max(a, c, g, i)
    amp = math.sqrt(min(mn, 2 - mx) / (mx + 1e-5))
    w = -amp * (0.125 + 0.075 * amount)
    return min(max(((b + d + f + h) * w + e) / (1 + 4 * w), 0), 1)


@pytest.mark.parametrize("amount", [0.0, 0.8, 1.0])
def test_cas_3x3_by_hand_with_border_passthrough(amount):
    n = [[0.2, 0.4, 0.3], [0.5, 0.7, 0.45], [0.35, 0.6, 0.25]]
    image = np.repeat(np.array(n, np.float32)[..., None], 3, axis=2)
    out = _sharpen(image, "cas", cas_amount=amount)
    np.testing.assert_allclose(out[1, 1], _cas_by_hand(n, amount), atol=1e-6)
    border = np.ones((3, 3), bool)
    border[1, 1] = False
    np.testing.assert_array_equal(out[border], image[border])


def test_cas_bright_neighbourhood_uses_two_minus_max():
    # mx > 1 here, so min(mn, 2 - mx) picks 2 - mx.
    n = [[0.9, 0.95, 0.9], [0.95, 0.6, 0.95], [0.9, 0.95, 0.9]]
    image = np.repeat(np.array(n, np.float32)[..., None], 3, axis=2)
    np.testing.assert_allclose(_sharpen(image, "cas")[1, 1], _cas_by_hand(n, 0.8), atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 9, 3), (9, 1, 3), (2, 5, 3)])
def test_cas_thin_images_are_all_border_and_unchanged(shape):
    image = _random(shape, seed=12)
    np.testing.assert_array_equal(_sharpen(image, "cas"), image)


def test_cas_matches_vectorised_reading_of_the_formula():
    image = _random((7, 9, 3), seed=13).astype(np.float64)
    p = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, e, f = p[1:-1, :-2], p[1:-1, 1:-1], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    mn = np.minimum.reduce([b, d, e, f, h]) + np.minimum.reduce([a, c, g, i])
    mx = np.maximum.reduce([b, d, e, f, h]) + np.maximum.reduce([a, c, g, i])
    w = -np.sqrt(np.minimum(mn, 2 - mx) / (mx + 1e-5)) * (0.125 + 0.075 * 0.3)
    expected = np.clip(((b + d + f + h) * w + e) / (1 + 4 * w), 0, 1)
    np.testing.assert_allclose(_sharpen(image.astype(np.float32), "cas", cas_amount=0.3), expected, atol=2e-6)


def test_cas_flat_image_is_unchanged():
    out = _sharpen(np.full((6, 6, 3), 0.4, np.float32), "cas")
    np.testing.assert_allclose(out, 0.4, atol=1e-6)


# ---------------------------------------------------------------- torch oracles of the node maths

def _nchw(torch, image):
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)


def test_basic_matches_torch_conv2d_oracle():
    torch = pytest.importorskip("torch")
    image = _random((17, 21, 3), seed=31)
    radius, alpha = 3, 0.7
    size = 2 * radius + 1
    kernel = -torch.ones(size, size)
    kernel[radius, radius] = size * size
    kernel = (kernel * alpha).repeat(3, 1, 1).unsqueeze(1)
    conv = torch.nn.functional.conv2d(_nchw(torch, image), kernel, padding=radius, groups=3)
    oracle = torch.clamp(conv, 0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(_sharpen(image, "basic", sharpen_radius=radius, sharpen_alpha=alpha), oracle,
                               atol=5e-6)


def test_cas_matches_torch_oracle():
    torch = pytest.importorskip("torch")
    image = _random((15, 18, 3), seed=32)
    amount = 0.65
    p = torch.nn.functional.pad(_nchw(torch, image), (1, 1, 1, 1))
    a, b, c = p[..., :-2, :-2], p[..., :-2, 1:-1], p[..., :-2, 2:]
    d, e, f = p[..., 1:-1, :-2], p[..., 1:-1, 1:-1], p[..., 1:-1, 2:]
    g, h, i = p[..., 2:, :-2], p[..., 2:, 1:-1], p[..., 2:, 2:]
    # min_/max_ of the reference: clamp the min at >= 0 and the max at <= 1.
    mn = torch.stack([b, d, e, f, h]).amin(0).clamp(min=0) + torch.stack([a, c, g, i]).amin(0).clamp(min=0)
    mx = torch.stack([b, d, e, f, h]).amax(0).clamp(max=1) + torch.stack([a, c, g, i]).amax(0).clamp(max=1)
    amp = torch.sqrt(torch.minimum(mn, 2 - mx) / (mx + 1e-5))
    w = -amp * (amount * (1 / 5 - 1 / 8) + 1 / 8)
    oracle = (((b + d + f + h) * w + e) / (1 + 4 * w)).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(_sharpen(image, "cas", cas_amount=amount), oracle, atol=1e-6)


def test_smart_strength_zero_skips_sharpening_instead_of_smoothing():
    # PIL's Sharpness(0) would return the SMOOTH image; the node skips f = 0.
    image = _random((6, 8, 3), seed=33)
    out = _sharpen(image, "smart", noise_radius=1, smart_sharpen_strength=0.0, smart_sharpen_ratio=1.0)
    np.testing.assert_array_equal(out, image)
