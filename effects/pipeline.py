"""`process`: a PIL image and a fal request body in, the processed PIL image out."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

import numpy as np
from PIL import Image, ImageOps

from .schema import EFFECTS, Effect
from .validate import ValidationError, validate

# Fields the pipeline resolves itself instead of passing them to the effect function.
_EXTRAS: dict[str, tuple[str, ...]] = {"grain": ("rng",), "dissolve": ("rng", "other")}


def _function(effect: Effect) -> Callable[..., np.ndarray]:
    return getattr(importlib.import_module(f"effects.{effect.key}"), effect.key)


def to_float_rgb(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Split any PIL image into float32 RGB in [0, 1] (H×W×3) and its alpha (H×W uint8) or None.

    EXIF orientation is applied first. 16-bit greyscale (``I;16``, ``I``) keeps its precision:
    it is scaled by 1/65535 rather than squashed to 8 bits. Any image with transparency (RGBA, LA,
    PA, a palette or RGB/L image with a transparent colour) yields its alpha; 8-bit values become
    ``uint8 / 255`` in float32 (as the reference nodes and AuraSR's ``ToTensor``); CMYK and other
    modes go through Pillow's RGB conversion.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.asarray(image, dtype=np.float32)
        if image.mode != "F":
            grey /= np.float32(65535.0)
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
        return np.ascontiguousarray(rgb), None
    alpha = None
    if image.has_transparency_data:
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"))
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    return rgb, alpha


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """float32 RGB in [0, 1] (+ optional uint8 alpha) → 8-bit RGB/RGBA, rounding half up."""
    out = np.empty(rgb.shape, np.uint8)
    np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5, out=out, casting="unsafe")
    if alpha is None:
        return Image.fromarray(out, "RGB")
    return Image.fromarray(np.dstack([out, alpha]), "RGBA")


def apply(rgb: np.ndarray, params: Mapping, *, dissolve_image: np.ndarray | None = None,
          rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply the enabled effects of an already *validated* request, in the fixed order.

    ``rgb`` is float32 H×W×3 in [0, 1]; ``dissolve_image`` the second image as float32 of the same
    shape (required when dissolve is enabled). ``rng`` feeds grain and dissolve, in that order.
    """
    rng = rng if rng is not None else np.random.default_rng(params.get("seed"))
    extras = {"rng": rng, "other": dissolve_image}
    for effect in EFFECTS:
        if not params[effect.enable.name]:
            continue
        kwargs = {f.name: params[f.name] for f in effect.fields if f.kind != "image"}
        kwargs.update({k: extras[k] for k in _EXTRAS.get(effect.key, ())})
        rgb = _function(effect)(rgb, **kwargs)
    return rgb


def process(image: Image.Image, params: Mapping, *,
            dissolve_image: Image.Image | None = None) -> Image.Image:
    """Validate ``params`` (a fal request body) and return a new, processed image of the same size.

    Any input mode works; alpha passes through untouched (Decision (g)) and the result is RGB or RGBA,
    8 bits per channel. Enabling dissolve without ``dissolve_image`` raises a ``ValueError``. With the
    same ``seed`` the output is the same, byte for byte.
    """
    params = validate(params)
    rgb, alpha = to_float_rgb(image)
    other = None
    if params["enable_dissolve"]:
        if dissolve_image is None:
            raise ValidationError("dissolve_image_url",
                                  "enable_dissolve is true but no second image was given")
        other, _ = to_float_rgb(dissolve_image)
        if other.shape != rgb.shape:
            size = (rgb.shape[1], rgb.shape[0])
            other, _ = to_float_rgb(to_pil(other).resize(size, Image.LANCZOS))
    return to_pil(apply(rgb, params, dissolve_image=other), alpha)
