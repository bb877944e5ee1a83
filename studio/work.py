"""Executing one fal request, the same way for every route: ``POST /api/*``, ``/fal/run`` and the queue.

:func:`execute` runs one request body of an app in :data:`APPS` in four steps:

1. **validate** the body against its schema table (:func:`effects.validate` / :func:`upscaler.validate`);
2. **fetch** its image URLs, *outside* any CPU slot, so slow image servers never hold up other
   requests' processing. A URL that is one of this server's own files (an upload, an earlier result)
   is read in-process (:func:`studio.fal.storage.resolve`), never over the network;
3. in the app's slot (:data:`studio.limits.FULL` / :data:`studio.limits.UPSCALE`, shared with the
   page): **decode** (inside the slot, so waiting requests hold compressed bytes, not decoded
   megapixels), **run** the effects or AuraSR, and **store** the result through the caller's
   ``store_image`` (encoding counts as work);
4. answer fal's output JSON.

Each stage is reported as one line through the caller's ``log`` (fetch, decode, each effect, AuraSR's
download and per-tile progress, encode), and ``cancelled()`` is checked at every stage boundary, every
effect and every AuraSR tile (:class:`Cancelled`).

Warnings (e.g. "animated image; only the first frame is used") are added to the answer as a top-level
``"warnings": [str, ...]`` list, only when there are any; fal's clients ignore keys they do not know.
They are also logged.

Errors: only declared client errors are 4xx: :class:`common.errors.InputError` (its own status) and
:class:`common.fields.ValidationError` (422), both field-named. Everything else (a bad ``AURASR_*`` or
``STUDIO_*`` variable or a broken checkpoint, :class:`common.env.ConfigError`; missing weights; memory;
bugs) propagates; :func:`public_error` turns any exception into the status and body to answer, logging
client errors as one line and server faults with their cause, and never puts a local path in a body.
"""
from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable

from PIL import Image

import effects
import upscaler
from common.env import ConfigError
from common.errors import InputError
from common.fields import ValidationError, quote
from imaging import decode_image

from . import limits
from .fetch import fetch_url

POST_PROCESSING, AURA_SR = "fal-ai/post-processing", "fal-ai/aura-sr"
APPS = (POST_PROCESSING, AURA_SR)

logger = logging.getLogger(__name__)

#: Public messages of server faults, by kind; the cause goes to the server log only.
SERVER_FAULTS = {
    "config": (500, "The server is misconfigured; the cause is in the server's log."),
    "weights": (503, "The AuraSR checkpoint is not available on this server right now; the cause is in "
                     "the server's log."),
    "memory": (503, "The server ran out of memory for this image; try a smaller one."),
    "internal": (500, "Internal server error; the cause is in the server's log."),
}


class Cancelled(Exception):
    """``cancelled()`` turned true: the request was stopped at a stage boundary, effect or tile."""


class _Run:
    """One request's progress reporting and cancellation checks, and the warnings it collects."""

    def __init__(self, log: Callable[[str], None], cancelled: Callable[[], bool]):
        self._log, self._cancelled = log, cancelled
        self.warnings: list[str] = []

    def check(self) -> None:
        if self._cancelled():
            raise Cancelled("the request was cancelled")

    def log(self, line: str) -> None:
        self._log(line)

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)
        self._log(f"warning: {warning}")

    def fetch(self, url: object, field: str) -> bytes:
        self.check()
        start = time.perf_counter()
        data = _own_file(url)
        where = "this server's storage" if data is not None else _origin(url)
        if data is None:
            data = fetch_url(url, field=field)
        self.log(f"fetch {field}: {len(data):,} bytes from {where} in {time.perf_counter() - start:.2f} s")
        return data

    def decode(self, data: bytes, field: str, max_pixels: int | None = None) -> Image.Image:
        self.check()
        start = time.perf_counter()
        image, warnings = decode_image(data, field=field, max_pixels=max_pixels)
        for warning in warnings:
            self.warn(warning)
        self.log(f"decode {field}: {image.width}x{image.height} {image.mode} in "
                 f"{time.perf_counter() - start:.2f} s")
        return image

    def slot(self, gate: limits.Gate):
        self.check()
        if gate.waiting:
            self.log(f"waiting for a {gate.kind} slot ({gate.waiting} request(s) ahead)")
        return gate.running()

    def store(self, image: Image.Image, store_image: Callable[[Image.Image], dict]) -> dict:
        self.check()
        start = time.perf_counter()
        record = store_image(image)
        self.log(f"encode: {image.width}x{image.height} PNG, {record.get('file_size', 0):,} bytes in "
                 f"{time.perf_counter() - start:.2f} s")
        return record

    def answer(self, output: dict) -> dict:
        return {**output, "warnings": self.warnings} if self.warnings else output


def execute(app_id: str, body: object, *, log: Callable[[str], None], cancelled: Callable[[], bool],
            store_image: Callable[[Image.Image], dict]) -> dict:
    """Run one request ``body`` of ``app_id`` (one of :data:`APPS`) and return fal's output JSON.

    ``log(line)`` receives one line per stage; ``cancelled()`` is polled at each stage, effect and
    tile (:class:`Cancelled` when it is true); ``store_image(image)`` stores a result and returns its
    fal ``Image`` record (``url``, ``content_type``, ``file_name``, ``file_size``, ``width``,
    ``height``). Raises client errors (:class:`InputError`, :class:`ValidationError`) and server
    faults as they are; see :func:`public_error`.
    """
    run = _Run(log, cancelled)
    if app_id == POST_PROCESSING:
        return run.answer(_post_processing(body, run, store_image))
    if app_id == AURA_SR:
        return run.answer(_aura_sr(body, run, store_image))
    raise InputError(None, f"unknown app {quote(app_id)}; this server runs {', '.join(APPS)}", 404)


