"""The job queue: every fal request and every ``/api/*`` request waits here, in order, for a worker.

Workers are threads of the server process, per app the app's concurrency plus
``STUDIO_FETCH_WORKERS`` (default 8): :func:`studio.work.execute` fetches a job's image URLs before
it enters the CPU slot, so while one job computes, others fetch theirs, and a few slow image servers
never hold up the jobs behind them. A job a worker has taken is ``IN_PROGRESS`` (fetching, or waiting
for the slot, as its log says); the others are ``IN_QUEUE``. They take the oldest queued job
of their app from the :class:`~studio.fal.store.JobStore` and run it through
:func:`studio.work.execute`, which enters the app's slot in :mod:`studio.limits`, the same slot the
page's full-resolution and upscale buttons use. So a burst waits its turn instead of being refused,
and a long upscale holds only the upscale slot, never the previews.

Three ways in, one order:

* :meth:`Queue.submit` — fal's queue: a durable job (its input is stored), result fetched later;
* :meth:`Queue.wait` after :meth:`Queue.submit` — ``/fal/run``: the same job, answered when done;
* :meth:`Queue.run_inline` — ``/api/*``: a job whose input and result stay in memory (the caller
  waits on its open connection), answered with the ``data:`` URIs those routes always gave.

Beyond ``STUDIO_QUEUE_MAX`` waiting jobs (default 1000) a submission raises
:class:`~studio.fal.store.QueueFull` (429 with ``Retry-After``). Finished jobs, their logs and stored
files expire after ``STUDIO_RESULT_TTL`` seconds (default 24 h, :func:`studio.fal.storage.result_ttl`),
cleaned at start-up and on a timer.
A job interrupted by a crash runs again after the restart, at most :data:`MAX_ATTEMPTS` times in all.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable

from PIL import Image

from common.env import env_number
from imaging import CONTENT_TYPE, encode_png

from .. import limits, results, work
from . import storage, webhooks
from .store import DONE, Job, JobStore

logger = logging.getLogger(__name__)

#: The slot each app's jobs run in (inside :func:`studio.work.execute`); sizes the worker pools.
GATES = {work.POST_PROCESSING: limits.FULL, work.AURA_SR: limits.UPSCALE}
#: A job whose run was interrupted this many times (e.g. it crashes the server) is failed, not rerun.
MAX_ATTEMPTS = 3
DEFAULT_QUEUE_MAX = 1000
DEFAULT_FETCH_WORKERS = 8
#: Queue workers yield the CPU to the page: a preview is interactive, a queued job is not.
WORKER_NICENESS = 10
#: fal's ``error_type`` of a failed job, by status (others: "client_error" / "server_error"; a
#: cancelled job: :data:`CANCELLED_TYPE`).
ERROR_TYPES = {422: "validation_error"}
CANCELLED_TYPE = "request_cancelled"


def fetch_workers() -> int:
    """``STUDIO_FETCH_WORKERS``: workers per app beyond its concurrency, fetching while others compute."""
    return env_number("STUDIO_FETCH_WORKERS", DEFAULT_FETCH_WORKERS)


def queue_max() -> int:
    """``STUDIO_QUEUE_MAX``: how many jobs may wait before submissions get 429."""
    return env_number("STUDIO_QUEUE_MAX", DEFAULT_QUEUE_MAX)


class Queue:
    """The queue of one server process over ``store``; :meth:`start` starts its threads."""

    def __init__(self, store: JobStore):
        self.store = store
        self.owner = uuid.uuid4().hex  # this process, for the jobs only it can run (run_inline)
        self._inline: dict[str, tuple[object, Callable, concurrent.futures.Future]] = {}
        self._work = threading.Condition()
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._watch_lock = threading.Lock()
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover from the last run (requeue interrupted jobs), expire old results, start workers
        and the cleaning timer. Idempotent."""
        if self._started:
            return
        self._started = True
        requeued = self.store.recover()
        if requeued:
            logger.warning("%d job(s) interrupted by the last shutdown will run again", requeued)
        self.expire()
        for app_id, gate in GATES.items():
            for n in range(gate.concurrency + fetch_workers()):
                threading.Thread(target=self._worker, args=(app_id,), daemon=True,
                                 name=f"fal-worker-{app_id.rpartition('/')[2]}-{n}").start()
        threading.Thread(target=self._cleaner, daemon=True, name="fal-cleaner").start()

    def expire(self) -> None:
        """Delete finished jobs and stored files older than ``STUDIO_RESULT_TTL``."""
        expired = self.store.expire(time.time() - storage.result_ttl())
        files = storage.cleanup()
        if expired or files:
            logger.info("expired %d job(s) and %d file(s)", len(expired), files)

    def _cleaner(self) -> None:
        while True:
            time.sleep(min(600.0, max(1.0, storage.result_ttl() / 10)))
            try:
                self.expire()
            except Exception:  # a failed clean-up is retried at the next tick, never fatal
                logger.exception("expiring old jobs failed")

    # -- ways in -------------------------------------------------------------------------------------

    def submit(self, app_id: str, body: object, *, base_url: str, webhook: str | None = None) -> Job:
        """Queue a durable job; raises :class:`QueueFull`. ``base_url`` is where its result files
        will be served (this server as the client reached it)."""
        job = self.store.submit(app_id, json.dumps(body).encode(), base_url=base_url, webhook=webhook,
                                owner=self.owner, max_waiting=queue_max())
        self._wake()
        return job

    async def wait(self, job_id: str) -> Job:
        """The job once it is done."""
        async for job in self.watch(job_id):
            if job.state == DONE:
                return job
        raise KeyError(job_id)  # expired while waiting

    async def run_inline(self, app_id: str, body: object, *,
                         store_image: Callable[[Image.Image], dict]) -> dict:
        """Run ``body`` in its turn and return :func:`studio.work.execute`'s answer, or raise what it
        raised (and :class:`QueueFull`). Nothing of it is stored but its place in the queue."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        with self._work:  # workers claim under this lock: none sees the job before its input is here
            job = self.store.submit(app_id, None, base_url="", webhook=None, owner=self.owner,
                                    max_waiting=queue_max())
            self._inline[job.id] = (body, store_image, done)
            self._work.notify_all()
        return await asyncio.wrap_future(done)

    def cancel(self, job_id: str) -> Job | None:
        """Ask for a job to stop; return it as it was before (None if unknown). A queued job is
        finished at once as cancelled; a running one stops at its next stage or tile."""
        job = self.store.request_cancel(job_id)
        if job is not None and job.state != DONE:
            logger.info("job %s: cancellation requested", job_id)
            if job.state != "running":
                status, answer = work.public_error(work.Cancelled("cancelled while queued"))
                self._finish(job, status, answer, inference_time=None, cancelled=True)
            self._notify(job_id)
        return job

    # -- watching ------------------------------------------------------------------------------------

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """Yield the job now and after each change (state, log line) until it is done. Changes made
        by this process wake the watcher at once; others (a shared store) are seen within 1 s."""
        loop, changed = asyncio.get_running_loop(), asyncio.Event()
        with self._watch_lock:
            self._watchers.setdefault(job_id, set()).add((loop, changed))
        try:
            while True:
                job = self.store.get(job_id)
                if job is None:
                    return
                yield job
                if job.state == DONE:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 1.0)
                changed.clear()
        finally:
            with self._watch_lock:
                watchers = self._watchers.get(job_id, set())
                watchers.discard((loop, changed))
                if not watchers:
                    self._watchers.pop(job_id, None)

    def _notify(self, job_id: str) -> None:
        with self._watch_lock:
            watchers = list(self._watchers.get(job_id, ()))
        for loop, changed in watchers:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody is watching
                loop.call_soon_threadsafe(changed.set)

    # -- workers -------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._work:
            self._work.notify_all()

    def _worker(self, app_id: str) -> None:
        if sys.platform == "linux":  # there a thread has its own nice value (and passes it on)
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, max(WORKER_NICENESS, os.getpriority(os.PRIO_PROCESS, me)))
        while True:
            with self._work:
                job = self.store.claim(app_id, self.owner)
                if job is None:
                    self._work.wait(1.0)  # a timeout too: jobs submitted by another server
                    continue
            try:
                self._run(job)
            except Exception:  # the store failed (disk full?): leave the job for the restart
                logger.exception("job %s could not be recorded", job.id)

    def _run(self, job: Job) -> None:
        self._notify(job.id)
        if not job.durable:
            self._run_inline(job, *self._inline.pop(job.id))
            return
        if job.attempts > MAX_ATTEMPTS:
            logger.error("job %s was interrupted %d times; failing it", job.id, MAX_ATTEMPTS)
            self._finish(job, 500, {"detail": f"the request was interrupted {MAX_ATTEMPTS} times (the "
                                              "server stopped while running it)"}, None)
            return
        log = self._logger(job)
        again = f" (attempt {job.attempts})" if job.attempts > 1 else ""
        log(f"{job.app_id}: starting{again}")
        start, cancelled = time.perf_counter(), False
        try:
            answer = work.execute(job.app_id, json.loads(self.store.body(job.id)), log=log,
                                  cancelled=self._cancelled(job), store_image=_file_record(job))
            status = 200
            log(f"{job.app_id}: done in {time.perf_counter() - start:.2f} s")
        except Exception as exc:
            status, answer = work.public_error(exc)
            log(f"failed with status {status}: {_summary(answer)}", "ERROR")
            cancelled = isinstance(exc, work.Cancelled)
        self._finish(job, status, answer, time.perf_counter() - start, cancelled=cancelled)

    def _run_inline(self, job: Job, body: object, store_image: Callable,
                    done: concurrent.futures.Future) -> None:
        """An ``/api/*`` job: the answer (or the exception, which the route turns into its answer) goes
        to the waiting caller; the store records only that it is done."""
        start = time.perf_counter()
        try:
            done.set_result(work.execute(job.app_id, body, log=self._logger(job),
                                         cancelled=self._cancelled(job), store_image=store_image))
            status = 200
        except Exception as exc:
            done.set_exception(exc)
            status = None  # the route classifies the error and answers it
        self.store.finish(job.id, status_code=status, result=None, error=None, error_type=None,
                          inference_time=time.perf_counter() - start)

    def _logger(self, job: Job) -> Callable[..., None]:
        def log(line: str, level: str = "INFO") -> None:
            self.store.add_log(job.id, line, level)
            self._notify(job.id)
        return log

    def _cancelled(self, job: Job) -> Callable[[], bool]:
        def cancelled() -> bool:
            current = self.store.get(job.id)
            return current is None or current.cancel_requested
        return cancelled

    def _finish(self, job: Job, status: int, answer: object, inference_time: float | None, *,
                cancelled: bool = False) -> None:
        error = None if status == 200 else f"Invalid status code: {status}"
        error_type = None if status == 200 else CANCELLED_TYPE if cancelled else ERROR_TYPES.get(
            status, "client_error" if status < 500 else "server_error")
        if not self.store.finish(job.id, status_code=status, result=answer, error=error,
                                 error_type=error_type, inference_time=inference_time):
            return
        if job.webhook:
            webhooks.enqueue(url=job.webhook, request_id=job.id, gateway_request_id=job.id,
                             status="OK" if status == 200 else "ERROR", payload=answer, error=error)
        self._notify(job.id)


def _file_record(job: Job) -> Callable[[Image.Image], dict]:
    """``store_image`` for a durable job: the PNG saved in this server's storage, the record's
    ``url`` an absolute file URL under the base the job was submitted through."""
    def store(image: Image.Image) -> dict:
        png = encode_png(image)
        name = results.new_file_name()
        url = storage.save_file(job.base_url, png, CONTENT_TYPE, name)
        return results.image_record(png, image.size, url=url, file_name=name)
    return store


def _summary(answer: object) -> str:
    """The first error message of an error body, for the job's log."""
    detail = answer.get("detail") if isinstance(answer, dict) else answer
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = detail[0].get("msg")
    return str(detail)[:200]
