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
