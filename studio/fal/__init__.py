"""fal's own protocol on this server: queue, run, logs, storage, webhooks and API keys.

The real ``fal-client`` (PyPI) and ``@fal-ai/client`` (npm) work against these routes by
configuration alone (README, "Use your fal code with this server"; the wire protocol route by route in
:mod:`studio.fal.routes`). Modules:

* :mod:`~studio.fal.db` — the SQLite database and files under ``STUDIO_DATA_DIR``;
* :mod:`~studio.fal.store` — :class:`~studio.fal.store.JobStore`, the durable job store;
* :mod:`~studio.fal.queue` — the workers and the one queue every API request waits in;
* :mod:`~studio.fal.routes` — ``/fal/run`` and ``/fal/queue`` (submit, status, stream, result, cancel);
* :mod:`~studio.fal.storage`, :mod:`~studio.fal.proxy`, :mod:`~studio.fal.webhooks` — uploads and
  files, the JS client's ``/fal/proxy`` with CORS, signed webhooks and their JWKS;
* :mod:`~studio.fal.auth` — ``STUDIO_API_KEYS``; :mod:`~studio.fal.urls` — the public base URL.

The app mounts :func:`routes` and :func:`middleware` and passes :func:`lifespan`, which starts the
queue when the server starts (not on import: importing the app touches no data directory).
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.middleware import Middleware
from starlette.routing import Route

from . import auth, proxy, storage, webhooks
from . import routes as _routes
from .queue import Queue
from .store import SQLiteJobStore

_queue: Queue | None = None


def queue() -> Queue:
    """This server's queue, started on first use (on the data directory of that moment)."""
    global _queue
    if _queue is None:
        _queue = Queue(SQLiteJobStore())
        _queue.start()
    return _queue


def routes() -> list[Route]:
    """Every fal route: run and queue, storage, webhooks' JWKS."""
    return [*_routes.routes(queue), *storage.routes(), *webhooks.routes()]


def middleware() -> list[Middleware]:
    """The API-key check, for ``app_kwargs={"middleware": [...]}``."""
    return [Middleware(auth.RequireKey)]


@contextlib.asynccontextmanager
async def lifespan(app) -> AsyncIterator[None]:
    """Start the queue with the server (recovering jobs a previous run left) and the webhook sender
    (pending deliveries too), and put the JS client's proxy and the ``/fal/*`` CORS policy in front
    of the app."""
    queue()
    webhooks.start()
    proxy.install(app)
    yield
