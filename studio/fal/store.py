"""The job store: requests, their states, logs and results, behind a small interface.

:class:`JobStore` is everything the queue (:mod:`studio.fal.queue`) needs from storage; it knows no
HTTP and no image processing. :class:`SQLiteJobStore` implements it on the data directory's SQLite
database (:mod:`studio.fal.db`), with each durable job's input body as a file beside it. Several
servers sharing one queue would implement the same protocol on a shared database; everything else
stays as it is.

A job's life: ``submit`` → ``queued`` → ``claim`` → ``running`` → ``finish`` → ``done``. A job is
*durable* when its input was stored (the fal queue and ``/fal/run``): it survives a restart, and
``recover`` puts the ones that were running back in the queue. A job without a stored input
(``/api/*``: its caller waits on the open connection and gets the result from memory) belongs to the
server that accepted it (``owner``) and is dropped by ``recover``, since nobody waits for it any more.
"""
from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import db

QUEUED, RUNNING, DONE = "queued", "running", "done"


class QueueFull(Exception):
    """More jobs are waiting than the configured bound; the client should retry later."""


@dataclass(frozen=True)
class Job:
    """One request as stored. ``result`` is the answer body (JSON) and ``status_code`` its HTTP
    status once ``state`` is ``done``; ``error``/``error_type`` are set when it did not succeed."""

    id: str
    app_id: str
    state: str
    durable: bool
    base_url: str
    webhook: str | None
    created: float
    started: float | None
    finished: float | None
    attempts: int
    cancel_requested: bool
    status_code: int | None
    result: object
    error: str | None
    error_type: str | None
    inference_time: float | None


class JobStore(Protocol):
    """Storage of jobs for the queue. All methods are thread-safe and each is atomic."""

    def submit(self, app_id: str, body: bytes | None, *, base_url: str, webhook: str | None,
               owner: str, max_waiting: int) -> Job:
        """Store a new queued job (``body`` None: not durable, owned by ``owner``). Raises
        :class:`QueueFull` when ``max_waiting`` jobs are already queued."""

    def claim(self, app_id: str, owner: str) -> Job | None:
        """Move the oldest queued, not cancelled job of ``app_id`` (durable, or owned by ``owner``) to
        ``running`` and return it; None when there is none."""

    def body(self, job_id: str) -> bytes:
        """The stored input body of a durable job."""

    def get(self, job_id: str) -> Job | None:
        """The job, or None if unknown (or expired)."""

    def position(self, job: Job) -> int:
        """How many queued jobs of the same app are ahead of ``job``."""

    def waiting(self) -> int:
        """How many jobs are queued, all apps together."""

    def add_log(self, job_id: str, message: str, level: str = "INFO") -> None:
        """Append one log line to the job."""

    def logs(self, job_id: str, since: int = 0) -> list[dict]:
        """The job's log lines from the ``since``-th on, in fal's shape
        ``{message, level, source, timestamp}``."""

    def request_cancel(self, job_id: str) -> Job | None:
        """Flag the job for cancellation unless it is done; return it as it was before, or None."""

    def finish(self, job_id: str, *, status_code: int | None, result: object, error: str | None,
               error_type: str | None, inference_time: float | None) -> bool:
        """Record the outcome and mark the job done; False (nothing changed) if it already was."""

    def recover(self) -> int:
        """At start-up of the (only) server on this store: requeue durable jobs that were running,
        drop unfinished non-durable ones (their callers' connections died with the server); return
        how many were requeued. A store shared by several servers needs leases instead."""

    def expire(self, finished_before: float) -> list[str]:
        """Delete jobs finished before that time (with their logs and inputs); return their ids."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fal_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    state TEXT NOT NULL,
    durable INTEGER NOT NULL,
    owner TEXT NOT NULL,
    base_url TEXT NOT NULL,
    webhook TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    status_code INTEGER,
    result TEXT,
    error TEXT,
    error_type TEXT,
    inference_time REAL
);
CREATE INDEX IF NOT EXISTS fal_jobs_waiting ON fal_jobs (state, app_id, seq);
CREATE INDEX IF NOT EXISTS fal_jobs_finished ON fal_jobs (state, finished);
CREATE TABLE IF NOT EXISTS fal_logs (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fal_logs_job ON fal_logs (job_id, n);
"""


