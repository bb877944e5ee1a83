"""Parabolize: a parabolic per-channel tone curve (docs/decisions.md §1.6).

fal's blurb calls it "a parabolic distortion effect", but the reference node maps intensities, not
positions; the node's maths is followed (docs/decisions.md (a)).
"""
from __future__ import annotations

import cv2
import numpy as np


def parabolize(image: np.ndarray, *, parabolize_coeff: float, vertex_x: float,
               vertex_y: float) -> np.ndarray:
    """Per channel: ``out = clip(coeff * (x - vertex_x)**2 + vertex_y)``.

    ``vertex_x`` and ``vertex_y`` are positions in *intensity* space: the curve's vertex sits at input
    level ``vertex_x`` and output level ``vertex_y``. fal's defaults (1, 0.5, 0.5) map [0, 1] onto
    [0.5, 0.75], a washed-out look; a negative coefficient opens the parabola downwards.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    parabolize_coeff : float
        Curvature, -10..10. 0 makes the image flat grey at ``vertex_y``.
    vertex_x, vertex_y : float
        Vertex position, 0..1 each.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array clipped to [0, 1].
    """
    out = np.subtract(image, np.float32(vertex_x))
    cv2.multiply(out, out, dst=out, scale=parabolize_coeff)
    out += np.float32(vertex_y)
    return np.clip(out, 0.0, 1.0, out=out)
