"""`process`: a PIL image and a fal request body in, the processed PIL image out."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from PIL import Image

from imaging import in_colour_space_of, metadata, to_float_rgb, to_pil

from .schema import EFFECTS
from .validate import Request, ValidationError, validate


def streams(seed: int | None) -> dict[str, np.random.Generator]:
    """Independent random streams of one seed, one per effect that draws: enabling grain never
    changes dissolve's pattern. ``seed=None`` draws fresh entropy."""
    grain, dissolve = np.random.SeedSequence(seed).spawn(2)
    return {"grain": np.random.default_rng(grain), "dissolve": np.random.default_rng(dissolve)}


def apply(rgb: np.ndarray, request: Request, *, dissolve_image: np.ndarray | None = None,
          seed: int | None = None, scale: float = 1.0,
          on_effect: Callable[[str], None] | None = None) -> np.ndarray:
    """Apply the enabled effects of a validated ``request``, in the fixed order of the schema.

    ``rgb`` is H×W×3 in [0, 1] (float64 is converted to float32 first); ``dissolve_image`` the second
    image, float32 of the same shape (required when dissolve is enabled). ``seed`` defaults to the
    request's own. ``scale`` is the size of ``rgb`` relative to the image the parameters are meant for
    (1 = full resolution); effects that declare ``"scale"`` in their needs adapt pixel-sized
    parameters to it. ``on_effect(key)`` is called before each enabled effect runs (servers log
    progress and stop cancelled requests there, by raising).
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    rngs = streams(request.get("seed") if seed is None else seed)
    for effect in EFFECTS:
        if not request[effect.enable.name]:
            continue
        kwargs = {f.name: request[f.name] for f in effect.fields if f.kind != "image"}
        extras = {"rng": rngs.get(effect.key), "other": dissolve_image, "scale": scale}
        kwargs.update({need: extras[need] for need in effect.needs})
        if on_effect is not None:
            on_effect(effect.key)
        rgb = effect.function(rgb, **kwargs)
    return rgb


def process(image: Image.Image, params: Mapping, *, dissolve_image: Image.Image | None = None,
            scale: float = 1.0, on_effect: Callable[[str], None] | None = None) -> Image.Image:
    """Validate ``params`` (a fal request body, or a :class:`Request` as is) and return a new,
    processed image of the same size.

    Any input mode works; alpha passes through untouched (docs/decisions.md (g)) and the result is
    RGB or RGBA, 8 bits per channel, upright, carrying ``image``'s RGB ICC profile and EXIF
    (orientation 1) in its ``info`` (:func:`imaging.metadata`). Enabling dissolve without
    ``dissolve_image`` raises a ``ValueError``. With the same ``seed`` the output is the same, byte
    for byte. ``scale`` (≤ 1) says ``image`` is a downscaled proxy of the image the parameters are
    meant for (a 512 px proxy of a 3000 px photo: ``512 / 3000``): the result then looks like the
    full-resolution result downscaled to this size. ``on_effect`` is passed to :func:`apply`.
    """
    request = validate(params)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    rgb, alpha = to_float_rgb(image)
    other = None
    if request["enable_dissolve"]:
        if dissolve_image is None:
            raise ValidationError("dissolve_image_url",
                                  "enable_dissolve is true but no second image was given")
        other, _ = to_float_rgb(in_colour_space_of(dissolve_image, image))  # mixed in one space
        if other.shape != rgb.shape:
            size = (rgb.shape[1], rgb.shape[0])
            other, _ = to_float_rgb(to_pil(other).resize(size, Image.LANCZOS))
    result = to_pil(apply(rgb, request, dissolve_image=other, scale=scale, on_effect=on_effect), alpha)
    result.info.update(metadata(image))
    return result
