"""The functions behind the page's events and the two public Gradio endpoints.

Public endpoints: :func:`process` (``/process``, fal's ``post-processing``) and :func:`upscale`
(``/upscale``, fal's ``aura-sr``). Everything else is private page plumbing: the preview proxy, the
live preview, presets and the optional upscale after Process. Errors reach the page as ``gr.Error``
(readable, names the field) and leave every control as the user set it.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import gradio as gr
from PIL import Image

import effects
import upscaler
from effects.schema import FIELDS, SEED
from upscaler.schema import CHECKPOINT, OVERLAPPING_TILES, UPSCALING_FACTOR
from upscaler.schema import SEED as UPSCALE_SEED

from . import limits, presets, results, snippets
from common.errors import InputError
from imaging import decode_image, thumbnail
from .ui import value_updates

#: Long side of the live-preview proxy, in pixels.
PROXY_SIDE = 512
#: Long side of the before/after comparison (screen-sized; the full file is downloaded separately).
COMPARE_SIDE = 1024
#: Image fields arrive as files, not as parts of the request body.
_IMAGE_FIELDS = {f.name for f in FIELDS if f.kind == "image"}
#: Seed of the live preview when the user left ``seed`` empty, so grain does not flicker per tick.
PREVIEW_SEED = 0


class Cancelled(Exception):
    """The user pressed Cancel while an upscale was running."""


# Cancel requests by Gradio session. Gradio's ``cancels=`` stops the event in the page at once, but
# the worker thread only stops when the upscaler's progress callback sees this flag.
_cancel_flags: dict[str, threading.Event] = {}


def _decode(path: str | None, field: str, max_pixels: int | None = None, *,
            trusted: bool = False) -> Image.Image:
    """Decode an upload (capped) or, ``trusted``, a result this server wrote (no caps: a 4x upscale
    of a large photo is bigger than any upload may be)."""
    if path is None:
        raise gr.Error(f"{field}: no image given; upload one first")
    try:
        image, warnings = decode_image(path, field=field, max_pixels=max_pixels, trusted=trusted)
    except InputError as err:
        raise gr.Error(str(err)) from None
    for warning in warnings:
        gr.Warning(warning)
    return image


def _validated(settings: Mapping, seed: float | None) -> dict:
    request = {k: v for k, v in settings.items() if k not in _IMAGE_FIELDS}
    if seed is not None:
        request[SEED.name] = seed
    try:
        return effects.validate(request)
    except effects.ValidationError as err:
        raise gr.Error(str(err)) from None


def _opaque(image: Image.Image) -> Image.Image:
    """RGB for JPEG transport: transparent areas shown over light grey."""
    if image.mode != "RGBA":
        return image
    background = Image.new("RGBA", image.size, (236, 236, 236, 255))
    return Image.alpha_composite(background, image).convert("RGB")


# -- live preview ----------------------------------------------------------------------------------

def make_proxy(path: str | None) -> Image.Image | None:
    """Decode an upload once and keep a ≤512 px 8-bit copy for the live preview."""
    return None if path is None else thumbnail(_decode(path, "image_url"), PROXY_SIDE)


def make_dissolve_proxy(path: str | None) -> Image.Image | None:
    """The second dissolve image, decoded once and shrunk like the main proxy."""
    return None if path is None else thumbnail(_decode(path, "dissolve_image_url"), PROXY_SIDE)


def render_preview(proxy: Image.Image | None, dissolve_proxy: Image.Image | None,
                   seed: float | None = None, request: gr.Request = None, **settings) -> tuple:
    """The live preview of the current settings on the proxy, plus what follows those settings:
    the three "Show the request" snippets (pointing at the server the page came from) and the
    current preset file for "Save preset".

    Dissolve without a second image is left out of the preview (Process reports it as an error).
    """
    params = _validated(settings, PREVIEW_SEED if seed is None else seed)
    if params["enable_dissolve"] and dissolve_proxy is None:
        params = params.replace(enable_dissolve=False)
    preview = None
    if proxy is not None:
        preview = _opaque(effects.process(proxy, params, dissolve_image=dissolve_proxy))
    preset = presets.to_preset(params, None if seed is None else params[SEED.name])
    origin = request.headers.get("origin") if request is not None else None
    return (preview, *snippets.request_snippets(preset, origin or snippets.SERVER),
            write_preset_file(preset))


def write_preset_file(preset: Mapping) -> str:
    """The preset as a small JSON file in Gradio's cache, for the download button."""
    text = json.dumps(preset, indent=2) + "\n"
    path = results.cache_folder() / hashlib.sha1(text.encode()).hexdigest()[:16] / "preset.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path)


# -- public endpoints -----------------------------------------------------------------------------

def process(image_url: str | None, dissolve_image_url: str | None = None, seed: float | None = None,
            **settings) -> tuple[str, dict]:
    """fal's ``post-processing``: apply the enabled effects at full resolution.

    Parameters are fal's fields under fal's names (``image_url`` and ``dissolve_image_url`` as image
    files) plus the optional ``seed``. Returns the lossless PNG and fal's output JSON
    ``{"images": [{url, content_type, file_name, file_size, width, height}]}``.
    """
    params = _validated(settings, seed)
    with limits.FULL.running():  # shared with the JSON and fal APIs; waits its turn
        image = _decode(image_url, "image_url")
        second = None
        if params["enable_dissolve"]:
            if dissolve_image_url is None:
                raise gr.Error("dissolve_image_url: enable_dissolve is on but no second image was "
                               "given; upload one in the Dissolve section or turn dissolve off")
            second = _decode(dissolve_image_url, "dissolve_image_url")
        try:
            result = effects.process(image, params, dissolve_image=second)
        except effects.ValidationError as err:
            raise gr.Error(str(err)) from None
        path, record = results.save_png(result)
    return str(path), {"images": [record]}


