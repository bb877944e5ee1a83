"""Load limits: how much work of each kind runs at once, how much may wait, and how big a request may be.

Three kinds of work compete for the CPU. Each has its own limit, so a long upscale never holds up a
preview:

* **preview** (the page's live preview on a ≤512 px proxy): Gradio's queue, concurrency id
  ``"preview"`` (see app.py);
* **full** (full-resolution processing) and **upscale** (AuraSR): a :class:`Gate` each, entered by the
  Gradio handlers and the JSON endpoints alike, so both APIs share one budget.

A gate lets ``concurrency`` callers in and up to ``waiting`` more wait; anyone beyond is refused at once
with :class:`Busy` (HTTP 503 with ``Retry-After`` on the JSON API, a "busy, try again" message in the
page) instead of piling up requests and their images in memory. Gradio's own queue is bounded too
(:data:`GRADIO_QUEUE_SIZE`, for ``demo.queue(max_size=...)``).

Environment: ``STUDIO_FULL_CONCURRENCY`` (1), ``STUDIO_FULL_QUEUE`` (4), ``STUDIO_UPSCALE_CONCURRENCY``
(1), ``STUDIO_UPSCALE_QUEUE`` (2), ``STUDIO_GRADIO_QUEUE_SIZE`` (64), ``STUDIO_MAX_REQUEST_BYTES``
(default: room for two ``data:`` URIs of the download cap).
"""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

from starlette.requests import Request

from common.env import env_number
from common.errors import InputError
from .fetch import max_download_bytes


class Busy(Exception):
    """Too much work of one kind is running or waiting; the client should retry after a while."""

    status = 503

    def __init__(self, kind: str, retry_after: int):
        super().__init__(f"The server is busy with other {kind} requests; please try again in "
                         f"{retry_after} s.")
        self.retry_after = retry_after


class Gate:
    """At most ``concurrency`` callers inside at once and ``waiting`` more queued; more are refused.

    ``with gate.enter(): ...`` from a worker thread (waiting blocks the thread). The two halves can
    also be used apart: :meth:`admitted` (never blocks, refuses with :class:`Busy`) around everything
    the request holds, e.g. its body being read, and :meth:`running` (waits for a slot) around the work.
    ``retry_after`` (seconds) is what a refused client is told to wait.
    """

    def __init__(self, kind: str, concurrency: int, waiting: int, retry_after: int):
        self.kind, self.capacity, self.retry_after = kind, concurrency + waiting, retry_after
        self._slots = threading.Semaphore(concurrency)
        self._lock = threading.Lock()
        self._admitted = 0

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.capacity:
                raise Busy(self.kind, self.retry_after)
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._slots:
            yield

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        with self.admitted(), self.running():
            yield




FULL = Gate("full-resolution", env_number("STUDIO_FULL_CONCURRENCY", 1, minimum=1),
            env_number("STUDIO_FULL_QUEUE", 4, minimum=0), retry_after=5)
UPSCALE = Gate("upscale", env_number("STUDIO_UPSCALE_CONCURRENCY", 1, minimum=1),
               env_number("STUDIO_UPSCALE_QUEUE", 2, minimum=0), retry_after=30)
#: Events waiting in Gradio's queue, all kinds together; beyond it Gradio answers "queue is full".
GRADIO_QUEUE_SIZE = env_number("STUDIO_GRADIO_QUEUE_SIZE", 64, minimum=1)


def max_request_bytes() -> int:
    """Cap on a JSON request body: two base64 ``data:`` URIs of the download cap plus 1 MiB of fields."""
    return env_number("STUDIO_MAX_REQUEST_BYTES", 2 * (max_download_bytes() * 4 // 3) + 2**20)


async def read_json(request: Request) -> object:
    """The request's JSON body, read under :func:`max_request_bytes` (413 beyond it, counted while
    streaming) and parsed without letting a hostile nesting depth escape as a crash (422)."""
    limit = max_request_bytes()
    declared = request.headers.get("content-length", "")
    too_large = InputError("body", f"the request body is larger than {limit:,} bytes", 413)
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InputError("body", "is not valid JSON", 422) from None
