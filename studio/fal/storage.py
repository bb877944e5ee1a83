"""fal's file storage: uploads from both real clients, and result files, at capability URLs.

Routes (``/fal/rest/...`` is what the clients call ``https://rest.fal.ai/...``, ``/fal/cdn/...`` is
Python's ``https://v3.fal.media/...``):

* ``POST /fal/rest/storage/upload/initiate`` ``{"content_type", "file_name"}`` →
  ``{"upload_url", "file_url"}`` (JS ``storage.upload`` and auto-upload; Python ``repository="fal"``);
* ``PUT /fal/upload/{token}`` with the raw bytes stores them (JS sends no key here);
* ``POST /fal/rest/storage/auth/token`` → ``{"token", "token_type", "base_url", "expires_at"}`` and
  ``POST /fal/cdn/files/upload`` (raw bytes, ``Content-Type``, ``X-Fal-File-Name``) →
  ``{"access_url", ...}``: Python ``fal_client.upload``'s default flow. The token is the caller's
  own ``Authorization`` credentials handed back, so the CDN upload is checked like any other call;
* ``GET /fal/files/{token}/{name}`` serves a stored file.

Upload targets and files are *capability URLs*: the token (``secrets.token_urlsafe``, 256 bits) is
the only credential, so they work without an API key (the auth middleware exempts
:data:`CAPABILITY_PREFIXES`). Upload and file tokens differ: knowing a file's URL does not let anyone
replace it. Files live in ``<data dir>/files/<token>``, their metadata in the ``storage_files``
table; both expire ``STUDIO_RESULT_TTL`` seconds after they were created (:func:`cleanup`, called
by the queue's cleaning timer). An upload
is capped at ``STUDIO_MAX_DOWNLOAD_BYTES`` (:func:`studio.fetch.max_download_bytes`), the largest
image a request may use anyway. Multipart uploads (JS above 90 MiB, Python above 100 MiB) are
beyond that cap and answered 413.

Stored bytes are served with their own type only for raster images; anything else is an attachment
of type ``application/octet-stream``, and every file carries ``Content-Security-Policy: sandbox``
and ``nosniff``, so an uploaded HTML or SVG file can never run script in the page's origin.
"""
from __future__ import annotations

import contextlib
import datetime
import re
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from common.env import env_number
from common.errors import InputError
from studio import limits
from studio.fetch import max_download_bytes

from . import db
from .urls import public_base