def _post_processing(body: object, run: _Run, store_image: Callable[[Image.Image], dict]) -> dict:
    _require_image_url(body)
    params = effects.validate(body)
    if params["enable_dissolve"] and not params["dissolve_image_url"]:
        raise InputError("dissolve_image_url", "enable_dissolve is true but no second image URL was "
                                               "given", 422)
    fields = ["image_url", "dissolve_image_url"] if params["enable_dissolve"] else ["image_url"]
    data = {field: run.fetch(params[field], field) for field in fields}
    with run.slot(limits.FULL):
        images = {field: run.decode(data.pop(field), field) for field in fields}
        enabled = [e.key for e in effects.EFFECTS if params[e.enable.name]]
        run.log(f"effects: {', '.join(enabled) or 'none enabled'}")

        def on_effect(key: str) -> None:
            run.check()
            run.log(f"effect {enabled.index(key) + 1}/{len(enabled)}: {key}")

        result = effects.process(images["image_url"], params,
                                 dissolve_image=images.get("dissolve_image_url"), on_effect=on_effect)
        return {"images": [run.store(result, store_image)]}


def _aura_sr(body: object, run: _Run, store_image: Callable[[Image.Image], dict]) -> dict:
    options = upscaler.validate(body)
    _require_image_url(body)
    data = run.fetch(options.pop("image_url"), "image_url")
    with run.slot(limits.UPSCALE):
        image = run.decode(data, "image_url", upscaler.max_input_pixels())
        del data
        checkpoint = options["checkpoint"]
        run.log(f"loading AuraSR {checkpoint}")
        reported = [-1]

        def downloading(done: int, total: int) -> None:
            run.check()
            tenth = done * 10 // total if total else 0
            if tenth != reported[0]:
                reported[0] = tenth
                run.log(f"downloading AuraSR {checkpoint} weights (once): {done / 1e9:.2f} of "
                        f"{total / 1e9:.2f} GB")

        def tile(done: int, total: int) -> None:
            run.check()
            run.log(f"AuraSR tile {done}/{total}")

        upscaler.preload(checkpoint, progress=downloading)
        result, timings = upscaler.upscale(image, progress=tile, **options)
        return {"image": run.store(result, store_image), "timings": timings}


def _require_image_url(body: object) -> None:
    if isinstance(body, dict) and not body.get("image_url"):
        raise InputError("image_url", "is required: an http(s) URL or a data: URI of an image", 422)


def _own_file(url: object) -> bytes | None:
    """The bytes of one of this server's own file URLs, or None for any other URL."""
    if not isinstance(url, str) or url.startswith("data:"):
        return None
    from studio.fal import storage  # imported here: studio.fal imports this module
    return storage.resolve(url)


def _origin(url: object) -> str:
    """Where a URL points, for the log: the scheme and host only (no path or query, which may carry
    tokens)."""
    if isinstance(url, str) and url.startswith("data:"):
        return "a data: URI"
    try:
        parts = urllib.parse.urlsplit(str(url))
        return f"{parts.scheme}://{parts.hostname}"[:100]
    except ValueError:
        return "a malformed URL"


# -- errors ------------------------------------------------------------------------------------------

def public_error(exc: BaseException) -> tuple[int, dict]:
    """The status and JSON body to answer for ``exc``, logged.

    Client errors: :class:`InputError` (its status) and :class:`ValidationError` (422) become
    FastAPI-shaped ``{"detail": [{"loc": ["body", field], "msg": "field: message", "type": ...}]}``,
    logged as one line. :class:`Cancelled`: 400 ``{"detail": "the request was cancelled"}``. Server faults become ``{"detail": <short public message>}`` with a 5xx (see
    :data:`SERVER_FAULTS`): configuration errors (including broken checkpoints) 500, unavailable
    weights 503, out of memory 503, anything else 500; the cause is logged (with a traceback for
    unexpected ones) and never put in the body.
    """
    if isinstance(exc, (InputError, ValidationError)):
        status = exc.status if isinstance(exc, InputError) else 422
        field = exc.field or "body"
        message = str(exc) if exc.field else f"{field}: {exc}"
        logger.info("refused %d: %s", status, message)
        kind = "value_error" if status == 422 else "input_error"
        return status, {"detail": [{"loc": ["body", field], "msg": message, "type": kind}]}
    if isinstance(exc, Cancelled):
        logger.info("cancelled")
        return 400, {"detail": "the request was cancelled"}
    if isinstance(exc, ConfigError):
        kind = "config"
        logger.error("configuration error: %s", exc)
    elif isinstance(exc, upscaler.WeightsUnavailableError):
        kind = "weights"
        logger.error("AuraSR weights unavailable: %s", exc)
    elif isinstance(exc, MemoryError):
        kind = "memory"
        logger.warning("out of memory while processing a request")
    else:
        kind = "internal"
        logger.error("unexpected error", exc_info=exc)
    status, message = SERVER_FAULTS[kind]
    return status, {"detail": message}
