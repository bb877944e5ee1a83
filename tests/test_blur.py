"""Blur effect (docs/decisions.md §1.4): gaussian with zero padding, Kuwahara with the node's quirks."""
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from effects._filters import normalized_gaussian_kernel
from effects.blur import blur


def _gauss(image, radius, sigma=1.0):
    return blur(image, blur_type="gaussian", blur_radius=radius, blur_sigma=sigma)


def _kuwahara(image, radius):
    return blur(image, blur_type="kuwahara", blur_radius=radius, blur_sigma=1.0)


def _random(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _levels(shape, seed=0):
    """Decoded-image-like input: exact k/255 values."""
    return (np.random.default_rng(seed).integers(0, 256, shape) / 255).astype(np.float32)


# ---------------------------------------------------------------- contract

@pytest.mark.parametrize("blur_type", ["gaussian", "kuwahara"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (6, 1, 3), (2, 3, 3), (5, 5, 3), (9, 13, 3)])
def test_output_contract_and_input_untouched(blur_type, shape):
    image = _random(shape)
    before = image.copy()
    out = blur(image, blur_type=blur_type, blur_radius=3, blur_sigma=0.8)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.float32 and out.shape == shape
    assert not np.shares_memory(out, image)
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("blur_type", ["gaussian", "kuwahara"])
def test_radius_zero_is_exact_identity_without_quantisation(blur_type):
    image = _random((4, 5, 3))  # not on 1/255 levels: kuwahara r=0 must not quantise
    out = blur(image, blur_type=blur_type, blur_radius=0, blur_sigma=1.0)
    np.testing.assert_array_equal(out, image)
    assert out is not image


# ---------------------------------------------------------------- gaussian

def test_kernel_uses_normalised_coordinates():
    # r=1, sigma=1: taps at t=-1,0,1 -> weights e^-0.5, 1, e^-0.5, normalised.
    e = math.exp(-0.5)
    np.testing.assert_allclose(normalized_gaussian_kernel(1, 1.0), [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)],
                               rtol=1e-6)
    # r=2, sigma=0.5: taps at t=-1,-0.5,0,0.5,1 -> exp(-2 t^2).
    raw = np.exp(-2 * np.array([1, 0.25, 0, 0.25, 1]))
    np.testing.assert_allclose(normalized_gaussian_kernel(2, 0.5), raw / raw.sum(), rtol=1e-6)
    assert normalized_gaussian_kernel(5, 2.0).dtype == np.float32


def test_gaussian_single_pixel_keeps_only_centre_weight():
    # Zero padding: a 1x1 image keeps centre weight w0^2 of the 3x3 kernel.
    e = math.exp(-0.5)
    w0 = 1 / (1 + 2 * e)
    image = np.array([[[0.9, 0.5, 0.1]]], dtype=np.float32)
    np.testing.assert_allclose(_gauss(image, 1), image * w0 * w0, rtol=1e-6)


def test_gaussian_one_row_by_hand():
    e = math.exp(-0.5)
    w0, w1 = 1 / (1 + 2 * e), e / (1 + 2 * e)
    row = [0.2, 1.0, 0.4, 0.0]
    image = np.repeat(np.array(row, dtype=np.float32)[None, :, None], 3, axis=2)
    # Only the centre kernel row sees data (the rows above/below are zero).
    expected = [w0 * (w0 * row[0] + w1 * row[1]),
                w0 * (w1 * row[0] + w0 * row[1] + w1 * row[2]),
                w0 * (w1 * row[1] + w0 * row[2] + w1 * row[3]),
                w0 * (w1 * row[2] + w0 * row[3])]
    np.testing.assert_allclose(_gauss(image, 1)[0, :, 0], expected, rtol=1e-6)


def test_gaussian_zero_padding_darkens_borders_of_flat_image():
    e = math.exp(-0.5)
    w0, w1 = 1 / (1 + 2 * e), e / (1 + 2 * e)
    c = 0.6
    out = _gauss(np.full((5, 5, 3), c, np.float32), 1)[..., 1]
    np.testing.assert_allclose(out[1:4, 1:4], c, rtol=1e-6)        # full kernel inside
    np.testing.assert_allclose(out[0, 2], c * (w0 + w1), rtol=1e-6)  # one kernel row missing
    np.testing.assert_allclose(out[0, 0], c * (w0 + w1) ** 2, rtol=1e-6)
    np.testing.assert_allclose(out[4, 4], c * (w0 + w1) ** 2, rtol=1e-6)


