"""Color correction: the reference node's mixed 8-bit / float pipeline (docs/decisions.md §1.2).

The node goes through Pillow (brightness, contrast on 8-bit RGB) and OpenCV (HLS saturation, an HSV
hue round trip) with truncating uint8 casts at both ends. Every step is reproduced bit for bit:

* Pillow's ``ImageEnhance.Brightness``/``Contrast`` are ``Image.blend`` with a constant image, i.e. a
  per-value function of the 8-bit input, evaluated here as 256-entry lookup tables with Pillow's own
  float32 arithmetic and truncation (see :func:`_blend_lut`).
* Temperature and gamma act per channel on 8-bit values, so they also become one float32 lookup
  table per channel, computed with the node's exact float32 numpy operations.
* Saturation and the hue round trip use the same OpenCV conversions as the node.

Quirks kept for fal compatibility (docs/decisions.md (a)): the input is truncated to 8 bits first; the raw
gamma exponent is used (gamma > 1 darkens); the hue round trip with hue = 0 and the final truncation
mean that even all-neutral settings are not an exact identity: about a quarter of all 8-bit colour
values come back one level lower, exactly as in the node.
"""
from __future__ import annotations

import cv2
import numpy as np

_LEVELS = np.arange(256, dtype=np.float32)


def _blend_lut(base: int, factor: float) -> np.ndarray:
    """Pillow ``Image.blend(constant base, image, factor)`` on 8-bit values, as a 256-entry table.

    Pillow computes ``base + alpha * (v - base)`` in C float32 (``alpha`` is the factor rounded to
    float32) and casts to 8 bits by truncation; outside ``0 <= alpha <= 1`` it clips to [0, 255]
    first. Truncation and the clip agree here: within [0, 1] the result lies between v and base.
    """
    alpha = np.float32(factor)
    out = np.float32(base) + alpha * (_LEVELS - np.float32(base))
    return np.clip(out, 0, 255).astype(np.uint8)


def _pillow_luma_mean(rgb8: np.ndarray) -> int:
    """``int(mean + 0.5)`` of Pillow's RGB→"L" conversion, as ``ImageEnhance.Contrast`` computes it."""
    return contrast_pivot(_pillow_luma_total(rgb8), rgb8.shape[0] * rgb8.shape[1])


def contrast_pivot(luma_total: int, pixels: int) -> int:
    """``int(mean + 0.5)``: Pillow's rounding of the mean luma to the contrast pivot."""
    return int(luma_total / pixels + 0.5)


def _pillow_luma_total(rgb8: np.ndarray) -> int:
    """The sum of Pillow's RGB→"L" over an 8-bit image, exactly.

    Pillow's "L" is ``(19595 R + 38470 G + 7471 B + 32768) >> 16``. In float32 every product and
    partial sum here is an integer below 2**24, so ``cv2.transform`` computes it exactly, and the
    float64 sum of integers stays exact below 2**53 (35 billion megapixels).
    """
    weights = np.array([[19595, 38470, 7471, 32768]], np.float32)
    raw = cv2.transform(rgb8.astype(np.float32), weights)
    raw *= np.float32(1 / 65536)
    return int(np.floor(raw, out=raw).sum(dtype=np.float64))


def _truncated(image: np.ndarray) -> np.ndarray:
    """``uint8(x * 255)``: the node's truncating float→8-bit cast."""
    q = np.empty(image.shape, np.uint8)
    np.multiply(image, np.float32(255), out=q, casting="unsafe")
    return q


def contrast_luma_total(image: np.ndarray, brightness: float) -> int:
    """The sum whose mean is the contrast pivot: Pillow "L" of the truncated, brightened image.

    Sums of bands add up to the whole image's, so a banded pipeline can find the pivot first
    (:func:`color_correction` with ``pivot``)."""
    return _pillow_luma_total(cv2.LUT(_truncated(image), _blend_lut(0, 1 + brightness / 100)))