def upscale(image_url: str | None, upscaling_factor: int = UPSCALING_FACTOR.default,
            overlapping_tiles: bool = OVERLAPPING_TILES.default, checkpoint: str = CHECKPOINT.default,
            seed: float | None = UPSCALE_SEED.default, request: gr.Request = None,
            progress: gr.Progress = gr.Progress()) -> tuple[str, dict]:
    """fal's ``aura-sr``: upscale 4x with AuraSR.

    Parameters are the fields of :mod:`upscaler.schema` under fal's names (``image_url`` as an image
    file) plus the optional ``seed``, checked by :func:`upscaler.validate` with its field-named
    messages. Returns the PNG and ``{"image": {url, content_type, file_name, file_size, width,
    height}, "timings": {...}}``. The page shows a progress bar per tile with an estimate of the time
    left.
    """
    try:
        options = upscaler.validate({"upscaling_factor": upscaling_factor, "seed": seed,
                                     "overlapping_tiles": overlapping_tiles, "checkpoint": checkpoint})
    except upscaler.ValidationError as err:
        raise gr.Error(str(err)) from None
    image = _decode(image_url, "image_url", upscaler.max_input_pixels())
    result, timings = _run_upscaler(image, session=request.session_hash if request else None,
                                    progress=progress, **options)
    path, record = results.save_png(result)
    return str(path), {"image": record, "timings": timings}


def _run_upscaler(image: Image.Image, *, session: str | None, progress: Callable, **options
                  ) -> tuple[Image.Image, dict]:
    flag = _cancel_flags.setdefault(session, threading.Event()) if session else threading.Event()
    flag.clear()
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        if flag.is_set():
            raise Cancelled
        elapsed = time.perf_counter() - start
        eta = f", about {elapsed / done * (total - done):.0f} s left" if done else ""
        progress((done, total), desc=f"AuraSR tile {done}/{total}{eta}", unit="tiles")

    def downloading(done: int, total: int) -> None:
        if flag.is_set():
            raise Cancelled
        progress((done, total or None), desc=f"Downloading AuraSR {options['checkpoint']} weights "
                                             f"(once): {done / 1e9:.2f} of {total / 1e9:.2f} GB")

    progress((0, None), desc="Loading AuraSR…")
    try:
        with limits.UPSCALE.running():
            upscaler.preload(options["checkpoint"], progress=downloading)
            return upscaler.upscale(image, progress=report, **options)
    except Cancelled:
        raise gr.Error("Upscale cancelled.") from None
    except (ValueError, upscaler.WeightsUnavailableError) as err:
        raise gr.Error(str(err)) from None
    finally:
        if session:
            _cancel_flags.pop(session, None)


def cancel(request: gr.Request) -> None:
    """Ask the running upscale of this browser session to stop at its next tile."""
    if request is not None and request.session_hash in _cancel_flags:
        _cancel_flags[request.session_hash].set()


# -- page-only steps after Process ----------------------------------------------------------------

def upscale_after_process(result_path: str | None, enabled: bool,
                          checkpoint: str, overlapping_tiles: bool, seed: float | None,
                          request: gr.Request = None, progress: gr.Progress = gr.Progress()):
    """When "Upscale 4x with AuraSR" is ticked, upscale the processed result in place."""
    if not enabled or result_path is None:
        return gr.skip(), gr.skip()
    image = _decode(result_path, "result", trusted=True)
    result, timings = _run_upscaler(image, upscaling_factor=4, overlapping_tiles=overlapping_tiles,
                                    checkpoint=checkpoint, seed=None if seed is None else int(seed),
                                    session=request.session_hash if request else None,
                                    progress=progress)
    path, image_record = results.save_png(result)
    return str(path), {"images": [image_record], "timings": timings}


def compare(source_path: str | None, result_path: str | None):
    """Screen-sized before/after pair and the download button for the full-resolution PNG."""
    if source_path is None or result_path is None:
        return gr.skip(), gr.skip()
    result = _decode(result_path, "result", trusted=True)
    before = thumbnail(_decode(source_path, "image_url"), COMPARE_SIDE)
    after = thumbnail(result, COMPARE_SIDE)
    before = before.resize(after.size, Image.Resampling.LANCZOS)
    return (before, after), gr.update(value=result_path, visible=True)


# -- presets --------------------------------------------------------------------------------------

def preset_updates(preset: Mapping) -> list:
    """Updates for every schema field (fal order) and then the seed, from a preset body."""
    settings = presets.full_settings(preset)
    seed = preset.get(SEED.name)
    return [*value_updates(settings), gr.update(value=seed)]


def reset_settings() -> list:
    """Every control back to fal's default, the seed emptied and the preset picker cleared."""
    return [*preset_updates({}), gr.update(value=None)]


def load_named_preset(name: str | None, builtin: Mapping[str, dict]) -> list:
    """Set all controls from a built-in preset (fields it does not name go back to fal's default)."""
    return preset_updates(builtin.get(name, {}))


def load_preset_file(path: str | None) -> list:
    """Set all controls from an uploaded preset JSON and clear the preset picker; a broken file
    changes nothing."""
    try:
        preset = presets.read_preset(Path(path).read_bytes(), source=Path(path).name)
    except (InputError, OSError) as err:
        raise gr.Error(str(err)) from None
    return [*preset_updates(preset), gr.update(value=None)]
