"""The JS client's ``proxyUrl`` (``/fal/proxy``) and CORS for browser callers of ``/fal/*``.

``@fal-ai/client`` configured with ``proxyUrl: {url: "<server>/fal/proxy", when: "always"}`` sends
every call (run, queue, status stream, storage) to that one URL, with the same method, headers and
body, plus ``x-fal-target-url: <the https URL it would have called>``. The path is rewritten at the
ASGI level to this server's own route for that target, so status codes, headers
(``Content-Type``, ``x-fal-request-id``), streamed server-sent events and authentication are exactly
those of the route itself:

==============================  =================
``https://fal.run/…``           ``/fal/run/…``
``https://queue.fal.run/…``     ``/fal/queue/…``
``https://rest.fal.ai/…``       ``/fal/rest/…``
==============================  =================

Any other target is refused (403), a missing header is 400. The query string travels with the target.

CORS: every path under ``/fal/`` answers browsers from the origins in ``STUDIO_CORS_ORIGINS``
(comma-separated; ``*`` for any; none by default), preflights allowing the headers the JS client
sends and exposing ``x-fal-request-id``. This sits in front of Gradio's own CORS handling (which
would let any origin in for a non-localhost host), so for ``/fal/*`` this policy is the only one.
"""
from __future__ import annotations

import urllib.parse

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from common.env import env_list

PROXY_PATH = "/fal/proxy"
TARGET_HEADER = "x-fal-target-url"
#: fal's hosts, as the JS client names them, and this server's routes for each.
TARGETS = {"fal.run": "/fal/run", "queue.fal.run": "/fal/queue", "rest.fal.ai": "/fal/rest"}
#: Request headers the JS client may send (besides the CORS-safelisted ones).
ALLOWED_HEADERS = ("authorization", "content-type", "accept", TARGET_HEADER, "x-fal-queue-priority",
                   "x-fal-request-timeout", "x-fal-runner-hint", "x-fal-object-lifecycle",
                   "x-fal-object-lifecycle-preference")
EXPOSED_HEADERS = ("x-fal-request-id",)


def cors_origins() -> list[str]:
    """Origins allowed to call ``/fal/*`` from a browser: env ``STUDIO_CORS_ORIGINS``."""
    return [origin.rstrip("/") for origin in env_list("STUDIO_CORS_ORIGINS")]


def wrap(app: ASGIApp) -> ASGIApp:
    """``app`` with ``/fal/*`` behind this module's CORS policy and ``/fal/proxy`` dispatched."""
    fal = CORSMiddleware(_dispatch(_without_origin(app)), allow_origins=cors_origins(),
                         allow_methods=("GET", "HEAD", "POST", "PUT"), allow_headers=ALLOWED_HEADERS,
                         expose_headers=EXPOSED_HEADERS)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/fal/"):
            await fal(scope, receive, send)
        else:
            await app(scope, receive, send)
    return route


def install(app) -> None:
    """Put :func:`wrap` in front of a Starlette/Gradio ``app``'s whole middleware stack.

    Call it at start-up, from the app's lifespan: the stack is built by then (Starlette builds it
    on the first ASGI event, the lifespan's), and Gradio's CORS middleware is its outermost layer,
    which answers every preflight itself, so an ordinary ``Middleware`` entry would never see them.
    """
    app.middleware_stack = wrap(app.middleware_stack or app.build_middleware_stack())


def target_path(target: str) -> tuple[str, str]:
    """``(path, query)`` of this server's route for a fal URL; ``ValueError`` saying why not."""
    try:
        parts = urllib.parse.urlsplit(target.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"{TARGET_HEADER} is not a valid URL") from None
    prefix = TARGETS.get((parts.hostname or "").lower())
    if parts.scheme.lower() != "https" or prefix is None or port not in (None, 443) or \
            parts.username is not None:
        raise ValueError(f"{TARGET_HEADER} must be an https URL on "
                         f"{', '.join(TARGETS)}; this proxy forwards only to this server's own "
                         "fal routes")
    segments = parts.path.split("/")
    if any(s in (".", "..") for s in segments) or not parts.path.startswith("/"):
        raise ValueError(f"{TARGET_HEADER} has a path with '.' or '..' segments or no path")
    return prefix + parts.path, parts.query


def _dispatch(app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != PROXY_PATH:
            await app(scope, receive, send)
            return
        target = _header(scope, TARGET_HEADER.encode())
        if target is None:
            await JSONResponse({"detail": f"the {TARGET_HEADER} header is required: the fal URL "
                                          "this request is for (the JS client's proxyUrl sends it)"},
                               status_code=400)(scope, receive, send)
            return
        try:
            path, query = target_path(target)
        except ValueError as err:
            await JSONResponse({"detail": str(err)}, status_code=403)(scope, receive, send)
            return
        raw = path.encode("latin-1", "replace")
        await app({**scope, "path": urllib.parse.unquote(path), "raw_path": raw,
                   "query_string": query.encode("latin-1", "replace")}, receive, send)
    return handle


def _without_origin(app: ASGIApp) -> ASGIApp:
    """The CORS answer is given: hide ``Origin`` from the layers inside (Gradio's CORS)."""
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"origin"]
        await app({**scope, "headers": headers}, receive, send)
    return handle


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None

