"""Vignette: a linear radial darkening towards the corners (docs/decisions.md §1.5)."""
from __future__ import annotations

import cv2
import numpy as np


def vignette(image: np.ndarray, *, vignette_strength: float) -> np.ndarray:
    """Multiply by ``1 - a * rho``, a linear falloff from the centre (1) to the corners (1 - a).

    ``x_j = linspace(-1, 1, W)`` and ``y_i = linspace(-1, 1, H)`` (endpoints included),
    ``rho = sqrt(x**2 + y**2) / sqrt(2)`` so that rho is 0 at the centre and 1 at the corners, and
    ``a = clip(strength, 0, 1)``. On a non-square image the falloff is elliptical: the grid is built
    in HxW orientation (the torch node's WxH meshgrid only broadcasts for square images; docs/decisions.md (a)).

    Quirk kept from the node: strength is clamped at 1, so values above 1 (fal allows up to 10) look
    the same as 1. Strength 0 returns the image unchanged.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    vignette_strength : float
        0..10; effective range 0..1.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array. The factor lies in [1 - a, 1] with a <= 1, so the result stays in
        [0, 1] without a clip.
    """
    return vignette_rows(image, vignette_strength, 0, image.shape[0])


def vignette_rows(image: np.ndarray, vignette_strength: float, top: int, height: int) -> np.ndarray:
    """:func:`vignette` for rows ``top .. top + len(image)`` of an image ``height`` rows tall."""
    h, w, _ = image.shape
    a = min(max(vignette_strength, 0.0), 1.0)
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[top:top + h]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    factor = np.sqrt(np.add((y * y)[:, None], (x * x)[None, :]))
    factor *= np.float32(-a / np.sqrt(2.0))
    factor += np.float32(1.0)
    # Expanding to three channels first is several times faster than numpy's broadcast over a
    # trailing axis of length 3.
    factor3 = cv2.merge([factor, factor, factor])
    return np.multiply(image, factor3, out=factor3)