def _tone_luts(temperature: float, gamma: float) -> np.ndarray:
    """Per-channel float32 tables for the node's temperature and gamma steps on 8-bit values.

    Same float32 operations as the node: scale R and G (warm) or B (cool), clip to 0..255, /255,
    raise to ``gamma``, clip to [0, 1]. Shape (256, 1, 3) for ``cv2.LUT`` on an RGB image.
    """
    t = temperature / 100
    levels = np.repeat(_LEVELS[:, None], 3, axis=1)
    if t > 0:
        levels[:, 0] *= 1 + t
        levels[:, 1] *= 1 + t * 0.4
    elif t < 0:
        levels[:, 2] *= 1 - t
    levels = np.clip(levels, 0, 255) / 255
    return np.clip(np.power(levels, gamma), 0, 1).reshape(256, 1, 3)


def color_correction(image: np.ndarray, *, temperature: float, brightness: float, contrast: float,
                     saturation: float, gamma: float, pivot: int | None = None) -> np.ndarray:
    """Brightness, contrast, temperature, gamma and saturation, in the node's order and precision.

    With ``b = 1 + brightness/100``, ``c = 1 + contrast/100``, ``s = 1 + saturation/100``,
    ``t = temperature/100``:

    1. ``q = uint8(x * 255)`` (truncation; exact for x = k/255).
    2. Brightness: Pillow blend with black, ``q * b`` truncated, clipped at 255.
    3. Contrast: Pillow blend with grey ``m = round(mean of Pillow "L")`` of the brightened image,
       ``m + c * (q - m)`` truncated and clipped.
    4. Temperature on 0..255 floats: t > 0 multiplies R by (1 + t) and G by (1 + 0.4 t); t < 0
       multiplies B by (1 - t). Clip to 0..255, /255.
    5. Gamma: ``clip(x ** gamma)``, the raw exponent (gamma > 1 darkens).
    6. Saturation: OpenCV float RGB→HLS, ``S = min(S * s, 1)``, HLS→RGB, ×255.
    7. Hue (always 0 on fal): OpenCV RGB→HSV→RGB round trip on 0..255 floats; not bit-exact.
    8. Clip to 0..255, truncate to uint8, /255.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    temperature, brightness, contrast, saturation : float
        -100..100 each; 0 is neutral.
    gamma : float
        Exponent, 0.2..2.2; 1 is neutral.
    pivot : int, optional
        The contrast pivot m of step 3 when ``image`` is a band of a larger image (m of the whole,
        from :func:`contrast_luma_total`); by default m of ``image`` itself.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array of values k/255. Neutral settings still quantise (steps 1, 7, 8).
    """
    q = _truncated(image)
    levels = _blend_lut(0, 1 + brightness / 100)
    if contrast != 0:
        # Contrast pivots on the mean of the *brightened* image. (A factor of exactly 1 makes
        # Pillow's blend the identity for any pivot, so the mean is only needed otherwise.)
        if pivot is None:
            pivot = _pillow_luma_mean(cv2.LUT(q, levels))
        levels = _blend_lut(pivot, 1 + contrast / 100)[levels]
    # Brightness, contrast, temperature and gamma are all per-channel functions of the 8-bit value:
    # compose them into one table (one shared channel when temperature is 0, which is faster).
    tones = _tone_luts(temperature, gamma)[levels]
    rgb = cv2.LUT(q, tones if temperature != 0 else tones[:, :, :1].copy())

    hls = cv2.cvtColor(rgb, cv2.COLOR_RGB2HLS)
    sat = hls[:, :, 2]
    if saturation != 0:
        np.multiply(sat, np.float32(1 + saturation / 100), out=sat)
    # Not a no-op even for s = 1: OpenCV's float HLS can return S a hair above 1.
    np.clip(sat, 0, 1, out=sat)
    rgb = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
    rgb *= np.float32(255)
    rgb = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV), cv2.COLOR_HSV2RGB)
    np.clip(rgb, 0, 255, out=q, casting="unsafe")  # clip, then truncate to uint8
    # The node's k / 255 is in float64, then stored as float32; float32 division gives the same
    # value for every k (checked by the tests), and a third faster than cv2.LUT.
    return np.divide(q, np.float32(255), dtype=np.float32)
