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
import logging
import os
from pathlib import Path

import gradio as gr

import effects
import upscaler
from effects.schema import EFFECTS, FIELDS, SEED
from common.env import ConfigError
from studio import api, fal, handlers, limits, presets, ui
from studio.components import FieldNumber, ImageUpload
from upscaler.schema import OPTIONS as UPSCALE_OPTIONS, SEED as UPSCALE_SEED

ROOT = Path(__file__).resolve().parent
BUILTIN_PRESETS, preset_problems = presets.load_builtin()
for problem in preset_problems:
    logging.getLogger(__name__).warning("preset skipped: %s", problem)
EXAMPLES = [[str(path)] for path in sorted((ROOT / "examples").glob("*.png"))]

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")
CSS = (ROOT / "studio" / "style.css").read_text(encoding="utf-8")

with gr.Blocks(title="Post-processing Studio", fill_width=True, delete_cache=(1800, 3600)) as demo:
    gr.Markdown("# Post-processing Studio\nfal's `post-processing` effects with a live preview, "
                "and AuraSR 4x upscaling. Every control is also an API parameter: see "
                "*Show the request*.", elem_id="title")
    proxy, dissolve_proxy = gr.State(), gr.State()

    with gr.Tab("Post-processing"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=360):
                source = ImageUpload(label="Image", height=280, sources=["upload", "clipboard"],
                                     elem_id="source")
                gr.Examples(EXAMPLES, [source], label="Sample photos", cache_examples=False)
                with gr.Row(elem_id="presets", equal_height=True):
                    preset_pick = gr.Dropdown(list(BUILTIN_PRESETS), value=None, label="Preset",
                                              info="Built-in looks; every control stays editable.",
                                              scale=3, elem_id="preset-pick")
                    with gr.Column(scale=2, min_width=150):
                        reset = gr.Button("↺ Reset to defaults", size="sm", elem_id="reset")
                        load_preset = gr.UploadButton("Load preset…", file_types=[".json"],
                                                      size="sm", elem_id="load-preset")
                        save_preset = gr.DownloadButton(
                            "Save preset", value=handlers.write_preset_file(presets.to_preset(
                                presets.full_settings({}))), size="sm", elem_id="save-preset")
                if preset_problems:
                    gr.Markdown("**Skipped preset files:**\n" +
                                "\n".join(f"- `{problem}`" for problem in preset_problems))
                controls, accordions = ui.build_effect_controls()
            with gr.Column(scale=6, min_width=420):
                preview = gr.Image(label="Live preview (≤512 px proxy)", format="jpeg", interactive=False,
                                   height=460, buttons=["fullscreen"], elem_id="preview")
                with gr.Group():
                    with gr.Row():
                        upscale_on = gr.Checkbox(label="Upscale 4x with AuraSR", elem_id="upscale-on")
                        checkpoint = gr.Radio(list(upscaler.CHECKPOINTS), value="v1", label="Checkpoint")
                        overlapping = gr.Checkbox(label="Overlapping tiles (no seams, 2x time)")
                    seed = ui.make_seed_control()
                with gr.Row():
                    run = gr.Button("Process full resolution", variant="primary", elem_id="run")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
                comparison = gr.ImageSlider(label="Before / after", interactive=False, max_height=460,
                                            elem_id="compare")
                download = gr.DownloadButton("⬇ Download PNG", visible=False, variant="primary",
                                             elem_id="download")
                with gr.Accordion("Full-resolution result and fal output JSON", open=False):
                    result = gr.Image(label="Result (PNG)", type="filepath", format="png",
                                      interactive=False, elem_id="result")
                    output_json = gr.JSON(label="fal output", elem_id="output-json")
                with gr.Accordion("Show the request", open=False, elem_id="request-panel"):
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
    preview_step = {"fn": handlers.render_preview, "inputs": [proxy, dissolve_proxy],
                    "inputs_kwargs": {**settings, SEED.name: seed},
                    "outputs": [preview, request_json, request_python, request_curl, save_preset],
                    "concurrency_id": "preview", "concurrency_limit": 2, **private}

    # gr.Number shows and sends 0 for an initial None; empty it in the page so "empty = random" holds.
    demo.load(None, None, [seed, up_seed], js="() => [null, null]")

    # Live preview: any user edit re-renders the proxy; "always_last" never drops the final value.
    gr.on([c.input for c in (*settings.values(), seed)], trigger_mode="always_last", **preview_step)
    # Uploads are decoded once into proxies; programmatic changes then render one preview.
    source.change(handlers.make_proxy, source, proxy, **private).then(**preview_step)
    controls["dissolve_image_url"].change(handlers.make_dissolve_proxy, controls["dissolve_image_url"],
                                          dissolve_proxy, **private).then(**preview_step)
    for effect in EFFECTS:  # a mark on the accordion of every enabled effect, however it was set
        controls[effect.enable.name].change(functools.partial(ui.accordion_label, effect),
                                            controls[effect.enable.name], accordions[effect.key],
                                            queue=False, **private)
    for mode, dependents in ui.DEPENDENTS.items():
        controls[mode].change(functools.partial(ui.visibility_updates, mode), controls[mode],
                              [controls[f.name] for f in dependents], queue=False, **private)

    # Presets: set every control at once, then render ONE preview.
    preset_targets = [*field_controls, seed]
    preset_pick.input(functools.partial(handlers.load_named_preset, builtin=BUILTIN_PRESETS),
                      preset_pick, preset_targets, **private).then(**preview_step)
    load_preset.upload(handlers.load_preset_file, load_preset, [*preset_targets, preset_pick],
                       **private).then(**preview_step)
    reset.click(handlers.reset_settings, None, [*preset_targets, preset_pick],
                **private).then(**preview_step)

    # Process: the public /process endpoint, then (page only) the optional upscale and the comparison.
    processing = run.click(handlers.process, [source],
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
    upscaling.success(handlers.compare, [source, result], [comparison, download], **private)

    # Upscale tab: the public /upscale endpoint.
    up_running = up_run.click(handlers.upscale, [up_source, *up_options, up_seed],
                              [up_result, up_json], api_name="upscale", concurrency_id="upscale",
                              concurrency_limit=1)
    for button in (stop, up_stop):
        button.click(handlers.cancel, None, None, cancels=[processing, upscaling, up_running],
                     queue=False, **private)


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
    app_kwargs = {"routes": [*api.routes(), *fal.routes()],
                  "middleware": [*api.middleware(), *fal.middleware()], "lifespan": fal.lifespan}
    return demo.launch(theme=THEME, css=CSS, footer_links=["api", "gradio"], max_file_size="40mb",
                       app_kwargs=app_kwargs, **{**tls_options(), **options})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch()
