"""The one schema table of fal's `fal-ai/aura-sr` request body.

Every field is declared here once, with fal's name, type, default, choices and description (the seed
document ``fal-aura-sr-api.txt`` is the contract), plus our ``seed`` extension. :func:`validate`, the
Upscale tab's controls, the Gradio ``/upscale`` signature and the field-named error messages are all
derived from it.

``upscaling_factor`` is fal's enum ``UpscalingFactor(Xs)`` with the one value 4: numbers, as in fal's
example body; the string ``"4"`` is accepted too (fal's documentation shows the default as ``"4"``).
"""
from __future__ import annotations

from collections.abc import Mapping

from common.fields import Field, ValidationError, coerce, suggestion

from .tiling import SCALE
from .weights import REPOS

CHECKPOINTS = tuple(REPOS)
UPSCALING_FACTORS = (SCALE,)

IMAGE_URL = Field("image_url", "image", None, "Image", "URL of the image to upscale.")
UPSCALING_FACTOR = Field("upscaling_factor", "enum", SCALE, "Upscaling factor",
                         "Upscaling factor. More coming soon.", choices=UPSCALING_FACTORS)
OVERLAPPING_TILES = Field("overlapping_tiles", "bool", False, "Overlapping tiles",
                          "Whether to use overlapping tiles for upscaling. Setting this to true helps "
                          "remove seams but doubles the inference time.")
CHECKPOINT = Field("checkpoint", "enum", "v1", "Checkpoint",
                   "Checkpoint to use for upscaling. More coming soon.", choices=CHECKPOINTS)
#: Our extension to fal's schema: seeds the per-tile style latents and input noise.
SEED = Field("seed", "int", None, "Seed",
             "Random seed for the style latents and input noise; empty = random. Not part of fal's "
             "schema.", 0, 2**32 - 1, 1)

#: The request in fal's order, then the seed: the order of the Gradio ``/upscale`` parameters.
FIELDS: tuple[Field, ...] = (IMAGE_URL, UPSCALING_FACTOR, OVERLAPPING_TILES, CHECKPOINT, SEED)
#: The options of :func:`upscaler.upscale` (every field but the image).
OPTIONS: tuple[Field, ...] = FIELDS[1:]
_BY_NAME = {f.name: f for f in FIELDS}


def validate(params: Mapping) -> dict:
    """A complete, typed aura-sr request: ``params`` checked field by field, fal's defaults filled in.

    Returns every option of :data:`OPTIONS` (``seed`` None when absent or None) and ``image_url``
    when given (it is fetched by the server, not checked here). Raises
    :class:`common.fields.ValidationError` naming the field: unknown keys (with the closest valid
    name), wrong types, values outside an enum or range.
    """
    if not isinstance(params, Mapping):
        raise ValidationError("body", f"must be a JSON object of fields, got {type(params).__name__}")
    for key in params:
        if key not in _BY_NAME:
            raise ValidationError(str(key)[:100], f"unknown field{suggestion(str(key), list(_BY_NAME))}")
    out = {f.name: f.default if params.get(f.name) is None else coerce(f, params[f.name])
           for f in OPTIONS}
    if IMAGE_URL.name in params:
        out[IMAGE_URL.name] = coerce(IMAGE_URL, params[IMAGE_URL.name])
    return out