class SQLiteJobStore:
    """:class:`JobStore` on the data directory's SQLite database; inputs in ``<data dir>/fal-inputs``.

    One connection, used under a lock: every call is a short statement or transaction.
    """

    def __init__(self, conn: sqlite3.Connection | None = None, inputs: Path | None = None):
        self._conn = conn or db.connect()
        self._inputs = inputs or db.data_dir() / "fal-inputs"
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def submit(self, app_id: str, body: bytes | None, *, base_url: str, webhook: str | None,
               owner: str, max_waiting: int) -> Job:
        job_id = str(uuid.uuid4())
        if body is not None:  # the input reaches the disk before the job exists
            db.write_file(self._input(job_id), body)
        try:
            with self._lock, self._conn:
                (waiting,) = self._conn.execute("SELECT COUNT(*) FROM fal_jobs WHERE state = ?",
                                                (QUEUED,)).fetchone()
                if waiting >= max_waiting:
                    raise QueueFull(f"{waiting} jobs are waiting, the most this server queues")
                self._conn.execute(
                    "INSERT INTO fal_jobs (id, app_id, state, durable, owner, base_url, webhook, "
                    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, app_id, QUEUED, body is not None, owner, base_url, webhook, time.time()))
        except BaseException:
            self._input(job_id).unlink(missing_ok=True)
            raise
        return self.get(job_id)

    def claim(self, app_id: str, owner: str) -> Job | None:
        with self._lock, self._conn:
            row = self._conn.execute(
                "SELECT id FROM fal_jobs WHERE state = ? AND app_id = ? AND cancel_requested = 0 "
                "AND (durable OR owner = ?) ORDER BY seq LIMIT 1", (QUEUED, app_id, owner)).fetchone()
            if row is None:
                return None
            self._conn.execute("UPDATE fal_jobs SET state = ?, started = ?, attempts = attempts + 1 "
                               "WHERE id = ?", (RUNNING, time.time(), row["id"]))
        return self.get(row["id"])

    def body(self, job_id: str) -> bytes:
        return self._input(job_id).read_bytes()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM fal_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def position(self, job: Job) -> int:
        with self._lock:
            (ahead,) = self._conn.execute(
                "SELECT COUNT(*) FROM fal_jobs WHERE state = ? AND app_id = ? AND seq < "
                "(SELECT seq FROM fal_jobs WHERE id = ?)", (QUEUED, job.app_id, job.id)).fetchone()
        return ahead

    def waiting(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM fal_jobs WHERE state = ?",
                                      (QUEUED,)).fetchone()[0]

    def add_log(self, job_id: str, message: str, level: str = "INFO") -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO fal_logs (job_id, timestamp, level, message) "
                               "VALUES (?, ?, ?, ?)", (job_id, stamp, level, message))

    def logs(self, job_id: str, since: int = 0) -> list[dict]:
        with self._lock:
            rows = self._conn.execute("SELECT timestamp, level, message FROM fal_logs WHERE job_id = ? "
                                      "ORDER BY n LIMIT -1 OFFSET ?", (job_id, since)).fetchall()
        return [{"message": r["message"], "level": r["level"], "source": "USER",
                 "timestamp": r["timestamp"]} for r in rows]

    def request_cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state != DONE:
            with self._lock, self._conn:
                self._conn.execute("UPDATE fal_jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return job

    def finish(self, job_id: str, *, status_code: int | None, result: object, error: str | None,
               error_type: str | None, inference_time: float | None) -> bool:
        with self._lock, self._conn:
            changed = self._conn.execute(
                "UPDATE fal_jobs SET state = ?, finished = ?, status_code = ?, result = ?, error = ?, "
                "error_type = ?, inference_time = ? WHERE id = ? AND state != ?",
                (DONE, time.time(), status_code, json.dumps(result), error, error_type,
                 inference_time, job_id, DONE)).rowcount
        if changed:
            self._input(job_id).unlink(missing_ok=True)  # only needed to run it (again)
        return bool(changed)

    def recover(self) -> int:
        with self._lock, self._conn:
            dropped = [r[0] for r in self._conn.execute(
                "SELECT id FROM fal_jobs WHERE NOT durable AND state != ?", (DONE,))]
            self._conn.executemany("DELETE FROM fal_jobs WHERE id = ?", [(i,) for i in dropped])
            self._conn.executemany("DELETE FROM fal_logs WHERE job_id = ?", [(i,) for i in dropped])
            return self._conn.execute("UPDATE fal_jobs SET state = ?, started = NULL WHERE state = ? "
                                      "AND durable", (QUEUED, RUNNING)).rowcount

    def expire(self, finished_before: float) -> list[str]:
        with self._lock, self._conn:
            ids = [r[0] for r in self._conn.execute(
                "SELECT id FROM fal_jobs WHERE state = ? AND finished < ?", (DONE, finished_before))]
            self._conn.executemany("DELETE FROM fal_logs WHERE job_id = ?", [(i,) for i in ids])
            self._conn.executemany("DELETE FROM fal_jobs WHERE id = ?", [(i,) for i in ids])
            live = {r[0] for r in self._conn.execute("SELECT id FROM fal_jobs WHERE durable")}
        # Inputs of no job: a crash between writing one and recording its job (or mid-write).
        for path in self._inputs.glob("*.json*") if self._inputs.is_dir() else ():
            if path.name.split(".")[0] not in live and path.stat().st_mtime < finished_before:
                path.unlink(missing_ok=True)
        return ids

    def _input(self, job_id: str) -> Path:
        return self._inputs / f"{job_id}.json"


def _job(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], app_id=row["app_id"], state=row["state"], durable=bool(row["durable"]),
               base_url=row["base_url"], webhook=row["webhook"], created=row["created"],
               started=row["started"], finished=row["finished"], attempts=row["attempts"],
               cancel_requested=bool(row["cancel_requested"]), status_code=row["status_code"],
               result=None if row["result"] is None else json.loads(row["result"]),
               error=row["error"], error_type=row["error_type"],
               inference_time=row["inference_time"])
