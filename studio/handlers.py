"""The functions behind the page's events and the two public Gradio endpoints.

Public endpoints: :func:`process` (``/process``, fal's ``post-processing``) and :func:`upscale`
(``/upscale``, fal's ``aura-sr``). Everything else is private page plumbing: the decoded source (the
live views themselves are served by :mod:`studio.live`), the request snippets and preset file, the
preset gallery, presets and the steps after Process. Errors reach the page as ``gr.Error``
(readable, names the field) and leave every control as the user set it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import gradio as gr
from PIL import Image

import effects
import upscaler
from effects.schema import SEED
from upscaler.schema import CHECKPOINT, OVERLAPPING_TILES, UPSCALING_FACTOR
from upscaler.schema import SEED as UPSCALE_SEED

from . import limits, live, presets, results, snippets
from common.errors import InputError
from imaging import decode_image, thumbnail
from .ui import value_updates

#: Long side of the before/after comparison (screen-sized; the full file is downloaded separately).
COMPARE_SIDE = 1024
#: Long side of the preset gallery's thumbnails.
GALLERY_SIDE = 160


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
    try:
        return live.request_for(settings, seed, preview=False)
    except effects.ValidationError as err:
        raise gr.Error(str(err)) from None


# -- the page's source and what follows the settings -----------------------------------------------

def load_source(path: str | None) -> tuple[str, str]:
    """Decode an upload once; keep it and its ≤512 px proxy for the live views (:mod:`studio.live`).

    Returns the source's token for the page's script ("" when the image was removed) and the
    image's size as text (``"3000 × 2000 px"``).
    """
    if path is None:
        return "", ""
    image = _decode(path, "image_url")
    token = live.SOURCES.add(live.Source(image=image, proxy=thumbnail(image, live.PROXY_SIDE),
                                         name=Path(path).stem))
    return token, f"{image.width} × {image.height} px"


def load_dissolve(path: str | None, token: str) -> None:
    """Decode the second dissolve image once, for the preview (shrunk like the proxy) and the loupe."""
    source = live.SOURCES.get(token)
    if source is None:
        return
    second = None if path is None else _decode(path, "dissolve_image_url")
    source.dissolve = second
    source.dissolve_proxy = None if second is None else thumbnail(second, live.PROXY_SIDE)
    source.loupe = None
    live.SOURCES.trim()


def request_panel(panel_open: bool, seed: float | None = None, request: gr.Request = None,
                  **settings) -> tuple:
    """The three "Show the request" snippets (pointing at the server the page came from) for the
    current settings, exactly what Process would send, dissolve included; nothing while the panel
    is closed. Runs per committed change (slider release, a choice, a preset), not per drag tick."""
    if not panel_open:
        return (gr.skip(),) * 3
    params = _validated(settings, seed)
    origin = request.headers.get("origin") if request is not None else None
    return snippets.request_snippets(presets.to_preset(params, None if seed is None else
                                                       params[SEED.name]),
                                     origin or snippets.SERVER)


def save_preset(seed: float | None = None, **settings) -> str:
    """"Save preset": the current settings (dissolve included) as a preset file, written on click."""
    params = _validated(settings, seed)
    return write_preset_file(presets.to_preset(params, None if seed is None else params[SEED.name]))


def write_preset_file(preset: Mapping) -> str:
    """The preset as a small JSON file in Gradio's cache, for the download button."""
    text = json.dumps(preset, indent=2) + "\n"
    path = results.cache_folder() / hashlib.sha1(text.encode()).hexdigest()[:16] / "preset.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path)


def preset_gallery(token: str, builtin: Mapping[str, dict]) -> list | None:
    """Every built-in preset rendered on a :data:`GALLERY_SIDE` thumbnail of the user's image."""
    source = live.SOURCES.get(token)
    if source is None:
        return None
    small = thumbnail(source.proxy, GALLERY_SIDE)
    scale = max(small.size) / max(source.image.size)
    looks = []
    for name, preset in builtin.items():
        params = live.request_for(preset, preset.get(SEED.name), preview=True)
        params = live.without_missing_dissolve(params, source, full=False)
        looks.append((live.opaque(effects.process(small, params, scale=scale,
                                                  dissolve_image=source.dissolve_proxy)), name))
    return looks


def pick_from_gallery(index: int, builtin: Mapping[str, dict]) -> list:
    """Set all controls from the preset of the ``index``-th thumbnail, and name it in the picker."""
    name = list(builtin)[index]
    return [*preset_updates(builtin[name]), gr.update(value=name)]

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
    gr.Info("Cancelled. Settings and earlier results are kept.")


# -- page-only steps around Process ---------------------------------------------------------------

def check_upscale_input(token: str, enabled: bool) -> None:
    """Before Process spends time on the effects: refuse an image the upscaler will not take."""
    source = live.SOURCES.get(token)
    if not enabled or source is None:
        return
    pixels, cap = source.image.width * source.image.height, upscaler.max_input_pixels()
    if pixels > cap:
        raise gr.Error(f"Upscale 4x with AuraSR: the image is {source.image.width}×"
                       f"{source.image.height} ({pixels / 1e6:.2f} MP); the upscaler takes at most "
                       f"{cap / 1e6:.2f} MP here (AURASR_MAX_INPUT_PIXELS). Untick the upscale or "
                       "use a smaller image.")


def upscale_after_process(result_path: str | None, enabled: bool,
                          checkpoint: str, overlapping_tiles: bool, seed: float | None,
                          request: gr.Request = None, progress: gr.Progress = gr.Progress()):
    """When "Upscale 4x with AuraSR" is ticked, upscale the processed result in place. If the
    upscale cannot run (no weights, cancelled, too large), the effects result stays, with a note."""
    if not enabled or result_path is None:
        return gr.skip(), gr.skip()
    image = _decode(result_path, "result", trusted=True)
    try:
        result, timings = _run_upscaler(image, upscaling_factor=4,
                                        overlapping_tiles=overlapping_tiles, checkpoint=checkpoint,
                                        seed=None if seed is None else int(seed),
                                        session=request.session_hash if request else None,
                                        progress=progress)
    except gr.Error as err:
        gr.Warning(f"Not upscaled: {str(err.message).rstrip('.')}. The effects result is shown.")
        return gr.skip(), gr.skip()
    path, image_record = results.save_png(result)
    return str(path), {"images": [image_record], "timings": timings}


def compare(token: str, result_path: str | None, preset_name: str | None):
    """Screen-sized before/after pair and the download button for the full-resolution PNG, named
    after the source and the look (``coffee-cinematic.png``)."""
    source = live.SOURCES.get(token)
    if source is None or result_path is None:
        return gr.skip(), gr.skip()
    after = thumbnail(_decode(result_path, "result", trusted=True), COMPARE_SIDE)
    before = thumbnail(source.image, COMPARE_SIDE).resize(after.size, Image.Resampling.LANCZOS)
    return (before, after), gr.update(value=str(_named_copy(Path(result_path),
                                                            download_name(source.name, preset_name))),
                                      visible=True)


def download_name(source_name: str, preset_name: str | None) -> str:
    """``coffee`` + ``Cinematic`` → ``coffee-cinematic.png``; no preset → ``coffee-edited.png``."""
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return f"{slug(source_name) or 'image'}-{slug(preset_name or '') or 'edited'}.png"


def _named_copy(path: Path, name: str) -> Path:
    """The result under a download name, next to it (a hard link where the file system allows)."""
    target = path.parent / name
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return target



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
