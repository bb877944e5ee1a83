"""fal's run and queue routes, as the real fal clients call them (README, "Use your fal code with this server").

``{owner}/{alias}`` is one of :data:`studio.work.APPS`; anything else is a 404 naming the two.

* ``POST /fal/run/{owner}/{alias}``: the output JSON with the job's status, and ``x-fal-request-id``;
  the job waits its turn in the queue like any other.
* ``POST /fal/queue/{owner}/{alias}[?fal_webhook=URL]``: ``request_id``, ``gateway_request_id``,
  ``status_url``, ``response_url``, ``cancel_url`` (absolute, back to this server) and
  ``queue_position``. The body is checked when the job runs, as fal does: a bad field is a 422 result;
  a malformed ``fal_webhook`` is refused at once (422).
* ``GET …/requests/{id}/status[?logs=1|true]``: ``IN_QUEUE`` (``queue_position``), ``IN_PROGRESS``
  or ``COMPLETED`` (``metrics.inference_time``; ``error``/``error_type`` when it failed or was
  cancelled): only these three names, which is all the Python client accepts. 202 until completed,
  then 200. ``logs`` is the full list when asked for, else null.
* ``GET …/requests/{id}/status/stream``: server-sent events, one per change, each carrying only the
  log lines new since the previous event; closed after ``COMPLETED``.
* ``GET …/requests/{id}``: the result with the job's own status (200, or e.g. 422 with the field-named
  ``detail``); 400 while it is not finished.
* ``PUT …/requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED``, 400 ``ALREADY_COMPLETED``, 404.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from common.fields import quote

from .. import limits, work
from . import webhooks
from .queue import Queue
from .store import DONE, RUNNING, Job, QueueFull
from .urls import public_base

#: Seconds a client refused with 429 is told to wait.
RETRY_AFTER = 10


def routes(queue: Callable[[], Queue]) -> list[Route]:
    """The run and queue routes over the server's queue (``queue()`` gives it once started)."""
    app = "/{owner}/{alias}"
    request = f"/fal/queue{app}/requests/{{request_id}}"

    def endpoint(handler):
        async def handle(req: Request) -> Response:
            app_id = f"{req.path_params['owner']}/{req.path_params['alias']}"
            if app_id not in work.APPS:
                return _unknown_app(app_id)
            try:
                return await handler(queue(), req, app_id)
            except QueueFull as exc:
                return queue_full(exc)
            except Exception as exc:  # body errors (413, 408, 422) and server faults, classified
                status, body = work.public_error(exc)
                return JSONResponse(body, status_code=status)
        return handle

    return [
        Route(f"/fal/run{app}", endpoint(_run), methods=["POST"]),
        Route(f"/fal/queue{app}", endpoint(_submit), methods=["POST"]),
        Route(f"{request}/status", endpoint(_status), methods=["GET"]),
        Route(f"{request}/status/stream", endpoint(_stream), methods=["GET"]),
        Route(request, endpoint(_result), methods=["GET"]),
        Route(f"{request}/cancel", endpoint(_cancel), methods=["PUT"]),
        Route("/fal/run/{rest:path}", _no_such_app, methods=["GET", "POST", "PUT"]),
        Route("/fal/queue/{rest:path}", _no_such_app, methods=["GET", "POST", "PUT"]),
    ]


def queue_full(exc: QueueFull) -> JSONResponse:
    """429 with ``Retry-After``: both fal clients retry it."""
    return JSONResponse({"detail": f"The queue is full ({exc}); retry in {RETRY_AFTER} s."},
                        status_code=429, headers={"Retry-After": str(RETRY_AFTER)})


# -- handlers ----------------------------------------------------------------------------------------

async def _run(queue: Queue, req: Request, app_id: str) -> Response:
    body = await limits.read_json(req)
    job = await run_in_threadpool(queue.submit, app_id, body, base_url=public_base(req))
    return _result_response(await queue.wait(job.id))


