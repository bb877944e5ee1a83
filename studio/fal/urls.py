"""The base URL this server hands out in its answers (status, result and file URLs).

``STUDIO_PUBLIC_URL`` when set (a server behind a proxy that does not forward its name); otherwise the
scheme and host the client used, honouring ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` from a
reverse proxy. The Python fal client follows the URLs it is given verbatim, so they must point back
here, over https when the server serves https.
"""
from __future__ import annotations

import os

from starlette.requests import Request


def public_base(request: Request) -> str:
    """``scheme://host[:port][/prefix]`` of this server as the client reached it, no trailing slash."""
    configured = os.environ.get("STUDIO_PUBLIC_URL", "").strip()
    if configured:
        return configured.rstrip("/")
    scheme = _first(request.headers.get("x-forwarded-proto")) or request.url.scheme
    host = (_first(request.headers.get("x-forwarded-host")) or request.headers.get("host")
            or request.url.netloc)
    return f"{scheme}://{host}"


def _first(value: str | None) -> str | None:
    """The first entry of a forwarded header (proxies append theirs: ``https, http``)."""
    return value.split(",")[0].strip() or None if value else None
