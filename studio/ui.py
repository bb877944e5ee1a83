"""Gradio controls generated from the schema table in :mod:`effects.schema`.

One accordion per effect, its ``enable_<key>`` checkbox first, then one control per field with the
table's range, step, choices, default and fal's description as info text. Nothing here restates the
schema: a new field in the table appears in the page, the Gradio API and the presets by itself.
"""
from __future__ import annotations

from collections.abc import Mapping

import gradio as gr

from effects.schema import DEFAULTS, EFFECTS, FIELDS, SEED, Effect, Field

from .components import FieldDropdown, FieldNumber, FieldRadio, FieldSlider, ImageUpload

#: Enums with at most this many choices are radio buttons (all options visible); longer ones drop down.
_RADIO_MAX = 3


def make_control(field: Field) -> gr.components.Component:
    """The Gradio component for one schema field, initialised to fal's default.

    Integer sliders use ``precision=0`` (whole steps in the page). Values from the API reach
    :func:`effects.validate` as sent (see :mod:`studio.components`), which refuses them with the same
    field-named message as the JSON API. ``image`` fields are optional image uploads.
    """
    common = {"label": field.label, "info": field.description, "elem_id": field.name,
              "visible": field.shown_when is None or _shown(field, DEFAULTS)}
    if field.kind == "bool":
        return gr.Checkbox(value=field.default, **common)
    if field.kind in ("int", "float"):
        return FieldSlider(field.minimum, field.maximum, value=field.default, step=field.step,
                           precision=0 if field.kind == "int" else None, **common)
    if field.kind == "enum":
        widget = FieldRadio if len(field.choices) <= _RADIO_MAX else FieldDropdown
        return widget(list(field.choices), value=field.default, **common)
    if field.kind == "image":
        del common["info"]  # gr.Image has no info text; its label says what it is for
        return ImageUpload(field=field.name, sources=["upload", "clipboard"], height=160, **common)
    raise ValueError(f"{field.name}: no control for kind {field.kind!r}")


def build_effect_controls() -> tuple[dict[str, gr.components.Component], dict[str, gr.Accordion]]:
    """Render the 13 effect accordions in application order; return controls by fal name and
    accordions by effect key. Must be called inside a Blocks context."""
    controls: dict[str, gr.components.Component] = {}
    accordions: dict[str, gr.Accordion] = {}
    for effect in EFFECTS:
        with gr.Accordion(effect.label, open=False, elem_id=f"effect-{effect.key}") as accordion:
            for field in (effect.enable, *effect.fields):
                controls[field.name] = make_control(field)
        accordions[effect.key] = accordion
    return controls, accordions


def accordion_label(effect: Effect, enabled: bool) -> gr.Accordion:
    """The effect's accordion title, marked while the effect is enabled."""
    return gr.Accordion(label=f"● {effect.label}" if enabled else effect.label)


def make_seed_control(elem_id: str = SEED.name) -> gr.Number:
    """Our optional ``seed`` extension: empty means a fresh random draw per run."""
    return FieldNumber(value=SEED.default, precision=0, minimum=SEED.minimum, maximum=SEED.maximum,
                       label=SEED.label, info=SEED.description, elem_id=elem_id)


def _shown(field: Field, values: Mapping[str, object]) -> bool:
    mode_field, modes = field.shown_when
    return values[mode_field] in modes


#: Fields whose visibility depends on another field, grouped by that (mode) field.
DEPENDENTS: dict[str, tuple[Field, ...]] = {
    mode: tuple(f for f in FIELDS if f.shown_when is not None and f.shown_when[0] == mode)
    for mode in dict.fromkeys(f.shown_when[0] for f in FIELDS if f.shown_when is not None)}


def visibility_updates(mode_field: str, mode: str) -> list[dict]:
    """``gr.update(visible=...)`` for each dependent of ``mode_field`` (order of ``DEPENDENTS``)."""
    return [gr.update(visible=_shown(f, {mode_field: mode})) for f in DEPENDENTS[mode_field]]


def value_updates(values: Mapping[str, object]) -> list[dict]:
    """One update per schema field (fal order): the value and, for mode-dependent fields, the
    visibility that goes with the new mode. Image fields are left as they are (``gr.skip()``)."""
    updates = []
    for f in FIELDS:
        if f.kind == "image":
            updates.append(gr.skip())
        elif f.shown_when is not None:
            updates.append(gr.update(value=values[f.name], visible=_shown(f, values)))
        else:
            updates.append(gr.update(value=values[f.name]))
    return updates
