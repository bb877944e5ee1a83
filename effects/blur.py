"""Blur effect: normalised-coordinate gaussian or Kuwahara (effects.md §1.4).

Both follow the reference nodes, quirks included (Decision (a)): the gaussian
zero-pads (borders darken) and its pixel-space sigma is ``blur_sigma *
blur_radius``; the Kuwahara filter quantises to uint8 by truncation, uses
OpenCV's REFLECT_101 border and measures variance on OpenCV's BGR->GRAY of the
RGB data (red and blue weights swapped).
"""

import cv2
import numpy as np

from effects._filters import normalized_gaussian_kernel, zero_padded_separable


def blur(image: np.ndarray, *, blur_type: str, blur_radius: int, blur_sigma: float) -> np.ndarray:
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
        read OpenCV's REFLECT_101 border.

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

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array in [0, 1].
    """
    if blur_radius == 0:
        return image.copy()
    if blur_type == "gaussian":
        kernel = normalized_gaussian_kernel(blur_radius, blur_sigma)
        blurred = zero_padded_separable(image, kernel)
        # Non-negative weights summing to 1 keep values in [0, 1] up to float
        # rounding, which only the upper clip has to remove.
        return np.minimum(blurred, 1.0, out=blurred)
    return _kuwahara(image, blur_radius)


def _kuwahara(image: np.ndarray, radius: int) -> np.ndarray:
    height, width = image.shape[:2]
    quantised = (image * 255).astype(np.uint8)
    gray = cv2.cvtColor(quantised, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Channels: R, G, B, g, g**2. All statistics come from one box filter.
    planes = np.concatenate([quantised.astype(np.float32), gray[..., None], (gray * gray)[..., None]], axis=2)

    # Every quadrant mean is the same (r+1)x(r+1) box mean, read at a shifted
    # position, so filter once on an r-padded copy and slice four views.
    # Padding with copyMakeBorder uses the REFLECT_101 rule OpenCV applies at
    # the border of an anchored sepFilter2D, and the same float32 kernel
    # 1/(r+1) summed in the same order, so the means are bit-identical to the
    # reference's four anchored filters.
    padded = cv2.copyMakeBorder(planes, radius, radius, radius, radius, cv2.BORDER_REFLECT_101)
    kernel = np.full(radius + 1, 1.0 / (radius + 1), dtype=np.float32)
    means = cv2.sepFilter2D(padded, -1, kernel, kernel, anchor=(0, 0))
    offsets = ((radius, radius), (0, radius), (radius, 0), (0, 0))  # (row, col) of BR, TR, BL, TL
    quadrants = [means[dy:dy + height, dx:dx + width] for dy, dx in offsets]

    best_var = None
    out = np.empty((height, width, 3), dtype=np.float32)
    for index, quadrant in enumerate(quadrants):
        mean_g = quadrant[..., 3]
        var = quadrant[..., 4] - mean_g * mean_g
        if best_var is None:
            best_var = var
            out[...] = quadrant[..., :3]
            continue
        # Strict "<" keeps the lowest index on ties, like np.argmin.
        better = var < best_var
        np.copyto(best_var, var, where=better)
        np.copyto(out, quadrant[..., :3], where=better[..., None])
    return np.divide(out.astype(np.uint8), np.float32(255.0), dtype=np.float32)
