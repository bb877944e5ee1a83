"""Dissolve effect: per-element random dither between two images (docs/decisions.md §1.8)."""

import cv2
import numpy as np


def dissolve(image: np.ndarray, *, dissolve_factor: float, other: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Keep each element of ``image`` with probability ``dissolve_factor``.

    ``U ~ uniform[0, 1)`` is drawn independently per pixel AND per channel
    (the reference's ``rand_like``), so the result has coloured speckle:
    ``out = image where U < factor, else other`` (docs/decisions.md (d)). factor 1
    returns ``image``, factor 0 returns ``other``. The same seeded ``rng``
    state gives the same output.

    Parameters
    ----------
    image : np.ndarray
        Main image, float32 HxWx3 in [0, 1]; not modified.
    dissolve_factor : float
        Probability of keeping ``image``, 0..1.
    other : np.ndarray
        Second image, float32 HxWx3 in [0, 1], already resized to ``image``'s
        size by the pipeline; not modified.
    rng : np.random.Generator
        Source of U (docs/decisions.md (f)); one float32 draw per element.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array; every element is taken from one of the two
        inputs, so it stays in [0, 1] without a clip.
    """
    keep = rng.random(image.shape, dtype=np.float32) < dissolve_factor
    out = np.array(other, dtype=np.float32, order="C")
    # Per-element masked copy; cv2.copyTo is several times faster than
    # np.where here. Viewed as HxW*3 single-channel so the mask is per element.
    rows = image.shape[0]
    cv2.copyTo(image.reshape(rows, -1), keep.view(np.uint8).reshape(rows, -1), out.reshape(rows, -1))
    return out