def test_gaussian_matches_literal_2d_zero_padded_convolution():
    image = _random((6, 9, 3), seed=3)
    radius, sigma = 2, 0.7
    t = np.linspace(-1, 1, 2 * radius + 1)
    ty, tx = np.meshgrid(t, t, indexing="ij")
    kernel2d = np.exp(-(tx ** 2 + ty ** 2) / (2 * sigma ** 2))
    kernel2d /= kernel2d.sum()
    padded = np.pad(image.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)))
    expected = np.zeros(image.shape)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            expected += kernel2d[dy, dx] * padded[dy:dy + 6, dx:dx + 9]
    np.testing.assert_allclose(_gauss(image, radius, sigma), expected, atol=2e-6)


def test_gaussian_pixel_sigma_is_sigma_times_radius():
    # Impulse response variance along x = (sigma * r)^2 = 4 for r=10, sigma=0.2
    # (the kernel is cut at 5 pixel sigmas, so the truncation is negligible).
    image = np.zeros((1, 41, 3), np.float32)
    image[0, 20] = 1.0
    response = _gauss(image, 10, 0.2)[0, :, 0].astype(np.float64)
    response /= response.sum()
    offsets = np.arange(41) - 20
    assert abs((response * offsets ** 2).sum() - 4.0) < 0.01


# ---------------------------------------------------------------- kuwahara

def _reflect101(p, n):
    """OpenCV BORDER_REFLECT_101 index rule (repeats for windows wider than the image)."""
    if n == 1:
        return 0
    while p < 0 or p >= n:
        p = -p if p < 0 else 2 * (n - 1) - p
    return p


def _bgr2gray_of_rgb(q):
    # The quirk under test: OpenCV's BGR->GRAY applied to RGB-ordered data.
    return cv2.cvtColor(q, cv2.COLOR_BGR2GRAY).astype(np.float64)


def _kuwahara_reference(image, radius):
    """Slow literal reading of §1.4: per pixel, four quadrants, exact float64 statistics."""
    q = (image * 255).astype(np.uint8)
    gray = _bgr2gray_of_rgb(q)
    height, width = q.shape[:2]
    out = np.zeros(q.shape, np.uint8)
    for y in range(height):
        for x in range(width):
            # bottom-right, top-right, bottom-left, top-left
            spans = [((y, y + radius), (x, x + radius)), ((y - radius, y), (x, x + radius)),
                     ((y, y + radius), (x - radius, x)), ((y - radius, y), (x - radius, x))]
            variances, means = [], []
            for (y0, y1), (x0, x1) in spans:
                rows = [_reflect101(i, height) for i in range(y0, y1 + 1)]
                cols = [_reflect101(j, width) for j in range(x0, x1 + 1)]
                g = gray[np.ix_(rows, cols)]
                variances.append((g * g).mean() - g.mean() ** 2)
                means.append(q[np.ix_(rows, cols)].reshape(-1, 3).astype(np.float64).mean(axis=0))
            out[y, x] = np.trunc(means[int(np.argmin(variances))])  # argmin: ties -> lowest index
    return out.astype(np.float32) / 255


# r = 1 and 3 give power-of-two kernels 1/(r+1): OpenCV's float32 sums are exact,
# so the float64 reference must agree bit for bit, ties included.
@pytest.mark.parametrize("radius", [1, 3])
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 6, 3), (5, 1, 3), (2, 3, 3), (5, 5, 3), (7, 11, 3)])
def test_kuwahara_matches_literal_reference_with_reflect101_borders(radius, shape):
    image = _levels(shape, seed=sum(shape) + radius)
    np.testing.assert_array_equal(_kuwahara(image, radius), _kuwahara_reference(image, radius))


def test_kuwahara_matches_literal_reference_with_many_ties():
    # Few grey levels -> many equal variances; the tie rule decides often.
    rng = np.random.default_rng(7)
    palette = np.array([[0, 0, 100], [0, 51, 0], [200, 10, 30], [255, 255, 255]], dtype=np.float32) / 255
    image = palette[rng.integers(0, 4, (12, 10))]
    np.testing.assert_array_equal(_kuwahara(image, 1), _kuwahara_reference(image, 1))
    np.testing.assert_array_equal(_kuwahara(image, 3), _kuwahara_reference(image, 3))


