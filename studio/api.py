"""Plain JSON endpoints with fal's exact request and response bodies, served beside the page, and the
access log of every API request.

``POST /api/post-processing`` and ``POST /api/aura-sr`` take fal's request body (``image_url`` and
``dissolve_image_url`` as http(s) URLs or ``data:`` URIs) and answer fal's output JSON, each image's
``url`` a ``data:`` URI of the PNG, plus ``"warnings": [...]`` when there are any (see
:mod:`studio.work`, which runs the request exactly as the fal routes do). Client errors are
FastAPI-shaped, ``{"detail": [{"loc": ["body", <field>], "msg": <message>, "type": ...}]}``: 422 for an
invalid field, 400 for an image that cannot be decoded, 408 for a body that arrives too slowly, 413
for one too large, and the statuses of :mod:`studio.fetch` for URLs. Server faults are a logged 5xx
``{"detail": <short message>}``. Requests never get "busy": they wait in fal's queue (with the
``/fal/*`` jobs) for their slot; only beyond ``STUDIO_QUEUE_MAX`` waiting jobs is the answer 429 with
``Retry-After``.

:class:`AccessLog` writes one line per ``/api/*`` and ``/fal/*`` request to the ``studio.access``
logger: method, route (path parameters shown as ``{name}`` and other long segments as ``…``, so
capability tokens never reach the log; no query string), status, request and response bytes, time to the first response byte and in total.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from PIL import Image
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imaging import encode_png

from . import fal, limits, results, work
from .fal.routes import queue_full
from .fal.store import QueueFull

access_logger = logging.getLogger("studio.access")
_LOGGED_PREFIXES = ("/api/", "/fal/")
#: Path segments this long are tokens or ids, never logged as they are (capability URLs are secrets).
_TOKEN = re.compile(r"[^/]{20,}")


def data_uri_record(image: Image.Image) -> dict:
    """fal's ``Image`` record of ``image`` with the PNG inline as a ``data:`` URI."""
    png = encode_png(image)
    return results.image_record(png, image.size, url=results.data_uri(png),
                                file_name=results.new_file_name())


def _endpoint(app_id: str) -> Callable:
    async def handle(request: Request) -> JSONResponse:
        try:
            body = await limits.read_json(request)
            # In the fal queue, in turn with every other job (429 only beyond STUDIO_QUEUE_MAX).
            answer = await fal.queue().run_inline(app_id, body, store_image=data_uri_record)
            return JSONResponse(answer)
        except QueueFull as exc:
            return queue_full(exc)
        except Exception as exc:
            status, payload = work.public_error(exc)
            return JSONResponse(payload, status_code=status)
    return handle


def routes() -> list[Route]:
    """The two JSON routes, for ``demo.launch(app_kwargs={"routes": routes()})``."""
    return [Route("/api/post-processing", _endpoint(work.POST_PROCESSING), methods=["POST"]),
            Route("/api/aura-sr", _endpoint(work.AURA_SR), methods=["POST"])]


class AccessLog:
    """ASGI middleware: one structured ``studio.access`` line per ``/api/*`` or ``/fal/*`` request.

    ``access method=POST route=/api/aura-sr status=200 in_bytes=1234 out_bytes=5678 first_byte_ms=812.0
    total_ms=815.2``. Headers (and so API keys) and query strings are never logged.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_LOGGED_PREFIXES):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = {"in": 0, "out": 0, "status": 500, "first": None}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["first"] = time.perf_counter()
            elif message["type"] == "http.response.body":
                seen["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            end = time.perf_counter()
            first = seen["first"] or end
            access_logger.info("access method=%s route=%s status=%d in_bytes=%d out_bytes=%d "
                               "first_byte_ms=%.1f total_ms=%.1f", scope["method"],
                               _route(scope), seen["status"], seen["in"],
                               seen["out"], (first - start) * 1000, (end - start) * 1000)


def _route(scope: Scope) -> str:
    """The request's path with its path parameters (ids, tokens, file names) as ``{name}``, and any
    other long segment as ``…``: what was called, without the secrets of capability URLs."""
    path = scope["path"]
    for name, value in scope.get("path_params", {}).items():
        if isinstance(value, str) and value:
            path = path.replace(value, f"{{{name}}}")
    return _TOKEN.sub("…", path)


def middleware() -> list[Middleware]:
    """The studio's ASGI middleware, for ``demo.launch(app_kwargs={"middleware": middleware()})``."""
    return [Middleware(AccessLog)]
