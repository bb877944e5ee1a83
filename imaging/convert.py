"""Conversions between PIL images and the float32 arrays the effects and the upscaler work on."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .metadata import orientation, upright

_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_float_rgb(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Split any PIL image into float32 RGB in [0, 1] (H×W×3) and its alpha (H×W uint8) or None.

    EXIF orientation is applied first (an unreadable EXIF block counts as upright). 16-bit greyscale
    (``I;16``, ``I``) keeps its precision: it is scaled by 1/65535 rather than squashed to 8 bits.
    Any image with transparency (RGBA, LA, PA, a palette or RGB/L image with a transparent colour)
    yields its alpha; 8-bit values become ``uint8 / 255`` in float32 (as the reference nodes and
    AuraSR's ``ToTensor``); CMYK and other modes go through Pillow's RGB conversion.
    """
    if orientation(image) != 1:  # no copy of an upright image: it is only read
        image = upright(image)
    if image.mode in _WIDE_GREY:
        grey = np.asarray(image, dtype=np.float32)
        if image.mode != "F":
            grey /= np.float32(65535.0)
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
        return np.ascontiguousarray(rgb), None
    alpha = None
    if image.has_transparency_data:
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"))
    rgb8 = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return np.divide(rgb8, np.float32(255.0), dtype=np.float32), alpha


def quantize_half_up(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float in [0, 1] → uint8 as ``floor(clip(x) * 255 + 0.5)``: round half up, the effects' rule.

    ``out`` (uint8, ``rgb``'s shape, a strided view too) receives the result instead of a new array.
    """
    scaled = np.clip(rgb, 0.0, 1.0)  # one temporary, scaled in place
    scaled *= 255.0
    scaled += 0.5
    if out is None:
        out = np.empty(rgb.shape, np.uint8)
    np.floor(scaled, out=out, casting="unsafe")
    return out


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """float32 RGB in [0, 1] (+ optional uint8 alpha) → 8-bit RGB/RGBA, by :func:`quantize_half_up`."""
    out = quantize_half_up(rgb)
    if alpha is None:
        return Image.fromarray(out, "RGB")
    return Image.fromarray(np.dstack([out, alpha]), "RGBA")


def thumbnail(image: Image.Image, side: int) -> Image.Image:
    """An 8-bit RGB/RGBA copy whose long side is at most ``side`` (never enlarged), resized by Pillow
    itself (Lanczos after its integer ``reduce`` step): no float copy of the full image."""
    small = upright(image)  # always a new image, so thumbnail() may work in place
    if small.mode in _WIDE_GREY:
        small = to_pil(to_float_rgb(small)[0])
    elif small.mode not in ("RGB", "RGBA"):
        small = small.convert("RGBA" if small.has_transparency_data else "RGB")
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    return small
