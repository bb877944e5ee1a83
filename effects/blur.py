"""Blur effect: normalised-coordinate gaussian or Kuwahara (docs/decisions.md §1.4).

Both follow the reference nodes, quirks included (docs/decisions.md (a)): the gaussian
zero-pads (borders darken) and its pixel-space sigma is ``blur_sigma *
blur_radius``; the Kuwahara filter quantises to uint8 by truncation, uses
OpenCV's REFLECT_101 border and measures variance on OpenCV's BGR->GRAY of the
RGB data (red and blue weights swapped).
"""

import cv2
import numpy as np

from effects._filters import normalized_gaussian_kernel, scaled_kernel, zero_padded_separable

#: fal's ``blur_type`` enum.
BLUR_TYPES = ("gaussian", "kuwahara")


def blur(image: np.ndarray, *, blur_type: str, blur_radius: int, blur_sigma: float,
         scale: float = 1.0) -> np.ndarray:
    """Blur ``image`` with a gaussian or a Kuwahara filter.

    gaussian (§1.4)
        Separable kernel of 2r+1 taps at ``t = linspace(-1, 1, 2r+1)``,
        weight ``exp(-t**2 / (2 sigma**2))`` normalised to 1, so the
        pixel-space sigma is ``sigma * r``. Zero padding: pixels within r of
        the border darken. r = 0 is the identity.
    kuwahara (§1.4, the node's "mean" method)
        r = 0 is the identity (no quantisation). Otherwise, on
        ``q = uint8(x*255)`` (truncation) and ``g = cv2 BGR2GRAY(q)`` applied to
        the RGB data: for each of the four (r+1)x(r+1) quadrant windows that
        contain the pixel (order: bottom-right, top-right, bottom-left,
        top-left), the mean of q and the variance ``E[g**2] - E[g]**2``. The
        output is the mean colour of the first quadrant with the smallest
        variance, truncated to uint8, divided by 255. Windows leaving the image
        read OpenCV's REFLECT_101 border. The float32 box means come from the
        reference's own anchored ``cv2.sepFilter2D`` calls, so the output is
        bit-identical to the node's (float rounding decides truncations and
        near-ties).

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    blur_type : str
        "gaussian" or "kuwahara".
    blur_radius : int
        r, 0..31.
    blur_sigma : float
        Gaussian sigma in normalised kernel coordinates (0.1..10); unused by
        kuwahara.
    scale : float
        Size of ``image`` relative to the image the radius is meant for, in
        (0, 1]. Below 1 (a preview proxy) the result looks like the
        full-resolution result downscaled: the gaussian's taps move to
        ``offset * scale`` (fractional radii included,
        :func:`effects._filters.scaled_kernel`, which keeps the kernel's sum
        and variance); kuwahara uses quadrant windows of the fractional radius
        :func:`_proxy_kuwahara_radius` (a last tap of partial weight), and
        none below half a proxy pixel.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array in [0, 1].
    """
    if blur_type not in BLUR_TYPES:
        raise ValueError(f"blur_type must be one of {', '.join(BLUR_TYPES)}; got {blur_type!r}")
    if blur_radius == 0:
        return image.copy()
    if blur_type == "gaussian":
        kernel = normalized_gaussian_kernel(blur_radius, blur_sigma)
        if scale != 1:
            kernel = scaled_kernel(kernel, scale)
        blurred = zero_padded_separable(image, kernel)
        # Non-negative weights summing to 1 keep values in [0, 1] up to float
        # rounding, which only the upper clip has to remove.
        return np.minimum(blurred, 1.0, out=blurred)
    if scale == 1:
        return _kuwahara(image, np.full(blur_radius + 1, 1.0 / (blur_radius + 1), dtype=np.float32))
    radius = _proxy_kuwahara_radius(blur_radius * scale)
    if radius == 0:
        return image.copy()
    return _kuwahara(image, _fractional_box(radius))


def _proxy_kuwahara_radius(radius: float) -> float:
    """The Kuwahara radius that makes a proxy look like the downscaled full-resolution result,
    given the full radius times the scale.

    A proxy pixel already averages the full image over ``1 / scale`` pixels, so small windows
    change a proxy less than their scaled size suggests, and windows under half a proxy pixel not
    at all. Calibrated on photos upscaled to 1.5, 6 and 24 MP with radii 3 and 8 (mean absolute
    difference to the downscaled full result): ``min(radius, 1.2 (radius - 0.45))``, 0 below 0.45.
    """
    return min(radius, 1.2 * max(0.0, radius - 0.45))


def _fractional_box(length: float) -> np.ndarray:
    """A box ``1 + length`` pixels long starting at the pixel: ``floor(length) + 1`` taps of weight
    1 and a last tap of the fractional rest, normalised to sum 1 (the quadrant window of a
    Kuwahara radius ``length`` that need not be whole)."""
    whole = int(np.floor(length))
    weights = np.ones(whole + 2)
    weights[-1] = length - whole
    if weights[-1] < 1e-3:
        weights = weights[:-1]
    return (weights / weights.sum()).astype(np.float32)


def _kuwahara(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The node's Kuwahara filter with the quadrant window ``kernel`` (1-D, from the pixel
    outwards; constant for a whole radius). The windows towards the top or left use it
    reversed."""
    quantised = (image * 255).astype(np.uint8)
    # Same OpenCV calls on the same float32 layouts as the reference: the
    # filters' SIMD body and scalar tail round differently, so padding once and
    # slicing, or filtering the uint8 data directly, changes the float32 means
    # at some pixels, and with them truncations and quadrant choices.
    values = quantised.astype(np.float32)
    # OpenCV's own integer BGR->GRAY on RGB data: the swapped weights and its
    # fixed-point rounding both decide which quadrant wins.
    gray = cv2.cvtColor(quantised, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray_sq = gray * gray
    end = len(kernel) - 1
    backward = kernel[::-1].copy()

    out = best_var = None
    # Anchors (x, y) select the quadrant: bottom-right, top-right, bottom-left, top-left.
    for anchor in ((0, 0), (0, end), (end, 0), (end, end)):
        kx, ky = (kernel if a == 0 else backward for a in anchor)
        mean = cv2.sepFilter2D(values, -1, kx, ky, anchor=anchor)
        mean_g = cv2.sepFilter2D(gray, -1, kx, ky, anchor=anchor)
        var = cv2.sepFilter2D(gray_sq, -1, kx, ky, anchor=anchor)
        var -= mean_g * mean_g
        if out is None:
            out, best_var = mean, var
            continue
        # Strict "<" keeps the earlier quadrant on ties, like np.argmin.
        better = np.less(var, best_var)
        np.minimum(best_var, var, out=best_var)
        cv2.copyTo(mean, better.view(np.uint8), out)
    return np.divide(out.astype(np.uint8), np.float32(255.0), dtype=np.float32)
