"""The page's live views, served by a plain route instead of Gradio's queue: preview, before, 1:1 loupe.

Why a route: a slider drag sends a preview request per pointer move. Through Gradio's queue each one
is a join + server-sent-events round trip whose answer is written to a temp file and fetched again by
URL, and the page's reactive store re-renders every output of the event. Measured on the 2-core test
machine that caps the preview at 4–6 updates/s with the browser's main thread 40–45% busy. Here one
``POST /studio/preview`` answers the JPEG bytes directly, with the preview's histogram in a header;
the page's script (``studio/page.js``) keeps one request in flight and always sends the latest
settings next, so the preview keeps up with the hand and the final position always renders.

Each uploaded source is decoded once (:func:`studio.handlers.load_source`) and kept here under an
unguessable token (the page holds it in a hidden textbox): the full image for the loupe and the before
thumbnail, its ≤512 px proxy for the preview, and the second dissolve image. The store is bounded by
memory (``STUDIO_PAGE_MEMORY_MB``, default 1024): the least recently used sources go first.

Request body: ``{"token", "settings": {fal field: value}, "seed", "view": "preview" | "before" |
"loupe", "at": [x, y]}`` (``at``: the loupe's centre as fractions of the image's width and height).
Answers: ``image/jpeg`` (preview only: ``X-Histogram``, JSON of :func:`histogram`, and
``X-Full-Size``), 422 for invalid settings naming the field, 404 for an unknown token (the page
asks for the image again). At most ``STUDIO_PREVIEW_CONCURRENCY`` (2) previews render at once; a
loupe takes a full-resolution slot (:data:`studio.limits.FULL`), shared with Process and the APIs.
"""
from __future__ import annotations

import io
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import effects
from common.env import env_number
from common.errors import InputError
from common.fields import quote
from effects.schema import FIELDS, SEED

from . import limits

#: Long side of the live-preview proxy, in pixels.
PROXY_SIDE = 512
#: Side of the square 1:1 crop the loupe shows, in full-resolution pixels.
LOUPE_SIDE = 320
#: Seed of the live preview when the user left ``seed`` empty, so grain does not flicker per tick.
PREVIEW_SEED = 0
#: Bins of the preview histogram (of 256 levels).
HISTOGRAM_BINS = 64
JPEG_QUALITY = 88
#: Image fields arrive as files, not as parts of the settings.
IMAGE_FIELDS = {f.name for f in FIELDS if f.kind == "image"}

#: Previews rendered at once, all pages together; the others wait (each page keeps one request in
#: flight, so the waiting is bounded by the open pages).
PREVIEW = limits.Gate("preview", env_number("STUDIO_PREVIEW_CONCURRENCY", 2, minimum=1))


@dataclass
class Source:
    """One page's decoded images. ``proxy`` is the full image shrunk to :data:`PROXY_SIDE`."""

    image: Image.Image
    proxy: Image.Image
    name: str
    dissolve: Image.Image | None = None
    dissolve_proxy: Image.Image | None = None
    #: The last full-resolution render for the loupe: (settings key, image), reused while only the
    #: loupe's position changes.
    loupe: tuple[str, Image.Image] | None = field(default=None, repr=False)

    @property
    def scale(self) -> float:
        """The proxy's size relative to the full image (``effects.process``'s ``scale``)."""
        return max(self.proxy.size) / max(self.image.size)

    def nbytes(self) -> int:
        images = [self.image, self.proxy, self.dissolve, self.dissolve_proxy,
                  self.loupe[1] if self.loupe else None]
        return sum(_nbytes(im) for im in images if im is not None)


def _nbytes(image: Image.Image) -> int:
    bytes_per_band = 2 if image.mode.startswith("I;16") else 4 if image.mode in ("I", "F") else 1
    return image.width * image.height * len(image.getbands()) * bytes_per_band


class SourceStore:
    """Sources by token, least recently used first out once their total exceeds ``max_bytes``
    (the newest always stays, however large)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._sources: OrderedDict[str, Source] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, source: Source) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._sources[token] = source
            self._trim()
        return token

    def get(self, token: str | None) -> Source | None:
        with self._lock:
            source = self._sources.get(token or "")
            if source is not None:
                self._sources.move_to_end(token)
            return source

    def trim(self) -> None:
        """Re-check the memory bound after a source grew (a second image, a loupe render)."""
        with self._lock:
            self._trim()

    def _trim(self) -> None:
        total = sum(s.nbytes() for s in self._sources.values())
        while total > self.max_bytes and len(self._sources) > 1:
            _, oldest = self._sources.popitem(last=False)
            total -= oldest.nbytes()


SOURCES = SourceStore(env_number("STUDIO_PAGE_MEMORY_MB", 1024) * 2**20)


# -- rendering (pure functions, no HTTP) -----------------------------------------------------------

def request_for(settings: Mapping, seed: object, *, preview: bool) -> effects.Request:
    """Validated settings; the seed left empty becomes :data:`PREVIEW_SEED` in a preview."""
    body = {k: v for k, v in settings.items() if k not in IMAGE_FIELDS}
    if seed is not None:
        body[SEED.name] = seed
    elif preview:
        body[SEED.name] = PREVIEW_SEED
    return effects.validate(body)


def without_missing_dissolve(params: effects.Request, source: Source, *, full: bool) -> effects.Request:
    """Dissolve without a second image is left out of the live views (Process reports it)."""
    second = source.dissolve if full else source.dissolve_proxy
    if params["enable_dissolve"] and second is None:
        return params.replace(enable_dissolve=False)
    return params


def opaque(image: Image.Image) -> Image.Image:
    """RGB for JPEG transport: transparent areas shown over light grey."""
    if image.mode == "RGB":
        return image
    image = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (236, 236, 236, 255))
    flat = Image.alpha_composite(background, image).convert("RGB")
    flat.info.update(image.info)  # the colour profile travels with the pixels
    return flat


def render_preview(source: Source, params: effects.Request) -> Image.Image:
    """The settings applied to the proxy at the proxy's scale: what the full result looks like
    downscaled to the proxy's size."""
    params = without_missing_dissolve(params, source, full=False)
    return opaque(effects.process(source.proxy, params, dissolve_image=source.dissolve_proxy,
                                  scale=source.scale))


