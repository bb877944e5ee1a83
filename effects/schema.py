"""The one schema table of fal's `fal-ai/post-processing` request body.

Every field of fal's input (except the main `image_url`) is declared here once, with fal's exact name,
type, default and enum choices, the ranges of ``effects.md`` §3, a UI label, fal's own description and
the effect group it belongs to. Validation, the UI, the Gradio and JSON APIs, presets and the docs are
all generated from this table; nothing else restates it.

``EFFECTS`` is also the fixed order in which enabled effects are applied (effects.md §5, Decision (b)).
"""
from __future__ import annotations

from dataclasses import dataclass

from .desaturate import DESATURATE_WEIGHTS
from .tint import TINT_MODES


@dataclass(frozen=True)
class Field:
    """One request field.

    ``kind`` is one of ``"bool"``, ``"int"``, ``"float"``, ``"enum"`` or ``"image"`` (a URL string).
    ``minimum``/``maximum`` are inclusive; ``step`` is the UI slider step. ``shown_when`` names the
    values of the effect's mode field (e.g. ``sharpen_mode``) under which the UI shows this control;
    ``None`` means always.
    """

    name: str
    kind: str
    default: object
    label: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    shown_when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Effect:
    """One effect: its key (module and function name in ``effects/``), label and fields.

    ``enable`` is the ``enable_<key>`` flag; ``fields`` are the effect's own parameters in fal's order.
    """

    key: str
    label: str
    enable: Field
    fields: tuple[Field, ...]


def _flag(key: str, description: str) -> Field:
    return Field(f"enable_{key}", "bool", False, "Enable", description)


def _num(name, kind, default, lo, hi, step, label, description, shown_when=None) -> Field:
    return Field(name, kind, default, label, description, lo, hi, step, shown_when=shown_when)


def _enum(name, default, choices, label, description) -> Field:
    return Field(name, "enum", default, label, description, choices=tuple(choices))


_DIRECTIONS = ("horizontal", "vertical")
_SMART = ("sharpen_mode", ("smart",))

EFFECTS: tuple[Effect, ...] = (
    Effect("grain", "Film grain", _flag("grain", "Enable film grain effect"), (
        _num("grain_intensity", "float", 0.4, 0, 1, 0.01, "Intensity",
             "Film grain intensity (when enabled)"),
        _num("grain_scale", "float", 10.0, 1, 100, 0.1, "Scale", "Film grain scale (when enabled)"),
        _enum("grain_style", "modern", ("modern", "analog", "kodak", "fuji", "cinematic", "newspaper"),
              "Style", "Style of film grain to apply"),
    )),
    Effect("color_correction", "Color correction",
           _flag("color_correction", "Enable color correction"), (
        _num("temperature", "float", 0.0, -100, 100, 1, "Temperature", "Color temperature adjustment"),
        _num("brightness", "float", 0.0, -100, 100, 1, "Brightness", "Brightness adjustment"),
        _num("contrast", "float", 0.0, -100, 100, 1, "Contrast", "Contrast adjustment"),
        _num("saturation", "float", 0.0, -100, 100, 1, "Saturation", "Saturation adjustment"),
        _num("gamma", "float", 1.0, 0.2, 2.2, 0.01, "Gamma", "Gamma adjustment"),
    )),
    Effect("chromatic", "Chromatic aberration",
           _flag("chromatic", "Enable chromatic aberration"), (
        _num("red_shift", "int", 0, -20, 20, 1, "Red shift", "Red channel shift amount"),
        _enum("red_direction", "horizontal", _DIRECTIONS, "Red direction", "Red channel shift direction"),
        _num("green_shift", "int", 0, -20, 20, 1, "Green shift", "Green channel shift amount"),
        _enum("green_direction", "horizontal", _DIRECTIONS, "Green direction",
              "Green channel shift direction"),
        _num("blue_shift", "int", 0, -20, 20, 1, "Blue shift", "Blue channel shift amount"),
        _enum("blue_direction", "horizontal", _DIRECTIONS, "Blue direction",
              "Blue channel shift direction"),
    )),
    Effect("blur", "Blur", _flag("blur", "Enable blur effect"), (
        _enum("blur_type", "gaussian", ("gaussian", "kuwahara"), "Type", "Type of blur to apply"),
        _num("blur_radius", "int", 3, 0, 31, 1, "Radius", "Blur radius"),
        _num("blur_sigma", "float", 1.0, 0.1, 10, 0.1, "Sigma", "Sigma for Gaussian blur",
             ("blur_type", ("gaussian",))),
    )),
    Effect("vignette", "Vignette", _flag("vignette", "Enable vignette effect"), (
        _num("vignette_strength", "float", 0.5, 0, 10, 0.01, "Strength",
             "Vignette strength (when enabled)"),
    )),
    Effect("parabolize", "Parabolize", _flag("parabolize", "Enable parabolize effect"), (
        _num("parabolize_coeff", "float", 1.0, -10, 10, 0.01, "Coefficient", "Parabolize coefficient"),
        _num("vertex_x", "float", 0.5, 0, 1, 0.01, "Vertex X", "Vertex X position"),
        _num("vertex_y", "float", 0.5, 0, 1, 0.01, "Vertex Y", "Vertex Y position"),
    )),
    Effect("tint", "Color tint", _flag("tint", "Enable color tint effect"), (
        _num("tint_strength", "float", 1.0, 0.1, 1, 0.01, "Strength", "Tint strength"),
        _enum("tint_mode", "sepia", tuple(TINT_MODES), "Mode", "Tint color mode"),
    )),
    Effect("dissolve", "Dissolve", _flag("dissolve", "Enable dissolve effect"), (
        Field("dissolve_image_url", "image", "", "Second image", "URL of second image for dissolve"),
        _num("dissolve_factor", "float", 0.5, 0, 1, 0.01, "Factor", "Dissolve blend factor"),
    )),
    Effect("dodge_burn", "Dodge & burn", _flag("dodge_burn", "Enable dodge and burn effect"), (
        _num("dodge_burn_intensity", "float", 0.5, 0, 1, 0.01, "Intensity",
             "Dodge and burn intensity"),
        _enum("dodge_burn_mode", "dodge", (
            "dodge", "burn", "dodge_and_burn", "burn_and_dodge", "color_dodge", "color_burn",
            "linear_dodge", "linear_burn"), "Mode", "Dodge and burn mode"),
    )),
    Effect("glow", "Glow", _flag("glow", "Enable glow effect"), (
        _num("glow_intensity", "float", 1.0, 0, 5, 0.01, "Intensity", "Glow intensity"),
        _num("glow_radius", "int", 5, 1, 50, 1, "Radius", "Glow blur radius"),
    )),
    Effect("sharpen", "Sharpen", _flag("sharpen", "Enable sharpen effect"), (
        _enum("sharpen_mode", "basic", ("basic", "smart", "cas"), "Mode",
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
    )),
    Effect("solarize", "Solarize", _flag("solarize", "Enable solarize effect"), (
        _num("solarize_threshold", "float", 0.5, 0, 1, 0.01, "Threshold", "Solarize threshold"),
    )),
    Effect("desaturate", "Desaturate", _flag("desaturate", "Enable desaturation effect"), (
        _num("desaturate_factor", "float", 1.0, 0, 1, 0.01, "Factor", "Desaturation factor"),
        _enum("desaturate_method", "luminance (Rec.709)", tuple(DESATURATE_WEIGHTS), "Method",
              "Desaturation method"),
    )),
)

#: Our one extension to fal's schema (Decision (f)): an optional seed for grain and dissolve.
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