UPLOAD_PREFIX = "/fal/upload/"
FILES_PREFIX = "/fal/files/"
#: Paths that are their own credential: no API key is asked for below them.
CAPABILITY_PREFIXES = (UPLOAD_PREFIX, FILES_PREFIX)
DEFAULT_TTL = 24 * 3600.0
TOKEN_LIFETIME = 3600  # seconds a storage token from auth/token is announced to be valid
_FILE_URL = re.compile(re.escape(FILES_PREFIX) + r"([A-Za-z0-9_-]{32,})/[^/]*$")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_INLINE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff",
                 "image/avif"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS storage_files (
    token        TEXT PRIMARY KEY,  -- the file's capability, in its URL
    upload_token TEXT UNIQUE,       -- the upload target's capability; NULL for server-made files
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER,           -- NULL until the bytes have arrived
    created_at   REAL NOT NULL
)"""


def result_ttl() -> float:
    """Seconds uploads, results (files and jobs) are kept: env ``STUDIO_RESULT_TTL`` or 24 h."""
    return env_number("STUDIO_RESULT_TTL", DEFAULT_TTL, kind=float, minimum=0.001)


def save_file(base_url: str, data: bytes, content_type: str, file_name: str) -> str:
    """Store ``data`` (a result image) and return its absolute public URL under ``base_url``
    (e.g. ``https://host:port``, as :func:`studio.fal.urls.public_base` gives)."""
    token, name = secrets.token_urlsafe(32), _safe_name(file_name)
    with _transaction() as conn:
        conn.execute("INSERT INTO storage_files (token, file_name, content_type, size, created_at) "
                     "VALUES (?, ?, ?, ?, ?)", (token, name, content_type, len(data), time.time()))
    db.write_file(_path(token), data)
    return _file_url(base_url, token, name)


def resolve(url: object) -> bytes | None:
    """The bytes behind one of this server's file URLs, whatever host or base it was reached at;
    None for any other URL (also an unknown, cleaned-up or not yet uploaded file). Image fetching calls
    this first, so the server never fetches its own files over the network."""
    if not isinstance(url, str):
        return None
    try:
        match = _FILE_URL.search(urllib.parse.urlsplit(url.strip()).path)
    except ValueError:
        return None
    row = match and _file(match.group(1))
    if not row:
        return None
    try:
        return _path(row["token"]).read_bytes()
    except FileNotFoundError:
        return None


def cleanup(now: float | None = None) -> int:
    """Delete files (and unfinished uploads) older than :func:`result_ttl` at ``now`` (default: the
    time), and leftover files that old with no record (a crash mid-write). Returns how many files
    were deleted. The queue calls it at start-up and on its cleaning timer."""
    cutoff = (time.time() if now is None else now) - result_ttl()
    with _transaction() as conn:
        expired = {row["token"] for row in
                   conn.execute("SELECT token FROM storage_files WHERE created_at < ?", (cutoff,))}
        conn.executemany("DELETE FROM storage_files WHERE token = ?", [(t,) for t in expired])
        live = {row["token"] for row in conn.execute("SELECT token FROM storage_files")}
    for path in _files_dir().iterdir():
        token = path.name.removesuffix(".partial")
        with contextlib.suppress(FileNotFoundError):  # a concurrent clean-up got there first
            if token not in live and (token in expired or path.stat().st_mtime < cutoff):
                path.unlink()
    return len(expired)


# --- routes -------------------------------------------------------------------------------------------

async def _initiate(request: Request) -> Response:
    body = await limits.read_json(request)
    if not isinstance(body, dict):
        raise InputError("body", 'must be a JSON object {"content_type": ..., "file_name": ...}', 422)
    content_type = _content_type(body.get("content_type", "application/octet-stream"))
    name = _safe_name(_file_name(body.get("file_name")))
    token, upload_token = await run_in_threadpool(_new_upload, content_type, name)
    base = public_base(request)
    return JSONResponse({"upload_url": f"{base.rstrip('/')}{UPLOAD_PREFIX}{upload_token}",
                         "file_url": _file_url(base, token, name)})


async def _initiate_multipart(request: Request) -> Response:
    raise InputError("file", f"multipart uploads are not supported: files over 90 MiB exceed this "
                             f"server's upload limit of {max_download_bytes():,} bytes", 413)


async def _put_upload(request: Request) -> Response:
    token = await run_in_threadpool(_upload_target, request.path_params["token"])
    if token is None:  # checked before the body is read: an unknown target buffers nothing
        return JSONResponse({"detail": "unknown or expired upload URL"}, status_code=404)
    await run_in_threadpool(_store_upload, token, await _read_upload(request))
    return JSONResponse({})


async def _token(request: Request) -> Response:
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=TOKEN_LIFETIME)
    return JSONResponse({"token": credentials.strip() or "anonymous", "token_type": scheme or "Key",
                         "base_url": f"{public_base(request).rstrip('/')}/fal/cdn",
                         "expires_at": expires.isoformat()})


async def _cdn_upload(request: Request) -> Response:
    content_type = _content_type(request.headers.get("content-type", "application/octet-stream"))
    name = _safe_name(_file_name(request.headers.get("x-fal-file-name")))
    data = await _read_upload(request)
    url = await run_in_threadpool(save_file, public_base(request), data, content_type, name)
    return JSONResponse({"access_url": url, "content_type": content_type,
                         "file_name": url.rpartition("/")[2], "file_size": len(data)})