async def _submit(queue: Queue, req: Request, app_id: str) -> Response:
    webhook = webhooks.check_url(req.query_params.get("fal_webhook"))
    body = await limits.read_json(req)
    # Off the event loop: storing a large input (serialise, write, sync) would stall every other
    # request of the server, the page's previews included, during a burst.
    job = await run_in_threadpool(queue.submit, app_id, body, base_url=public_base(req),
                                  webhook=webhook)
    return JSONResponse({"request_id": job.id, "gateway_request_id": job.id,
                         **_urls(req, job), "queue_position": queue.store.position(job)},
                        headers={"x-fal-request-id": job.id})


async def _status(queue: Queue, req: Request, app_id: str) -> Response:
    job = _job(queue, req, app_id)
    if job is None:
        return _not_found(req)
    logs = queue.store.logs(job.id) if _wants_logs(req) else None
    body = _status_body(queue, req, job, logs)
    return JSONResponse(body, status_code=200 if job.state == DONE else 202)


async def _stream(queue: Queue, req: Request, app_id: str) -> Response:
    job = _job(queue, req, app_id)
    if job is None:
        return _not_found(req)
    wants_logs = _wants_logs(req)

    async def events() -> AsyncIterator[str]:
        sent, last = 0, None
        async for current in queue.watch(job.id):
            new = queue.store.logs(job.id, since=sent) if wants_logs else None
            sent += len(new or ())
            if current.state != last or new:
                last = current.state
                yield f"data: {json.dumps(_status_body(queue, req, current, new))}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "x-fal-request-id": job.id})


async def _result(queue: Queue, req: Request, app_id: str) -> Response:
    job = _job(queue, req, app_id)
    if job is None:
        return _not_found(req)
    if job.state != DONE:
        return JSONResponse({"detail": "Request is still in progress"}, status_code=400,
                            headers={"x-fal-request-id": job.id})
    return _result_response(job)


async def _cancel(queue: Queue, req: Request, app_id: str) -> Response:
    job = _job(queue, req, app_id)
    if job is None:
        return _not_found(req)
    before = queue.cancel(job.id)
    if before is None:
        return _not_found(req)
    if before.state == DONE:
        return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)


async def _no_such_app(req: Request) -> Response:
    return _unknown_app(req.path_params["rest"])


# -- helpers -----------------------------------------------------------------------------------------

def _job(queue: Queue, req: Request, app_id: str) -> Job | None:
    """The job of the path, if it exists and belongs to the path's app."""
    job = queue.store.get(req.path_params["request_id"])
    return job if job is not None and job.app_id == app_id else None


def _urls(req: Request, job: Job) -> dict[str, str]:
    response = f"{public_base(req)}/fal/queue/{job.app_id}/requests/{job.id}"
    return {"response_url": response, "status_url": f"{response}/status",
            "cancel_url": f"{response}/cancel"}


def _wants_logs(req: Request) -> bool:
    return req.query_params.get("logs", "").lower() in ("1", "true")


def _status_body(queue: Queue, req: Request, job: Job, logs: list | None) -> dict:
    common = {"request_id": job.id, **_urls(req, job), "logs": logs}
    if job.state == DONE:
        body = {"status": "COMPLETED", **common, "metrics": {"inference_time": job.inference_time}}
        if job.error is not None:
            body.update(error=job.error, error_type=job.error_type)
        return body
    if job.state == RUNNING:
        return {"status": "IN_PROGRESS", **common}
    return {"status": "IN_QUEUE", **common, "queue_position": queue.store.position(job)}


def _result_response(job: Job) -> JSONResponse:
    return JSONResponse(job.result, status_code=job.status_code, headers={"x-fal-request-id": job.id})


def _not_found(req: Request) -> JSONResponse:
    return JSONResponse({"detail": f"Request {quote(req.path_params['request_id'])} not found: unknown, "
                                   "or its result expired (STUDIO_RESULT_TTL)"}, status_code=404)


def _unknown_app(app_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"Application {quote(app_id)} not found: this server runs "
                                   f"{' and '.join(work.APPS)}"}, status_code=404)
