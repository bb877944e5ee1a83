"""Gradio controls generated from the schema table in :mod:`effects.schema`.

One accordion per effect, its ``enable_<key>`` checkbox first, then one control per field with the
table's range (the page's slider ends at ``ui_maximum`` where the table gives one), step, choices,
default and fal's description as info text. Nothing here restates the schema: a new field in the table
appears in the page, the Gradio API and the presets by itself.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import gradio as gr

from effects.schema import DEFAULTS, EFFECTS, FIELDS, SEED, Field

from .live import LOUPE_SIDE
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
        return FieldSlider(field.minimum, _slider_end(field, field.default), value=field.default,
                           step=field.step,
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


def visibility_update(field: Field, mode: str) -> dict:
    """``gr.update(visible=...)`` of one mode-dependent field for the new ``mode``; its value is
    left alone. One event per dependent: Gradio takes a list returned for a single output as that
    output's value (a one-item list made ``blur_sigma`` a list when the blur type changed)."""
    return gr.update(visible=_shown(field, {field.shown_when[0]: mode}))


def _slider_end(field: Field, value: float) -> float:
    """The slider's maximum: ``ui_maximum`` unless ``value`` lies beyond it (a preset or an API
    value from fal's full range), then fal's maximum."""
    if field.ui_maximum is None or value <= field.ui_maximum:
        return field.ui_maximum or field.maximum
    return field.maximum


def value_updates(values: Mapping[str, object]) -> list[dict]:
    """One update per schema field (fal order): the value and, for mode-dependent fields, the
    visibility that goes with the new mode. Image fields are left as they are (``gr.skip()``)."""
    updates = []
    for f in FIELDS:
        if f.kind == "image":
            updates.append(gr.skip())
        elif f.shown_when is not None:
            updates.append(gr.update(value=values[f.name], visible=_shown(f, values)))
        elif f.ui_maximum is not None:
            updates.append(gr.update(value=values[f.name], maximum=_slider_end(f, values[f.name])))
        else:
            updates.append(gr.update(value=values[f.name]))
    return updates


# -- the live views (drawn by studio/page.js) --------------------------------------------------------

PREVIEW_HTML = """
<div class="studio-stage">
  <img class="studio-preview-img" alt="Live preview">
  <div id="loupe-mark" hidden></div>
  <span class="studio-before-badge">Before</span>
  <p class="studio-empty">Upload an image: its live preview appears here.</p>
</div>
<div class="studio-toolbar">
  <button id="hold-before" type="button"
          title="Hold (or hold the B key) to see the image without effects">Hold to compare</button>
  <span id="preview-status" role="status"></span>
</div>
<canvas id="histogram" width="256" height="64" aria-label="RGB and luma histogram"></canvas>
<div id="clipping"></div>
"""
LOUPE_HTML = f"""
<div class="studio-loupe-frame"><img alt="1:1 crop of the full-resolution result"></div>
<p id="loupe-status">1:1 view: click the preview to inspect a {LOUPE_SIDE} px spot of the
full-resolution result (grain and sharpening are judged here, not on the proxy).</p>
"""
OUTDATED_HTML = """
<div class="studio-outdated-note" role="status">Outdated: the settings or the image changed
since Process. Process again to update the result.</div>
"""


#: Gradio's container clips with ``overflow: hidden``, which makes it the (never scrolling) scroll box
#: of every sticky element inside it; ``clip`` cuts the same overflow without being a scroll box. In
#: the page's head because Gradio scopes ``launch(css=...)`` rules under its container.
PAGE_STYLE = "@media (min-width: 1024px) { .gradio-container { overflow: clip !important; } }"


def page_head() -> str:
    """The page's ``<head>`` additions: :data:`PAGE_STYLE` and the live views' script."""
    return f"<style>{PAGE_STYLE}</style><script>{page_script()}</script>"


def page_script() -> str:
    """studio/page.js with the names of the values the live-view events pass (token, these, seed)."""
    names = [f.name for f in FIELDS if f.kind != "image"]
    return ((Path(__file__).parent / "page.js").read_text(encoding="utf-8")
            .replace("__LIVE_FIELDS__", json.dumps(names))
            .replace("__LOUPE_SIDE__", str(LOUPE_SIDE)))