async def _serve(request: Request) -> Response:
    row = await run_in_threadpool(_file, request.path_params["token"])
    path = row and _path(row["token"])
    if not row or row["size"] is None or not await run_in_threadpool(path.is_file):
        return JSONResponse({"detail": "unknown or expired file URL"}, status_code=404)
    safety = {"Content-Security-Policy": "default-src 'none'; sandbox",
              "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if row["content_type"] in _INLINE_TYPES:
        return FileResponse(path, media_type=row["content_type"], headers=safety,
                            content_disposition_type="inline", filename=row["file_name"])
    return FileResponse(path, media_type="application/octet-stream", headers=safety,
                        filename=row["file_name"])


def _json_errors(handler):
    """Answer a refused request as fal does: JSON ``{"detail": message}`` with its status."""
    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except InputError as err:
            return JSONResponse({"detail": str(err)}, status_code=err.status)
    return handle


def routes() -> list[Route]:
    """The storage routes (mounted by :func:`studio.fal.routes`)."""
    return [Route("/fal/rest/storage/upload/initiate", _json_errors(_initiate), methods=["POST"]),
            Route("/fal/rest/storage/upload/initiate-multipart", _json_errors(_initiate_multipart),
                  methods=["POST"]),
            Route(UPLOAD_PREFIX + "{token}", _json_errors(_put_upload), methods=["PUT"]),
            Route("/fal/rest/storage/auth/token", _json_errors(_token), methods=["POST"]),
            Route("/fal/cdn/files/upload", _json_errors(_cdn_upload), methods=["POST"]),
            Route(FILES_PREFIX + "{token}/{name}", _serve, methods=["GET"])]


# --- helpers (the database and file ones run in worker threads: a commit waits for the disk) --------

def _new_upload(content_type: str, name: str) -> tuple[str, str]:
    """A new upload's (file token, upload token), recorded without bytes yet."""
    token, upload_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with _transaction() as conn:
        conn.execute("INSERT INTO storage_files (token, upload_token, file_name, content_type, "
                     "created_at) VALUES (?, ?, ?, ?, ?)",
                     (token, upload_token, name, content_type, time.time()))
    return token, upload_token


def _upload_target(upload_token: str) -> str | None:
    """The file token an upload token writes to, None if unknown (or cleaned up)."""
    with _transaction() as conn:
        row = conn.execute("SELECT token FROM storage_files WHERE upload_token = ?",
                           (upload_token,)).fetchone()
    return row and row["token"]


def _store_upload(token: str, data: bytes) -> None:
    db.write_file(_path(token), data)
    with _transaction() as conn:
        conn.execute("UPDATE storage_files SET size = ? WHERE token = ?", (len(data), token))


async def _read_upload(request: Request) -> bytes:
    """The raw request body, at most :func:`max_download_bytes` (413), within the body deadline."""
    cap = max_download_bytes()
    declared = request.headers.get("content-length", "")
    too_large = InputError("file", f"the upload is larger than this server's limit of {cap:,} bytes", 413)
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    data = await limits.read_body(request)
    if len(data) > cap:
        raise too_large
    if not data:
        raise InputError("file", "the upload is empty", 400)
    return data


def _content_type(value: object) -> str:
    value = value.split(";")[0].strip().lower() if isinstance(value, str) else value
    if not isinstance(value, str) or len(value) > 100 or not _CONTENT_TYPE.fullmatch(value):
        raise InputError("content_type", "must be a media type such as image/png", 422)
    return value


def _file_name(value: object) -> str:
    if value is None or value == "":
        return "upload.bin"
    if not isinstance(value, str) or len(value) > 255:
        raise InputError("file_name", "must be a string of at most 255 characters", 422)
    return value


def _safe_name(name: str) -> str:
    """A file name fit for a URL path segment: other characters become ``_``; at most 100."""
    name = _UNSAFE_NAME_CHARS.sub("_", name.rpartition("/")[2]).strip("._") or "file"
    return name[-100:]


def _file_url(base_url: str, token: str, name: str) -> str:
    return f"{base_url.rstrip('/')}{FILES_PREFIX}{token}/{name}"


def _file(token: str) -> sqlite3.Row | None:
    with _transaction() as conn:
        return conn.execute("SELECT * FROM storage_files WHERE token = ?", (token,)).fetchone()


def _files_dir() -> Path:
    path = db.data_dir() / "files"
    path.mkdir(exist_ok=True)
    return path


def _path(token: str) -> Path:
    return _files_dir() / token


_ready: set[Path] = set()


@contextlib.contextmanager
def _transaction() -> Iterator[sqlite3.Connection]:
    """One transaction on a fresh connection, with this module's table created (once per data
    directory per process); the connection is closed afterwards."""
    conn = db.connect()
    try:
        if db.data_dir() not in _ready:
            conn.execute(_SCHEMA)
            conn.commit()
            _ready.add(db.data_dir())
        with conn:
            yield conn
    finally:
        conn.close()
