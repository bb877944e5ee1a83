"""The one schema table of fal's `fal-ai/post-processing` request body.

Every field of fal's input (except the main `image_url`) is declared here once, with fal's exact name,
type, default and enum choices, the ranges of docs/decisions.md §3, a UI label, fal's own description and
the effect group it belongs to. Validation, the UI, the Gradio and JSON APIs, presets and the docs are
all generated from this table; nothing else restates it.

``EFFECTS`` is also the fixed order in which enabled effects are applied (docs/decisions.md §5, (b)).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from common.fields import Field

from .blur import BLUR_TYPES, blur
from .chromatic import DIRECTIONS, chromatic
from .color_correction import color_correction
from .desaturate import DESATURATE_WEIGHTS, desaturate
from .dissolve import dissolve
from .dodge_burn import DODGE_BURN_MODES, dodge_burn
from .glow import glow
from .grain import GRAIN_STYLES, grain
from .parabolize import parabolize
from .sharpen import SHARPEN_MODES, sharpen
from .solarize import solarize
from .tint import TINT_MODES, tint
from .vignette import vignette


@dataclass(frozen=True)
class Effect:
    """One effect: its key, label, fields and the function that applies it.

    ``enable`` is the ``enable_<key>`` flag; ``fields`` are the effect's own parameters in fal's order.
    ``function(image, **fields, **needs)`` returns the new float32 image; ``needs`` names the extra
    inputs the pipeline passes besides the fields: ``"rng"`` (a ``numpy.random.Generator``),
    ``"other"`` (the second image, float32 of the same shape) and ``"scale"`` (the image's size
    relative to the one the parameters are meant for; see :func:`effects.pipeline.apply`).
    """

    key: str
    label: str
    enable: Field
    fields: tuple[Field, ...]
    function: Callable[..., np.ndarray]
    needs: tuple[str, ...] = ()


def _flag(key: str, description: str) -> Field:
    return Field(f"enable_{key}", "bool", False, "Enable", description)


def _num(name, kind, default, lo, hi, step, label, description, shown_when=None, *,
         ui_maximum=None) -> Field:
    return Field(name, kind, default, label, description, lo, hi, step, shown_when=shown_when,
                 ui_maximum=ui_maximum)


def _enum(name, default, choices, label, description) -> Field:
    return Field(name, "enum", default, label, description, choices=tuple(choices))


_SMART = ("sharpen_mode", ("smart",))

EFFECTS: tuple[Effect, ...] = (
    Effect("grain", "Film grain", _flag("grain", "Enable film grain effect"), (
        _num("grain_intensity", "float", 0.4, 0, 1, 0.01, "Intensity",
             "Film grain intensity (when enabled)"),
        _num("grain_scale", "float", 10.0, 1, 100, 0.1, "Scale", "Film grain scale (when enabled)"),
        _enum("grain_style", "modern", GRAIN_STYLES,
              "Style", "Style of film grain to apply"),
    ), grain, ("rng", "scale")),
    Effect("color_correction", "Color correction",
           _flag("color_correction", "Enable color correction"), (
        _num("temperature", "float", 0.0, -100, 100, 1, "Temperature", "Color temperature adjustment"),
        _num("brightness", "float", 0.0, -100, 100, 1, "Brightness", "Brightness adjustment"),
        _num("contrast", "float", 0.0, -100, 100, 1, "Contrast", "Contrast adjustment"),
        _num("saturation", "float", 0.0, -100, 100, 1, "Saturation", "Saturation adjustment"),
        _num("gamma", "float", 1.0, 0.2, 2.2, 0.01, "Gamma", "Gamma adjustment"),
    ), color_correction),
    Effect("chromatic", "Chromatic aberration",
           _flag("chromatic", "Enable chromatic aberration"), (
        _num("red_shift", "int", 0, -20, 20, 1, "Red shift", "Red channel shift amount"),
        _enum("red_direction", "horizontal", DIRECTIONS, "Red direction", "Red channel shift direction"),
        _num("green_shift", "int", 0, -20, 20, 1, "Green shift", "Green channel shift amount"),
        _enum("green_direction", "horizontal", DIRECTIONS, "Green direction",
              "Green channel shift direction"),
        _num("blue_shift", "int", 0, -20, 20, 1, "Blue shift", "Blue channel shift amount"),
        _enum("blue_direction", "horizontal", DIRECTIONS, "Blue direction",
              "Blue channel shift direction"),
    ), chromatic, ("scale",)),
    Effect("blur", "Blur", _flag("blur", "Enable blur effect"), (
        _enum("blur_type", "gaussian", BLUR_TYPES, "Type", "Type of blur to apply"),
        _num("blur_radius", "int", 3, 0, 31, 1, "Radius", "Blur radius"),
        _num("blur_sigma", "float", 1.0, 0.1, 10, 0.1, "Sigma", "Sigma for Gaussian blur",
             ("blur_type", ("gaussian",))),
    ), blur, ("scale",)),
    Effect("vignette", "Vignette", _flag("vignette", "Enable vignette effect"), (
        # Above 1 the corners are black already: the page's slider ends there, fal's range stays.
        _num("vignette_strength", "float", 0.5, 0, 10, 0.01, "Strength",
             "Vignette strength (when enabled)", ui_maximum=1),
    ), vignette),
    Effect("parabolize", "Parabolize", _flag("parabolize", "Enable parabolize effect"), (
        _num("parabolize_coeff", "float", 1.0, -10, 10, 0.01, "Coefficient", "Parabolize coefficient"),
        _num("vertex_x", "float", 0.5, 0, 1, 0.01, "Vertex X", "Vertex X position"),
        _num("vertex_y", "float", 0.5, 0, 1, 0.01, "Vertex Y", "Vertex Y position"),
    ), parabolize),
    Effect("tint", "Color tint", _flag("tint", "Enable color tint effect"), (
        _num("tint_strength", "float", 1.0, 0.1, 1, 0.01, "Strength", "Tint strength"),
        _enum("tint_mode", "sepia", tuple(TINT_MODES), "Mode", "Tint color mode"),
    ), tint),
    Effect("dissolve", "Dissolve", _flag("dissolve", "Enable dissolve effect"), (
        Field("dissolve_image_url", "image", "", "Second image", "URL of second image for dissolve"),
        _num("dissolve_factor", "float", 0.5, 0, 1, 0.01, "Factor", "Dissolve blend factor"),
    ), dissolve, ("rng", "other", "scale")),
    Effect("dodge_burn", "Dodge & burn", _flag("dodge_burn", "Enable dodge and burn effect"), (
        _num("dodge_burn_intensity", "float", 0.5, 0, 1, 0.01, "Intensity",
             "Dodge and burn intensity"),
        _enum("dodge_burn_mode", "dodge", DODGE_BURN_MODES, "Mode", "Dodge and burn mode"),
    ), dodge_burn),
    Effect("glow", "Glow", _flag("glow", "Enable glow effect"), (
        _num("glow_intensity", "float", 1.0, 0, 5, 0.01, "Intensity", "Glow intensity"),
        _num("glow_radius", "int", 5, 1, 50, 1, "Radius", "Glow blur radius"),
    ), glow, ("scale",)),
    Effect("sharpen", "Sharpen", _flag("sharpen", "Enable sharpen effect"), (
        _enum("sharpen_mode", "basic", SHARPEN_MODES, "Mode",
              "Type of sharpening to apply"),
        _num("sharpen_radius", "int", 1, 1, 15, 1, "Radius", "Sharpen radius (for basic mode)",
             ("sharpen_mode", ("basic",))),
        _num("sharpen_alpha", "float", 1.0, 0.1, 5, 0.01, "Strength",
             "Sharpen strength (for basic mode)", ("sharpen_mode", ("basic",))),
        _num("noise_radius", "int", 7, 1, 25, 1, "Noise radius", "Noise radius for smart sharpen",
             _SMART),
        _num("preserve_edges", "float", 0.75, 0, 1, 0.01, "Preserve edges",
             "Edge preservation factor", _SMART),
        _num("smart_sharpen_strength", "float", 5.0, 0, 25, 0.1, "Strength",
             "Smart sharpen strength", _SMART),
        _num("smart_sharpen_ratio", "float", 0.5, 0, 1, 0.01, "Blend ratio",
             "Smart sharpen blend ratio", _SMART),
        _num("cas_amount", "float", 0.8, 0, 1, 0.01, "CAS amount", "CAS sharpening amount",
             ("sharpen_mode", ("cas",))),
    ), sharpen, ("scale",)),
    Effect("solarize", "Solarize", _flag("solarize", "Enable solarize effect"), (
        _num("solarize_threshold", "float", 0.5, 0, 1, 0.01, "Threshold", "Solarize threshold"),
    ), solarize),
    Effect("desaturate", "Desaturate", _flag("desaturate", "Enable desaturation effect"), (
        _num("desaturate_factor", "float", 1.0, 0, 1, 0.01, "Factor", "Desaturation factor"),
        _enum("desaturate_method", "luminance (Rec.709)", tuple(DESATURATE_WEIGHTS), "Method",
              "Desaturation method"),
    ), desaturate),
)

#: Our one extension to fal's schema (docs/decisions.md (f)): an optional seed for grain and dissolve.
SEED = Field("seed", "int", None, "Seed",
             "Random seed for grain and dissolve; empty = random. Not part of fal's schema.",
             0, 2**32 - 1, 1)

#: The main image; passed through by validation, never part of a preset.
IMAGE_URL = Field("image_url", "image", None, "Image", "URL of image to process")

#: All 53 fal fields besides ``image_url``, in fal's order (each enable flag before its parameters).
FIELDS: tuple[Field, ...] = tuple(f for e in EFFECTS for f in (e.enable, *e.fields))
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
EFFECTS_BY_KEY: dict[str, Effect] = {e.key: e for e in EFFECTS}
DEFAULTS: dict[str, object] = {f.name: f.default for f in FIELDS}
