"""Plain JSON endpoints with fal's exact request and response bodies, served beside the page.

``POST /api/post-processing`` and ``POST /api/aura-sr`` take fal's request body (``image_url`` and
``dissolve_image_url`` as http(s) URLs or ``data:`` URIs) and answer fal's output JSON, each image's
``url`` a ``data:`` URI of the PNG. Errors are FastAPI-shaped,
``{"detail": [{"loc": ["body", <field>], "msg": <message>, "type": ...}]}``: 422 for an invalid field,
400 for an image that cannot be decoded, and the statuses of :mod:`studio.fetch` for URLs.
"""
from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import effects
import upscaler

from . import limits, results
from common.errors import InputError
from .fetch import fetch_url
from imaging import decode_image, encode_png

_AURA_DEFAULTS = {"upscaling_factor": 4, "overlapping_tiles": False, "checkpoint": "v1"}


def post_processing(body: object) -> dict:
    """fal ``post-processing``: request body → ``{"images": [Image]}``."""
    _require_image_url(body)
    try:
        params = effects.validate(body)
    except effects.ValidationError as err:
        raise InputError(err.field, str(err).removeprefix(f"{err.field}: "), 422) from None
    image = _image(params["image_url"], "image_url")
    second = None
    if params["enable_dissolve"]:
        if not params["dissolve_image_url"]:
            raise InputError("dissolve_image_url", "enable_dissolve is true but no second image URL "
                                                   "was given", 422)
        second = _image(params["dissolve_image_url"], "dissolve_image_url")
    result = effects.process(image, params, dissolve_image=second)
    return {"images": [_record(result)]}


def aura_sr(body: object) -> dict:
    """fal ``aura-sr``: request body → ``{"image": Image, "timings": {...}}``."""
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object", 422)
    for key in body:
        if key not in {"image_url", "seed", *_AURA_DEFAULTS}:
            raise InputError(key, "unknown field; allowed: image_url, upscaling_factor, "
                                  "overlapping_tiles, checkpoint, seed", 422)
    options = {**_AURA_DEFAULTS, **{k: v for k, v in body.items() if k != "image_url"}}
    if isinstance(options["upscaling_factor"], str) and options["upscaling_factor"].isdigit():
        options["upscaling_factor"] = int(options["upscaling_factor"])  # fal's enum is the string "4"
    try:
        upscaler.check_options(**options)
    except upscaler.OptionError as err:
        raise InputError(err.field, err.detail, 422) from None
    _require_image_url(body)
    image = _image(body["image_url"], "image_url", upscaler.max_input_pixels())
    try:
        result, timings = upscaler.upscale(image, **options)
    except ValueError as err:
        raise InputError("image_url", str(err), 422) from None
    except upscaler.WeightsUnavailableError as err:
        raise InputError("checkpoint", str(err), 503) from None
    return {"image": _record(result), "timings": timings}


def _require_image_url(body: object) -> None:
    if isinstance(body, dict) and not body.get("image_url"):
        raise InputError("image_url", "is required: an http(s) URL or a data: URI of an image", 422)


def _image(url: object, field: str, max_pixels: int | None = None) -> Image.Image:
    image, _ = decode_image(fetch_url(url, field=field), field=field, max_pixels=max_pixels)
    return image


def _record(image: Image.Image) -> dict:
    png = encode_png(image)
    return results.image_record(png, image.size, url=results.data_uri(png),
                                file_name=results.new_file_name())


def _endpoint(work: Callable[[object], dict], gate: limits.Gate) -> Callable:
    async def handle(request: Request) -> JSONResponse:
        try:
            # Admitted before the body is read, so refused requests never buffer their bodies.
            with gate.admitted():
                body = await limits.read_json(request)
                return JSONResponse(await run_in_threadpool(_running, gate, work, body))
        except limits.Busy as err:
            return JSONResponse({"detail": str(err)}, status_code=err.status,
                                headers={"Retry-After": str(err.retry_after)})
        except InputError as err:
            message = str(err).removeprefix(f"{err.field}: ") if err.field else str(err)
            return _error(err.field or "body", message, err.status)
        except ValueError as err:  # a value refused deeper down (effects, upscaler)
            return _error("body", str(err), 422)
        except MemoryError:
            return JSONResponse({"detail": "the server ran out of memory for this image; try a "
                                           "smaller one"}, status_code=503,
                                headers={"Retry-After": "30"})
    return handle


def _running(gate: limits.Gate, work: Callable[[object], dict], body: object) -> dict:
    """Run ``work`` in one of ``gate``'s slots (shared with the page): fetching, decoding and
    processing all count."""
    with gate.running():
        return work(body)


def _error(field: str, message: str, status: int) -> JSONResponse:
    kind = "value_error" if status == 422 else "input_error"
    return JSONResponse({"detail": [{"loc": ["body", field], "msg": f"{field}: {message}",
                                     "type": kind}]}, status_code=status)


def routes() -> list[Route]:
    """The two JSON routes, for ``demo.launch(app_kwargs={"routes": routes()})``."""
    return [Route("/api/post-processing", _endpoint(post_processing, limits.FULL), methods=["POST"]),
            Route("/api/aura-sr", _endpoint(aura_sr, limits.UPSCALE), methods=["POST"])]
