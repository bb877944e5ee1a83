"""Color tint: blend the image with a tinted greyscale copy of itself (docs/decisions.md §1.7)."""
from __future__ import annotations

import cv2
import numpy as np

#: Per-mode (R, G, B) multipliers of the greyscale value, in fal's ``tint_mode`` enum order
#: (the reference node's order). "peach" equals "sepia" and "lavender" equals "purple" in the node.
TINT_MODES: dict[str, tuple[float, float, float]] = {
    "sepia": (1.0, 0.8, 0.6),
    "red": (1.0, 0.6, 0.6),
    "green": (0.6, 1.0, 0.6),
    "blue": (0.6, 0.8, 1.0),
    "cyan": (0.6, 1.0, 1.0),
    "magenta": (1.0, 0.6, 1.0),
    "yellow": (1.0, 1.0, 0.6),
    "purple": (0.8, 0.6, 1.0),
    "orange": (1.0, 0.7, 0.3),
    "warm": (1.0, 0.9, 0.7),
    "cool": (0.7, 0.9, 1.0),
    "lime": (0.7, 1.0, 0.3),
    "navy": (0.3, 0.4, 0.7),
    "vintage": (0.9, 0.85, 0.7),
    "rose": (1.0, 0.8, 0.9),
    "teal": (0.3, 0.8, 0.8),
    "maroon": (0.7, 0.3, 0.5),
    "peach": (1.0, 0.8, 0.6),
    "lavender": (0.8, 0.6, 1.0),
    "olive": (0.6, 0.7, 0.4),
}

#: The node's greyscale weights (Rec.601 with 0.2989 instead of 0.299).
_GREY = np.array([0.2989, 0.5870, 0.1140])


def tint(image: np.ndarray, *, tint_strength: float, tint_mode: str) -> np.ndarray:
    """``out = s * grey * (fR, fG, fB) + (1 - s) * x``, with ``grey = 0.2989 R + 0.5870 G + 0.1140 B``.

    ``(fR, fG, fB)`` are the mode's multipliers from :data:`TINT_MODES`. The whole operation is one
    3x3 colour matrix ``s * f ⊗ w + (1 - s) * I``, applied per pixel with ``cv2.transform``.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    tint_strength : float
        s, 0.1..1 (fal's range). 1 gives the pure tinted greyscale; 0 would be the identity.
    tint_mode : str
        One of the 20 keys of :data:`TINT_MODES`.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array. All matrix entries are >= 0 and every row sums to at most
        ``1 - 0.0001 s`` (multipliers <= 1, grey weights sum to 0.9999), so the result stays in
        [0, 1] without a clip, as in the node.
    """
    if tint_mode not in TINT_MODES:
        raise ValueError(f"tint_mode must be one of {', '.join(TINT_MODES)}; got {tint_mode!r}")
    multipliers = np.array(TINT_MODES[tint_mode])
    matrix = tint_strength * np.outer(multipliers, _GREY) + (1.0 - tint_strength) * np.eye(3)
    return cv2.transform(image, matrix.astype(np.float32))
