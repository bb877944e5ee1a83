"""Glow effect: add a blurred copy of the image to itself (docs/decisions.md §1.10)."""

import cv2
import numpy as np

from effects._filters import normalized_gaussian_kernel, scaled_kernel, zero_padded_separable


def glow(image: np.ndarray, *, glow_intensity: float, glow_radius: int,
         scale: float = 1.0) -> np.ndarray:
    """Additive glow: ``out = clip(x + I * blur(x))``.

    ``blur`` is the normalised-coordinate gaussian of §1.4 with r =
    ``glow_radius`` and kernel sigma (k-1)/6 = r/3, as in the reference node,
    so the pixel-space sigma is r**2/3 while the kernel is truncated at +-r:
    nearly a box filter for r >= 4, nearly the identity for r = 1. Zero
    padding (the glow fades towards the border). The result only brightens.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    glow_intensity : float
        I, 0..5; 0 returns the input unchanged.
    glow_radius : int
        r, 1..50.
    scale : float
        Size of ``image`` relative to the image the radius is meant for, in
        (0, 1]. Below 1 (a preview proxy) the kernel's taps move to ``offset *
        scale`` (:func:`effects._filters.scaled_kernel`: sum and variance
        kept), so the glow looks like the full-resolution glow downscaled.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array in [0, 1].
    """
    kernel = normalized_gaussian_kernel(glow_radius, glow_radius / 3.0)
    if scale != 1:
        kernel = scaled_kernel(kernel, scale)
    out = zero_padded_separable(image, kernel)  # the blur, then the sum in its place
    cv2.scaleAdd(out, glow_intensity, image, dst=out)
    # x >= 0, blur >= 0 and I >= 0, so only the upper clip can bite. cv2.min on a one-channel
    # view (a scalar acts on every element only there) is twice as fast as np.minimum.
    flat = out.reshape(len(out), -1)
    cv2.min(flat, 1.0, dst=flat)
    return out
