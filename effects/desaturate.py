"""Desaturate: blend each pixel towards a grey value (docs/decisions.md §1.13)."""
from __future__ import annotations

import cv2
import numpy as np

#: Greyscale weights (R, G, B) per ``desaturate_method``, keyed by fal's exact strings and in fal's
#: order. ``"lightness"`` is not a weighted sum: it is ``(max(R, G, B) + min(R, G, B)) / 2``.
DESATURATE_WEIGHTS: dict[str, tuple[float, float, float] | None] = {
    "luminance (Rec.709)": (0.2126, 0.7152, 0.0722),
    "luminance (Rec.601)": (0.299, 0.587, 0.114),
    "average": (1 / 3, 1 / 3, 1 / 3),
    "lightness": None,
}


def desaturate(image: np.ndarray, *, desaturate_factor: float, desaturate_method: str) -> np.ndarray:
    """``out = clip((1 - f) * x + f * grey)`` per channel, on the encoded (non-linear) values.

    ``grey`` per method: Rec.709 ``0.2126 R + 0.7152 G + 0.0722 B``; Rec.601
    ``0.299 R + 0.587 G + 0.114 B``; average ``(R + G + B) / 3``; lightness ``(max + min) / 2``
    (the L of HLS, taken from OpenCV's float RGB→HLS conversion, which computes exactly that).
    The weighted methods are one 3x3 colour matrix ``f * 1 ⊗ w + (1 - f) * I``.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    desaturate_factor : float
        f, 0..1. 0 is the identity, 1 is fully grey.
    desaturate_method : str
        ``"luminance (Rec.709)"``, ``"luminance (Rec.601)"``, ``"average"`` or ``"lightness"``.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array clipped to [0, 1] (float32 rounding can otherwise leave white
        a hair above 1).
    """
    if desaturate_method not in DESATURATE_WEIGHTS:
        raise ValueError(f"desaturate_method must be one of {', '.join(DESATURATE_WEIGHTS)}; "
                         f"got {desaturate_method!r}")
    weights = DESATURATE_WEIGHTS[desaturate_method]
    if weights is None:
        # Pick L (channel 1) of HLS into all three outputs, scaled by f, then add (1 - f) * x.
        grey = cv2.transform(cv2.cvtColor(image, cv2.COLOR_RGB2HLS),
                             np.array([[0, desaturate_factor, 0]] * 3, np.float32))
        out = cv2.scaleAdd(image, 1.0 - desaturate_factor, grey)
    else:
        matrix = desaturate_factor * np.outer(np.ones(3), weights) + (1.0 - desaturate_factor) * np.eye(3)
        out = cv2.transform(image, matrix.astype(np.float32))
    return np.clip(out, 0.0, 1.0, out=out)
