"""API keys: ``STUDIO_API_KEYS`` (comma-separated) guards every ``/fal/*`` and ``/api/*`` route.

A request must carry ``Authorization: Key <key>`` with one of the keys; otherwise it gets fal's 401
``{"detail": ...}``. Keys are compared in constant time and never logged. Without ``STUDIO_API_KEYS``
every route is open (as before keys existed).

Open even with keys: CORS preflights (browsers send them without credentials), and the capability
URLs whose unguessable path is the credential: upload targets, stored and result files (the JS
client PUTs uploads without a key) and the webhook JWKS. Their path prefixes come from the modules
that serve them (:data:`studio.fal.storage.CAPABILITY_PREFIXES`, :data:`studio.fal.webhooks.JWKS_PATH`).
"""
from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from common.env import env_list

from . import storage, webhooks

GUARDED = ("/fal/", "/api/")
OPEN = (*storage.CAPABILITY_PREFIXES, webhooks.JWKS_PATH)


def api_keys() -> tuple[bytes, ...]:
    """The configured keys (empty: no key needed)."""
    return tuple(key.encode() for key in env_list("STUDIO_API_KEYS"))


def authorized(header: str | None, keys: tuple[bytes, ...]) -> bool:
    """Whether an ``Authorization`` header value is ``Key <k>`` for one of ``keys``. Every key is
    compared (constant time each), so the time taken tells nothing about which one nearly matched."""
    scheme, _, given = (header or "").strip().partition(" ")
    given_bytes = given.strip().encode()
    matches = [hmac.compare_digest(given_bytes, key) for key in keys]
    return scheme.lower() == "key" and any(matches)


class RequireKey:
    """ASGI middleware enforcing :func:`api_keys` on :data:`GUARDED` paths except :data:`OPEN` ones."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = api_keys()
        if keys and scope["type"] == "http" and _guarded(scope):
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not authorized(header, keys):
                reason = "is missing" if not header else "is not a valid key for this server"
                response = JSONResponse(
                    {"detail": f"Unauthorized: the Authorization header {reason}; send "
                               "'Authorization: Key <key>' with one of the keys in STUDIO_API_KEYS"},
                    status_code=401, headers={"WWW-Authenticate": "Key"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _guarded(scope: Scope) -> bool:
    path = scope["path"]
    return (scope["method"] != "OPTIONS" and path.startswith(GUARDED)
            and not path.startswith(OPEN))
