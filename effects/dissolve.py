"""Dissolve effect: per-element random dither between two images (docs/decisions.md §1.8)."""

import math
import sys

import cv2
import numpy as np

from effects._filters import downscaled_noise_gain


def dissolve(image: np.ndarray, *, dissolve_factor: float, other: np.ndarray,
             rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Keep each element of ``image`` with probability ``dissolve_factor``.

    ``U ~ uniform[0, 1)`` is drawn independently per pixel AND per channel
    (the reference's ``rand_like``), so the result has coloured speckle:
    ``out = image where U < factor, else other`` (docs/decisions.md (d)). factor 1
    returns ``image``, factor 0 returns ``other``. The same seeded ``rng``
    state gives the same output.

    On a downscaled proxy (``scale`` < 1) the result matches the downscaled
    full-resolution dither in its statistics, not pixel by pixel. With
    ``p = factor`` and ``L = p·image + (1-p)·other`` (the dither's local
    mean), a downscale keeps L and shrinks the dither's deviation from it
    (``(mask - p)(image - other)``, independent per element) by the gain g of
    :func:`effects._filters.downscaled_noise_gain`, so
    ``out = L + g·(dither - L)``.

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
    scale : float
        Size of ``image`` relative to the image the request is meant for, in (0, 1].

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array; every element is taken from one of the two
        inputs, so it stays in [0, 1] without a clip.
    """
    keep = _uniform_below(rng, image.shape, dissolve_factor)
    out = np.array(other, dtype=np.float32, order="C")
    # Per-element masked copy; cv2.copyTo is several times faster than
    # np.where here. Viewed as HxW*3 single-channel so the mask is per element.
    rows = image.shape[0]
    cv2.copyTo(image.reshape(rows, -1), keep.view(np.uint8).reshape(rows, -1), out.reshape(rows, -1))
    if scale == 1:
        return out
    gain = downscaled_noise_gain(scale)
    mean = cv2.addWeighted(image, dissolve_factor, other, 1.0 - dissolve_factor, 0.0)
    return cv2.addWeighted(out, gain, mean, 1.0 - gain, 0.0)


def _uniform_below(rng: np.random.Generator, shape: tuple[int, ...], factor: float) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32) < factor``, leaving ``rng`` in the same state.

    numpy makes each float32 ``(u >> 8) * 2**-24`` from a 32-bit draw ``u``, and PCG64 draws those
    as the low then the high half of each 64-bit word. So with ``F`` the factor as numpy compares
    it (float32 for a Python float), ``U < F`` is ``u < ceil(F * 2**24) * 256``: one integer
    comparison on the raw words, a third faster than making the floats. Other generators, or one
    holding half a word, take numpy's own path.
    """
    bits = rng.bit_generator
    state = bits.state
    if type(bits) is not np.random.PCG64 or state["has_uint32"] or sys.byteorder != "little":
        return rng.random(shape, dtype=np.float32) < factor
    count = math.prod(shape)
    words = bits.random_raw(-(-count // 2))
    if count:  # as numpy leaves it: the last high half kept, unused when the count is odd
        bits.state = {**bits.state, "has_uint32": count % 2, "uinteger": int(words[-1] >> np.uint64(32))}
    halves = words.view(np.uint32)[:count].reshape(shape)
    compared = np.result_type(np.float32, factor).type(factor)
    threshold = math.ceil(float(compared) * 2**24) * 256
    if threshold >= 2**32:
        return np.ones(shape, bool)
    return halves < np.uint32(threshold)


def dissolve_pair(image: np.ndarray, *, dissolve_factor: float, other: np.ndarray,
                  rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Two antithetic full-strength dithers of a proxy: the dither itself and its mirror around
    the blend ``L``, ``2 L - dither``. Their mean is L and their half difference the dither's
    per-pixel deviation as the full image has it, before a downscale averages it away
    (:mod:`effects.proxy`). Draws exactly what :func:`dissolve` draws."""
    dither = dissolve(image, dissolve_factor=dissolve_factor, other=other, rng=rng)
    blend = cv2.addWeighted(image, dissolve_factor, other, 1.0 - dissolve_factor, 0.0)
    return dither, cv2.addWeighted(blend, 2.0, dither, -1.0, 0.0)