def _kuwahara_anchored(image, radius):
    """The node's formulation: four anchored float32 sepFilter2D box means, argmin."""
    q = (image * 255).astype(np.uint8)
    qf = q.astype(np.float32)
    gray = cv2.cvtColor(q, cv2.COLOR_BGR2GRAY).astype(np.float32)
    kernel = np.ones(radius + 1, np.float32) / (radius + 1)
    means, variances = [], []
    for anchor in [(0, 0), (0, radius), (radius, 0), (radius, radius)]:
        means.append(cv2.sepFilter2D(qf, -1, kernel, kernel, anchor=anchor))
        mean_g = cv2.sepFilter2D(gray, -1, kernel, kernel, anchor=anchor)
        variances.append(cv2.sepFilter2D(gray * gray, -1, kernel, kernel, anchor=anchor) - mean_g ** 2)
    index = np.argmin(np.stack(variances), axis=0)
    chosen = np.take_along_axis(np.stack(means), index[None, ..., None], 0)[0]
    return chosen.astype(np.uint8).astype(np.float32) / 255


@pytest.mark.parametrize("radius", [1, 2, 5, 31])
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (1, 40, 3), (37, 53, 3)])
def test_kuwahara_bit_identical_to_anchored_opencv_formulation(radius, shape):
    # Non-power-of-two radii round in float32; tiny images reflect repeatedly.
    image = _levels(shape, seed=radius)
    np.testing.assert_array_equal(_kuwahara(image, radius), _kuwahara_anchored(image, radius))


@pytest.mark.parametrize("radius", [3, 4, 6])
def test_kuwahara_bit_identical_to_anchored_formulation_on_a_photo(radius):
    # OpenCV's vector body and scalar tail round differently, so only the same
    # calls on the same layouts reproduce the reference's float32 means. On
    # this photo, padding once and slicing, or filtering the uint8 data
    # directly, changes truncations and quadrant choices for r = 4 and 6.
    photo = Image.open(Path(__file__).resolve().parent.parent / "examples" / "chelsea.png").convert("RGB")
    image = np.ascontiguousarray(np.asarray(photo, np.float32)[:64] / 255)
    np.testing.assert_array_equal(_kuwahara(image, radius), _kuwahara_anchored(image, radius))


def test_kuwahara_quantises_by_truncation():
    image = np.full((3, 4, 3), 0.5, np.float32)  # 127.5 -> 127, not 128
    np.testing.assert_array_equal(_kuwahara(image, 1), np.float32(127) / np.float32(255))


def test_kuwahara_variance_uses_bgr2gray_on_rgb_data():
    # Row: red | black | blue. With the swapped weights red is the darker grey
    # (0.114*255 -> 29) and blue the brighter (0.299*255 -> 76), so the left
    # quadrants (red, black) have the smaller variance and win; true Rec.601
    # weights would pick the blue side instead.
    image = np.array([[[1, 0, 0], [0, 0, 0], [0, 0, 1]]], dtype=np.float32)
    q = (image * 255).astype(np.uint8)
    assert _bgr2gray_of_rgb(q)[0].tolist() == [29, 0, 76]
    out = _kuwahara(image, 1)
    np.testing.assert_array_equal(out[0, 1], np.array([127, 0, 0], np.float32) / 255)  # trunc(255/2)


def test_kuwahara_tie_goes_to_bottom_right_quadrant():
    # Left (c0, black) and right (black, c2) windows have equal grey variance
    # (c0 and c2 share the grey level 30); bottom-right is checked first and wins.
    c0, c2 = [0, 0, 100], [0, 51, 0]
    image = np.array([[c0, [0, 0, 0], c2]], dtype=np.float32) / 255
    gray = _bgr2gray_of_rgb((image * 255).astype(np.uint8))[0]
    assert gray[0] == gray[2] == 30
    out = _kuwahara(image, 1)
    np.testing.assert_array_equal(out[0, 1], np.array([0, 25, 0], np.float32) / 255)  # trunc(51/2)


def test_gaussian_matches_torch_conv2d_oracle():
    # The reference node's operation: depthwise conv2d, zero padding r, the
    # isotropic kernel exp(-d^2 / (2 sigma^2)) over a linspace(-1, 1) grid.
    torch = pytest.importorskip("torch")
    image = _random((23, 31, 3), seed=21)
    radius, sigma = 4, 1.3
    t = torch.linspace(-1, 1, 2 * radius + 1)
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    kernel = torch.exp(-(tx * tx + ty * ty) / (2 * sigma * sigma))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1).unsqueeze(1)
    nchw = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)
    oracle = torch.nn.functional.conv2d(nchw, kernel, padding=radius, groups=3)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(_gauss(image, radius, sigma), oracle, atol=1e-6)
