"""Shared low-level filters for the spatial effects (blur, glow).

The reference nodes convolve with torch ``conv2d`` and zero padding. OpenCV's
separable filter with ``BORDER_CONSTANT`` (value 0) computes the same sums, and
because every kernel here is symmetric, correlation and convolution agree
(docs/decisions.md §2).
"""

import cv2
import numpy as np


def normalized_gaussian_kernel(radius: int, sigma: float) -> np.ndarray:
    """1-D weights of the reference's normalised-coordinate gaussian (docs/decisions.md §1.4).

    The 2r+1 taps sit at ``t = linspace(-1, 1, 2r+1)``, i.e. tap offset ``i``
    pixels is at ``i/r``; weight ``exp(-t**2 / (2 sigma**2))``, normalised to
    sum 1. The reference builds the isotropic 2-D kernel
    ``exp(-(tx**2 + ty**2) / (2 sigma**2))``; that is the outer product of these
    weights, so filtering rows then columns with them is equivalent. The
    effective pixel-space sigma is ``sigma * radius``.

    Parameters
    ----------
    radius : int
        Half-width r >= 1 in pixels.
    sigma : float
        Sigma in normalised coordinates (> 0).

    Returns
    -------
    np.ndarray
        float32 array of shape (2r+1,).
    """
    t = np.linspace(-1.0, 1.0, 2 * radius + 1)
    weights = np.exp(-(t * t) / (2.0 * sigma * sigma))
    return (weights / weights.sum()).astype(np.float32)


def zero_padded_separable(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter every channel with ``kernel`` along x and y, zeros outside the image.

    ``out(i, j) = sum_{a, b} kernel[a] * kernel[b] * x(i + a - r, j + b - r)``
    with ``x = 0`` outside the image and r = len(kernel) // 2, so borders
    darken exactly as in the reference's zero-padded conv2d.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWxC array (not modified).
    kernel : np.ndarray
        float32 1-D kernel of odd length.

    Returns
    -------
    np.ndarray
        New float32 array of the same shape.
    """
    return cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)


#: Standard deviation of white noise after a Pillow LANCZOS downscale by ``scale``, per unit of
#: ``scale``: each axis's weights are ``scale * L(scale * t)`` (L the 3-lobe Lanczos kernel), so
#: their sum of squares is ``scale * integral(L**2) = 0.888 scale`` per axis, and the 2-D filter's
#: root sum of squares is the product of the two axes' square roots.
LANCZOS_NOISE_GAIN = 0.888


def downscaled_noise_gain(scale: float) -> float:
    """How much a downscale by ``scale`` (< 1) reduces the standard deviation of pixel-independent
    noise: ``0.888 scale`` for Pillow LANCZOS, the filter of the app's preview proxy (a box filter,
    cv2 INTER_AREA, gives about ``scale``)."""
    return min(1.0, LANCZOS_NOISE_GAIN * scale)


def _splat_matrix(length: int, scale: float) -> np.ndarray:
    """M[u, i]: the weight a full-resolution tap at offset ``i - length // 2`` pixels puts on the
    scaled-down tap ``u - m``: the offset times ``scale``, spread over the six nearest integer
    offsets with the 3-lobe Lanczos kernel (the proxy's own downscale filter), normalised so every
    tap keeps its weight."""
    offsets = (np.arange(length) - length // 2) * scale
    m = int(np.ceil(np.abs(offsets).max())) + 3
    d = np.arange(-m, m + 1)[:, None] - offsets[None, :]
    weights = np.sinc(d) * np.sinc(d / 3) * (np.abs(d) < 3)
    return weights / weights.sum(axis=0, keepdims=True)


def scaled_kernel(kernel: np.ndarray, scale: float) -> np.ndarray:
    """The 1-D or 2-D ``kernel`` (odd sizes, centred, taps one pixel apart) as it acts on an image
    downscaled by ``scale``: every tap moves to ``offset * scale`` and is splatted onto the
    neighbouring integer offsets with the Lanczos kernel the downscale itself uses, fractional radii
    included. The kernel's sum and centre are kept exactly and its variance (times ``scale**2``)
    closely; sharp kernels keep their response up to the proxy's Nyquist frequency better than
    with a cubic splat (measured: gaussian blur 0.51 -> 0.33, basic sharpen 1.26 -> 0.77 MAD at
    6 MP). Returns float32; scale 1 gives the kernel back (up to zero taps around it)."""
    k = np.asarray(kernel, np.float64)
    rows = _splat_matrix(k.shape[0], scale)
    out = rows @ k if k.ndim == 1 else rows @ k @ _splat_matrix(k.shape[1], scale).T
    # The splat matrix has spare taps on each side; drop the ones that stayed zero.
    while out.shape[0] > 1 and np.all(np.abs(out[[0, -1]]) < 1e-9):
        out = out[1:-1] if out.ndim == 1 else out[1:-1, 1:-1]
    return out.astype(np.float32)
