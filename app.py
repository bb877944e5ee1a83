"""Post-processing Studio: fal's ``post-processing`` and ``aura-sr`` endpoints as a Gradio app.

The page (live preview, presets, process, upscale), the Gradio API endpoints ``/process`` and
``/upscale``, the plain JSON endpoints ``POST /api/post-processing`` and ``POST /api/aura-sr``, and
fal's own protocol under ``/fal/`` (:mod:`studio.fal`: queue, run, storage, webhooks, API keys), all
on one server. ``python app.py`` serves on ``GRADIO_SERVER_NAME``:``GRADIO_SERVER_PORT`` (default
127.0.0.1:7860), over https with ``STUDIO_SSL_CERTFILE``/``STUDIO_SSL_KEYFILE``; tests import ``demo``
and call :func:`launch`. No model is loaded and no data directory is touched before it is needed.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import gradio as gr

import effects
import upscaler
from effects.schema import EFFECTS, FIELDS, SEED
from common.env import ConfigError
from studio import api, fal, handlers, limits, live, presets, ui
from studio.components import FieldNumber, ImageUpload
from upscaler.schema import OPTIONS as UPSCALE_OPTIONS, SEED as UPSCALE_SEED

ROOT = Path(__file__).resolve().parent
BUILTIN_PRESETS, preset_problems = presets.load_builtin()
for problem in preset_problems:
    logging.getLogger(__name__).warning("preset skipped: %s", problem)
EXAMPLES = [[str(path)] for path in sorted((ROOT / "examples").glob("*.png"))]

def pick_look(evt: gr.SelectData) -> list:
    """A click in the preset gallery (Gradio passes ``evt`` by this type hint, which a
    ``functools.partial`` would hide)."""
    return handlers.pick_from_gallery(evt.index, BUILTIN_PRESETS)


THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")
CSS = (ROOT / "studio" / "style.css").read_text(encoding="utf-8")
HEAD = ui.page_head()

with gr.Blocks(title="Post-processing Studio", fill_width=True, delete_cache=(1800, 3600)) as demo:
    gr.Markdown("# Post-processing Studio\nfal's `post-processing` effects with a live preview, "
                "and AuraSR 4x upscaling. Every control is also an API parameter: see "
                "*Show the request*.", elem_id="title")
    # The decoded source lives in studio.live under this token; the page's script sends it along.
    token = gr.Textbox(visible=False, elem_id="source-token")
    panel_open = gr.State(False)

    with gr.Tab("Post-processing"):
        with gr.Row(equal_height=False, elem_id="studio-row"):
            with gr.Column(scale=5, min_width=360, elem_id="controls-column"):
                source = ImageUpload(label="Image", height=280, sources=["upload", "clipboard"],
                                     elem_id="source")
                source_size = gr.Markdown(elem_id="source-size")
                gr.Examples(EXAMPLES, [source], label="Sample photos", cache_examples=False)
                with gr.Row(elem_id="presets", equal_height=True):
                    preset_pick = gr.Dropdown(list(BUILTIN_PRESETS), value=None, label="Preset",
                                              info="Built-in looks; every control stays editable.",
                                              scale=3, elem_id="preset-pick")
                    with gr.Column(scale=2, min_width=150):
                        reset = gr.Button("↺ Reset to defaults", size="sm", elem_id="reset")
                        load_preset = gr.UploadButton("Load preset…", file_types=[".json"],
                                                      size="sm", elem_id="load-preset")
                        save_preset = gr.Button("Save preset", size="sm", elem_id="save-preset")
                        # Filled on "Save preset" and clicked by the page: the file is written
                        # when asked for, not per settings change.
                        preset_file = gr.DownloadButton("preset.json", visible="hidden",
                                                        elem_id="preset-file")
                gallery = gr.Gallery(label="Looks on your image (click to apply)", columns=5,
                                     height=240, allow_preview=False, format="jpeg",
                                     interactive=False, elem_id="preset-gallery")
                if preset_problems:
                    gr.Markdown("**Skipped preset files:**\n" +
                                "\n".join(f"- `{problem}`" for problem in preset_problems))
                controls, _ = ui.build_effect_controls()
            with gr.Column(scale=6, min_width=420, elem_id="live-column"):
                gr.HTML(ui.PREVIEW_HTML, elem_id="preview", js_on_load=None)
                gr.HTML(ui.LOUPE_HTML, elem_id="loupe", js_on_load=None)
                with gr.Group():
                    with gr.Row():
                        upscale_on = gr.Checkbox(label="Upscale 4x with AuraSR", elem_id="upscale-on")
                        checkpoint = gr.Radio(list(upscaler.CHECKPOINTS), value="v1", label="Checkpoint")
                        overlapping = gr.Checkbox(label="Overlapping tiles (no seams, 2x time)")
                    seed = ui.make_seed_control()
                with gr.Row():
                    run = gr.Button("Process full resolution", variant="primary", elem_id="run")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
                gr.HTML(ui.OUTDATED_HTML, elem_id="outdated", js_on_load=None)
                comparison = gr.ImageSlider(label="Before / after", interactive=False, max_height=460,
                                            elem_id="compare")
                download = gr.DownloadButton("⬇ Download PNG", visible=False, variant="primary",
                                             elem_id="download")
                with gr.Accordion("Full-resolution result and fal output JSON", open=False,
                                  elem_id="result-panel"):
                    result = gr.Image(label="Result (PNG)", type="filepath", format="png",
                                      interactive=False, elem_id="result")
                    output_json = gr.JSON(label="fal output", elem_id="output-json")
                with gr.Accordion("Show the request", open=False, elem_id="request-panel") as request_panel:
                    request_json = gr.Code(language="json", label="fal request body")
                    request_python = gr.Code(language="python", label="gradio_client → /process")
                    request_curl = gr.Code(language="shell", label="curl → POST /api/post-processing")

    with gr.Tab("Upscale (AuraSR)"):
        gr.Markdown("fal's `aura-sr`: 4x super-resolution with the AuraSR GAN (checkpoint v1 = "
                    "`fal/AuraSR`, v2 = `fal/AuraSR-v2`, downloaded on first use). On a CPU each 64×64 "
                    "tile takes seconds, so inputs are capped (512×512 by default, "
                    "`AURASR_MAX_INPUT_PIXELS`); a GPU takes much larger images.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                up_source = ImageUpload(label="Image", height=280, sources=["upload", "clipboard"],
                                        elem_id="up-source")
                gr.Examples(EXAMPLES, [up_source], label="Sample photos", cache_examples=False)
                # The options' controls come from upscaler's schema table (elem_id = fal's name).
                up_options = [ui.make_control(field) for field in UPSCALE_OPTIONS
                              if field is not UPSCALE_SEED]
                up_seed = FieldNumber(value=UPSCALE_SEED.default, precision=0,
                                    minimum=UPSCALE_SEED.minimum, maximum=UPSCALE_SEED.maximum,
                                    label=UPSCALE_SEED.label, info=UPSCALE_SEED.description,
                                    elem_id="up-seed")
                with gr.Row():
                    up_run = gr.Button("Upscale", variant="primary", elem_id="up-run")
                    up_stop = gr.Button("Cancel", variant="stop")
            with gr.Column(scale=6):
                up_result = gr.Image(label="Upscaled (PNG)", type="filepath", format="png",
                                     interactive=False, elem_id="up-result")
                up_json = gr.JSON(label="fal output")

    # -- wiring ------------------------------------------------------------------------------------
    settings = {f.name: controls[f.name] for f in FIELDS if f.kind != "image"}
    field_controls = [controls[f.name] for f in FIELDS]
    private = {"api_visibility": "private", "show_progress": "hidden"}
    # JS-only events: the page's script (studio/page.js) renders the live views from these values
    # through studio.live's route, outside Gradio's queue (see studio/live.py for why).
    live_inputs = [token, *settings.values(), seed]
    render = {"fn": None, "inputs": live_inputs, "js": "(...v) => studio.render(...v)", **private}
    # The request snippets follow committed changes (not drag ticks), and only while shown.
    follow = {"fn": handlers.request_panel, "inputs": [panel_open],
              "inputs_kwargs": {**settings, SEED.name: seed},
              "outputs": [request_json, request_python, request_curl], "queue": False, **private}

    # gr.Number shows and sends 0 for an initial None; empty it in the page so "empty = random" holds.
    demo.load(None, None, [seed, up_seed], js="() => [null, null]")

    # Live preview on every user edit; moving a control of a disabled effect enables the effect.
    for effect in EFFECTS:
        enable, params = controls[effect.enable.name], [settings[f.name] for f in effect.fields
                                                         if f.name in settings]
        gr.on([c.input for c in params], None, live_inputs, enable, trigger_mode="always_last",
              js=f"(...v) => studio.edit(v, {json.dumps(effect.enable.name)})", **private)
    gr.on([controls[e.enable.name].input for e in EFFECTS] + [seed.input], None, live_inputs,
          trigger_mode="always_last", js="(...v) => studio.edit(v)", **private)
    sliders = [c for c in settings.values() if isinstance(c, gr.Slider)]
    gr.on([c.release for c in sliders], **{**render, "js": "(...v) => studio.release(...v)"})
    gr.on([c.release for c in sliders] + [c.input for c in settings.values() if c not in sliders]
          + [seed.input], **follow)
    save_preset.click(handlers.save_preset, None, preset_file, inputs_kwargs={**settings, SEED.name: seed},
                      queue=False, **private).success(
        None, None, None, js="() => document.querySelector('#preset-file').click()", **private)
    request_panel.expand(lambda: True, None, panel_open, queue=False, **private).then(**follow)
    request_panel.collapse(lambda: False, None, panel_open, queue=False, **private)

    # Uploads are decoded once (studio.live keeps them); then one preview and the preset gallery.
    source.change(handlers.load_source, source, [token, source_size], **private).then(**render).then(
        functools.partial(handlers.preset_gallery, builtin=BUILTIN_PRESETS), token, gallery,
        concurrency_id="preview", concurrency_limit=2, **private)
    controls["dissolve_image_url"].change(handlers.load_dissolve,
                                          [controls["dissolve_image_url"], token], None,
                                          **private).then(
        **{**render, "js": "(...v) => studio.refresh(...v)"})
    for effect in EFFECTS:  # a mark on the accordion of every enabled effect, however it was set
        # Marked in the page: a backend update of the Accordion re-renders its children and can
        # put a slider the user just moved back to its previous value.
        controls[effect.enable.name].change(
            None, controls[effect.enable.name], None,
            js=f"(on) => studio.mark({json.dumps(effect.key)}, on)", **private)
    for mode, dependents in ui.DEPENDENTS.items():  # one event per control (see visibility_update)
        for field in dependents:
            controls[mode].change(functools.partial(ui.visibility_update, field), controls[mode],
                                  controls[field.name], queue=False, **private)

    # Presets: set every control at once, then render ONE preview. (The picker's .input fires twice
    # per pick in Gradio 6.31; .select fires once, for user picks only.)
    preset_targets = [*field_controls, seed]
    preset_pick.select(functools.partial(handlers.load_named_preset, builtin=BUILTIN_PRESETS),
                      preset_pick, preset_targets, **private).then(**render).then(**follow)
    gallery.select(pick_look, None, [*preset_targets, preset_pick], **private).then(**render).then(**follow)
    load_preset.upload(handlers.load_preset_file, load_preset, [*preset_targets, preset_pick],
                       **private).then(**render).then(**follow)
    reset.click(handlers.reset_settings, None, [*preset_targets, preset_pick],
                **private).then(**render).then(**follow)

    # Process: a quick check of the upscale option, the public /process endpoint, then (page only)
    # the optional upscale and the comparison, which the page marks outdated after any change.
    run.click(None, live_inputs, None, js="(...v) => studio.processing(...v)", **private)
    checking = run.click(handlers.check_upscale_input, [token, upscale_on], None, queue=False,
                         **private)
    processing = checking.success(handlers.process, [source],
                                  inputs_kwargs={**{f.name: controls[f.name] for f in FIELDS},
                                                 SEED.name: seed},
                                  outputs=[result, output_json], api_name="process",
                                  show_progress_on=[comparison], concurrency_id="process",
                                  concurrency_limit=1)
    upscaling = processing.success(handlers.upscale_after_process,
                                   [result, upscale_on, checkpoint, overlapping, seed],
                                   [result, output_json], api_visibility="private",
                                   show_progress_on=[comparison], concurrency_id="upscale",
                                   concurrency_limit=1)
    upscaling.success(handlers.compare, [token, result, preset_pick], [comparison, download],
                      **private).success(None, None, None, js="() => studio.processed()", **private)

    # Upscale tab: the public /upscale endpoint.
    up_running = up_run.click(handlers.upscale, [up_source, *up_options, up_seed],
                              [up_result, up_json], api_name="upscale", concurrency_id="upscale",
                              concurrency_limit=1)
    for button in (stop, up_stop):
        # Queued (its own concurrency group, so it never waits for the work it cancels): a
        # queue=False event cannot show gr.Info, and Cancel is information, not an error. The
        # upscale after Process is stopped by its flag, not cancelled in the page, so the chain
        # goes on and shows the effects result.
        button.click(handlers.cancel, None, None, cancels=[processing, up_running], **private)


# Bounded: beyond this many waiting events Gradio answers "queue is full" instead of growing memory.
demo.queue(max_size=limits.GRADIO_QUEUE_SIZE)


def tls_options() -> dict:
    """https when ``STUDIO_SSL_CERTFILE`` and ``STUDIO_SSL_KEYFILE`` are set (both or neither).

    ``ssl_verify=False`` only turns off the check of Gradio's start-up request to *itself*: it
    verifies against the default trust store, which does not hold a private CA's certificate.
    """
    cert, key = (os.environ.get(name, "").strip() for name in ("STUDIO_SSL_CERTFILE", "STUDIO_SSL_KEYFILE"))
    if bool(cert) != bool(key):
        raise ConfigError("STUDIO_SSL_CERTFILE and STUDIO_SSL_KEYFILE must be set together")
    return {"ssl_certfile": cert, "ssl_keyfile": key, "ssl_verify": False} if cert else {}


def launch(**options) -> tuple:
    """Serve the page, the Gradio API, the JSON endpoints and fal's routes (https with
    :func:`tls_options`); ``options`` go to ``demo.launch``."""
    effects.keep_freed_buffers()  # a server runs the pipeline over and over: reuse image buffers
    app_kwargs = {"routes": [*api.routes(), *fal.routes(), *live.routes()],
                  "middleware": [*api.middleware(), *fal.middleware()], "lifespan": fal.lifespan}
    return demo.launch(theme=THEME, css=CSS, head=HEAD, footer_links=["api", "gradio"],
                       max_file_size="40mb", app_kwargs=app_kwargs, **{**tls_options(), **options})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch()