def render_loupe(source: Source, params: effects.Request, at: tuple[float, float]) -> Image.Image:
    """A :data:`LOUPE_SIDE` square of the full-resolution result centred on ``at`` (fractions of
    width and height), clamped to the image.

    The whole image is processed (vignette, parabolize and the wrap-around shifts depend on the
    position in the full frame, so a processed crop would differ); the render is kept for the
    settings, so moving the loupe costs a crop only.
    """
    params = without_missing_dissolve(params, source, full=True)
    key = json.dumps(dict(params), sort_keys=True, default=str)
    if source.loupe is None or source.loupe[0] != key:
        source.loupe = None  # free the old render before making the new one
        source.loupe = (key, effects.process(source.image, params, dissolve_image=source.dissolve))
    full = source.loupe[1]
    side_x, side_y = min(LOUPE_SIDE, full.width), min(LOUPE_SIDE, full.height)
    left = int(np.clip(round(at[0] * full.width - side_x / 2), 0, full.width - side_x))
    top = int(np.clip(round(at[1] * full.height - side_y / 2), 0, full.height - side_y))
    return opaque(full.crop((left, top, left + side_x, top + side_y)))


def histogram(image: Image.Image, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of an 8-bit RGB image's red, green, blue and luma levels in ``bins`` equal bins, and
    the clipped share: ``clip_low``/``clip_high`` = fraction of pixels with any channel at 0 / 255.

    Luma is Rec.709, ``(2126 R + 7152 G + 722 B) / 10000`` on the 8-bit values (floored).
    """
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    luma = (rgb.astype(np.uint32) @ np.array([2126, 7152, 722], np.uint32)) // 10000
    width = 256 // bins
    counts = {name: np.bincount(values // width, minlength=bins).tolist()
              for name, values in (("r", rgb[:, 0]), ("g", rgb[:, 1]), ("b", rgb[:, 2]),
                                   ("luma", luma))}
    return {**counts, "clip_low": float((rgb == 0).any(axis=1).mean()),
            "clip_high": float((rgb == 255).any(axis=1).mean())}


def jpeg(image: Image.Image) -> bytes:
    """JPEG bytes for the page, tagged with the image's ICC profile so a colour-managed browser
    shows a wide-gamut photo's preview as it will show the downloaded result."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, icc_profile=image.info.get("icc_profile"))
    return out.getvalue()


def render(body: object) -> tuple[bytes, dict[str, str]]:
    """One route request (see the module docstring) → JPEG bytes and headers: for the preview its
    histogram (``X-Histogram``) and the full image's size (``X-Full-Size``, ``"3000x2000"``).

    Raises :class:`InputError` (field, message, status) for a bad body, an unknown token or invalid
    settings.
    """
    if not isinstance(body, dict) or not isinstance(body.get("settings"), dict):
        raise InputError("body", "must be a JSON object with 'token' and 'settings'", 422)
    view = body.get("view", "preview")
    if view not in ("preview", "before", "loupe"):
        raise InputError("view", f"must be 'preview', 'before' or 'loupe', got {quote(view)}", 422)
    source = SOURCES.get(body.get("token") if isinstance(body.get("token"), str) else None)
    if source is None:
        raise InputError("token", "this image is no longer on the server; upload it again", 404)
    if view == "before":
        return jpeg(opaque(source.proxy)), {}
    try:
        params = request_for(body["settings"], body.get("seed"), preview=view == "preview")
    except effects.ValidationError as err:
        raise InputError(err.field, str(err).removeprefix(f"{err.field}: "), 422) from None
    if view == "preview":
        with PREVIEW.running():
            image = render_preview(source, params)
        return jpeg(image), {"X-Histogram": json.dumps(histogram(image), separators=(",", ":")),
                             "X-Full-Size": "{}x{}".format(*source.image.size)}
    at = body.get("at")
    if not (isinstance(at, list) and len(at) == 2
            and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in at)):
        raise InputError("at", "must be [x, y], fractions of the image's width and height", 422)
    with limits.FULL.running():  # a full-resolution render: the same budget as Process
        image = render_loupe(source, params, (float(at[0]), float(at[1])))
    SOURCES.trim()
    return jpeg(image), {}


async def _endpoint(request: Request) -> Response:
    try:
        body = await limits.read_json(request)
        data, headers = await run_in_threadpool(render, body)
    except InputError as err:
        return JSONResponse({"detail": str(err)}, status_code=err.status)
    except ValueError as err:  # a value refused deeper down (the effects)
        return JSONResponse({"detail": str(err)}, status_code=422)
    except MemoryError:
        return JSONResponse({"detail": "the server ran out of memory for this view; try again "
                                       "later"}, status_code=503, headers={"Retry-After": "30"})
    return Response(data, media_type="image/jpeg", headers={**headers, "Cache-Control": "no-store"})


def routes() -> list[Route]:
    """``POST /studio/preview``, for ``demo.launch(app_kwargs={"routes": [...]})``."""
    return [Route("/studio/preview", _endpoint, methods=["POST"])]
