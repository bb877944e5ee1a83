"""Load limits: how much work of each kind runs at once, and how big and how slow a request body may be.

Three kinds of work compete for the CPU. Each has its own limit, so a long upscale never holds up a
preview:

* **preview** (the page's live views on a ≤512 px proxy): the gate ``studio.live.PREVIEW``
  (``STUDIO_PREVIEW_CONCURRENCY``) around the plain route ``POST /studio/preview``, outside Gradio's
  queue;
* **full** (full-resolution processing) and **upscale** (AuraSR): a :class:`Gate` each, entered by the
  Gradio handlers, the JSON endpoints and the fal queue alike, so every API shares one budget.

A gate never refuses: callers beyond its concurrency wait their turn (bursts queue up). What bounds the
waiting is the caller's own queue: fal's queue refuses submissions beyond ``STUDIO_QUEUE_MAX`` with 429
(:mod:`studio.fal.queue`), and Gradio's queue is bounded by :data:`GRADIO_QUEUE_SIZE`
(``demo.queue(max_size=...)``).

Environment: ``STUDIO_FULL_CONCURRENCY`` (1), ``STUDIO_UPSCALE_CONCURRENCY`` (1),
``STUDIO_GRADIO_QUEUE_SIZE`` (64), ``STUDIO_MAX_REQUEST_BYTES`` (default: room for two ``data:`` URIs
of the download cap), ``STUDIO_BODY_TIMEOUT`` (seconds to receive a whole request body, 60).
"""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import anyio
from starlette.requests import ClientDisconnect, Request

from common.env import env_number
from common.errors import InputError
from .fetch import max_download_bytes

DEFAULT_BODY_TIMEOUT = 60.0


class Gate:
    """At most ``concurrency`` callers inside at once; the others wait (blocking their thread).

    ``with gate.running(): ...`` from a worker thread. :attr:`concurrency` is the number of slots
    (the fal queue sizes its worker pools from it); :attr:`waiting` is how many callers are waiting
    right now, for progress messages.
    """

    def __init__(self, kind: str, concurrency: int):
        self.kind, self.concurrency = kind, concurrency
        self._slots = threading.Semaphore(concurrency)
        self._lock = threading.Lock()
        self.waiting = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self.waiting += 1
        try:
            self._slots.acquire()
        finally:
            with self._lock:
                self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


FULL = Gate("full-resolution", env_number("STUDIO_FULL_CONCURRENCY", 1, minimum=1))
UPSCALE = Gate("upscale", env_number("STUDIO_UPSCALE_CONCURRENCY", 1, minimum=1))
#: Events waiting in Gradio's queue, all kinds together; beyond it Gradio answers "queue is full".
GRADIO_QUEUE_SIZE = env_number("STUDIO_GRADIO_QUEUE_SIZE", 64, minimum=1)


def max_request_bytes() -> int:
    """Cap on a JSON request body: two base64 ``data:`` URIs of the download cap plus 1 MiB of fields."""
    return env_number("STUDIO_MAX_REQUEST_BYTES", 2 * (max_download_bytes() * 4 // 3) + 2**20)


def body_timeout() -> float:
    """Seconds a client has to send its whole request body: env ``STUDIO_BODY_TIMEOUT`` or 60."""
    return env_number("STUDIO_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT, kind=float, minimum=0.001)


async def read_body(request: Request) -> bytes:
    """The request's body, read under :func:`max_request_bytes` (413 beyond it, counted while
    streaming) and within :func:`body_timeout` (408), so a client dripping bytes cannot hold a
    connection and its buffer for ever."""
    limit, timeout = max_request_bytes(), body_timeout()
    declared = request.headers.get("content-length", "")
    too_large = InputError("body", f"the request body is larger than {limit:,} bytes", 413)
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise InputError("body", f"the request body did not arrive within {timeout:g} s "
                                 f"({len(body):,} bytes received); send it faster or in a smaller "
                                 "request", 408) from None
    except ClientDisconnect:
        raise InputError("body", "the client closed the connection before sending the whole body",
                         400) from None
    return bytes(body)


async def read_json(request: Request) -> object:
    """:func:`read_body` parsed as JSON, without letting a hostile nesting depth escape as a crash
    (422)."""
    body = await read_body(request)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InputError("body", "is not valid JSON", 422) from None
