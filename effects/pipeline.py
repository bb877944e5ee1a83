"""`process`: a PIL image and a fal request body in, the processed PIL image out."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from PIL import Image

from imaging import in_colour_space_of, metadata, quantize_half_up, to_float_rgb, to_pil

from . import proxy
from .bands import apply_in_bands, to_float_rgb_in_bands, upright_for_bands
from .schema import EFFECTS, Effect
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
    parameters to it. The image is processed in bands on every core (:mod:`effects.bands`); the
    result is identical, bit for bit, to applying each effect function to the whole image.
    ``on_effect(key)`` is called before each enabled effect runs (servers log progress and stop
    cancelled requests there, by raising); in bands, before the stage of bands that runs it.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    calls = _calls(request, dissolve_image, seed, scale)
    # A proxy (scale < 1) is small and goes whole through effects.proxy: its scaled effects read
    # other neighbourhoods and global statistics than the band plan provides.
    if scale == 1:
        return apply_in_bands(rgb, calls, on_effect=on_effect)
    return proxy.apply(rgb, calls, scale, on_effect=on_effect)


def _calls(request: Request, dissolve_image: np.ndarray | None, seed: int | None,
           scale: float) -> list[tuple[Effect, dict]]:
    """Each enabled effect with the keyword arguments of its function: its fields and needs."""
    rngs = streams(request.get("seed") if seed is None else seed)
    calls = []
    for effect in EFFECTS:
        if not request[effect.enable.name]:
            continue
        kwargs = {f.name: request[f.name] for f in effect.fields if f.kind != "image"}
        extras = {"rng": rngs.get(effect.key), "other": dissolve_image, "scale": scale}
        kwargs.update({need: extras[need] for need in effect.needs})
        calls.append((effect, kwargs))
    return calls


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
    rgb, alpha = to_float_rgb_in_bands(image)
    size = (rgb.shape[1], rgb.shape[0])
    other = None
    if request["enable_dissolve"]:
        if dissolve_image is None:
            raise ValidationError("dissolve_image_url",
                                  "enable_dissolve is true but no second image was given")
        # Kept as an 8-bit image (upright, mixed in one colour space with the main image): the
        # band pipeline converts its rows band by band instead of holding a float copy.
        other = upright_for_bands(in_colour_space_of(dissolve_image, image))
        if other.size != size:
            other = to_pil(to_float_rgb(other)[0]).resize(size, Image.LANCZOS)
    # Straight to 8 bits in bands, with rgb as a work buffer: no float copy of the result.
    out = np.empty((*rgb.shape[:2], 3 if alpha is None else 4), np.uint8)
    if scale == 1:
        apply_in_bands(rgb, _calls(request, other, None, scale), into=out, overwrite_input=True,
                       on_effect=on_effect)
    else:
        other = None if other is None else to_float_rgb(other)[0]
        calls = _calls(request, other, None, scale)
        out[..., :3] = quantize_half_up(proxy.apply(rgb, calls, scale, on_effect=on_effect))
    if alpha is not None:
        out[..., 3] = alpha
    result = Image.fromarray(out, "RGB" if alpha is None else "RGBA")
    result.info.update(metadata(image))
    return result
