"""Solarize: invert every channel value above a threshold (docs/decisions.md §1.12)."""
from __future__ import annotations

import cv2
import numpy as np


def solarize(image: np.ndarray, *, solarize_threshold: float) -> np.ndarray:
    """Per channel: ``out = 1 - x`` where ``x > t`` (strictly), else ``x``.

    The comparison is made in float32, as the reference's float32 torch tensors do: a value equal to
    ``float32(t)`` is kept. ``t = 1`` is the identity; ``t = 0`` inverts every non-zero value.

    Computed branch-free as ``|x - b|`` with ``b = 1 if x > t else 0`` (OpenCV's strict
    ``THRESH_BINARY``): ``|x - 1| = 1 - x`` and ``|x - 0| = x``, bit for bit.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    solarize_threshold : float
        Threshold t, 0..1.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array, in [0, 1] without a clip.
    """
    above = cv2.threshold(image, solarize_threshold, 1.0, cv2.THRESH_BINARY)[1]
    return cv2.absdiff(image, above, dst=above)
