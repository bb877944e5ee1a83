"""Webhooks: fal's completion callback, signed with this server's own ED25519 key, delivered durably.

When a queued job submitted with ``?fal_webhook=<url>`` finishes, the queue calls :func:`enqueue`.
The delivery is a row of ``fal_webhooks`` (so it survives a restart) until a POST of fal's payload
is answered 2xx, or fails for good. Attempt *n* + 1 follows attempt *n* after
``base · 2^(n-1)`` seconds, ``base`` = ``STUDIO_WEBHOOK_RETRY_BASE`` (default 7200/511 ≈ 14.1 s),
so the :data:`MAX_ATTEMPTS` (10) attempts span two hours, as fal's do.

Body (JSON): ``request_id``, ``gateway_request_id``, ``status`` (``OK`` | ``ERROR``), ``payload``
(the result body: output JSON, or the error body such as a 422 ``detail``), ``error`` (e.g.
``"Invalid status code: 422"``, null on OK). Headers, as fal sends them: ``X-Fal-Webhook-Request-Id``,
``X-Fal-Webhook-User-Id``, ``X-Fal-Webhook-Timestamp`` (unix seconds) and
``X-Fal-Webhook-Signature``: hex ED25519 over ``request_id \\n user_id \\n timestamp \\n
sha256_hex(body)`` (fal's message). The key is this server's own (``<data dir>/webhook-ed25519.pem``,
made once); its public half is published at ``GET /fal/.well-known/jwks.json`` (an RFC 8037 OKP
JWK), so receivers verify with fal's procedure pointed at this JWKS instead of fal's.

Outbound POSTs follow the image-URL SSRF policy (:func:`studio.fetch.checked_pool`: loopback,
private and other non-global addresses are refused unless ``STUDIO_ALLOWED_HOSTS`` allows them,
e.g. ``STUDIO_ALLOWED_HOSTS=127.0.0.1`` for a local receiver). Redirects are not followed. A
refused or malformed URL is final; a timeout, connection failure or non-2xx answer is retried.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path

import httpcore
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common.env import env_number
from common.errors import InputError
from studio import fetch

from . import db

logger = logging.getLogger(__name__)

#: Needs no API key (receivers fetch the public key without one).
JWKS_PATH = "/fal/.well-known/jwks.json"
MAX_ATTEMPTS = 10
DEFAULT_RETRY_BASE = 7200 / (2 ** (MAX_ATTEMPTS - 1) - 1)
TIMEOUT = 10.0  # seconds one delivery attempt may take in all
MAX_URL_LENGTH = 2048
#: The ``X-Fal-Webhook-User-Id`` (fal's account id): this server has no accounts, so one name.
USER_ID = "post-processing-studio"
KEY_FILE = "webhook-ed25519.pem"
_FINAL = {403, 422}  # InputError statuses of a URL that will never be deliverable
_SCHEMA = """
CREATE TABLE IF NOT EXISTS fal_webhooks (
    id           INTEGER PRIMARY KEY,
    url          TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    body         BLOB NOT NULL,   -- the exact bytes sent (and signed) at every attempt
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,   -- unix time; pushed ahead while an attempt is under way
    last_error   TEXT
)"""

_wake = threading.Event()
_start_lock = threading.Lock()
_started = False
_keys: dict[Path, Ed25519PrivateKey] = {}


def retry_base() -> float:
    """Seconds before the first retry (doubling after each): env ``STUDIO_WEBHOOK_RETRY_BASE``."""
    return env_number("STUDIO_WEBHOOK_RETRY_BASE", DEFAULT_RETRY_BASE, kind=float, minimum=0.001)


def enqueue(*, url: str, request_id: str, gateway_request_id: str, status: str, payload: object,
            error: str | None) -> None:
    """Record the webhook of a finished request for delivery (durably) and wake the sender."""
    message = {"request_id": request_id, "gateway_request_id": gateway_request_id,
               "status": status, "payload": payload, "error": error}
    try:
        body = json.dumps(message).encode()
    except (TypeError, ValueError) as exc:  # fal's convention for a payload it cannot serialise
        body = json.dumps({**message, "payload": None, "payload_error": str(exc)}).encode()
    conn = _connect()
    try:
        with conn:
            conn.execute("INSERT INTO fal_webhooks (url, request_id, body, next_attempt) "
                         "VALUES (?, ?, ?, ?)", (url, request_id, body, time.time()))
    finally:
        conn.close()
    start()
    _wake.set()


def check_url(url: str | None) -> str | None:
    """A submit's ``fal_webhook``: None when absent, else the URL if it is an absolute http(s) URL
    of at most :data:`MAX_URL_LENGTH` characters; :class:`InputError` 422 naming ``fal_webhook``
    otherwise. Its addresses are checked at each delivery (a name may resolve differently later)."""
    if not url:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port
    except ValueError:
        parts = None
    if len(url) > MAX_URL_LENGTH or parts is None or parts.scheme.lower() not in ("http", "https") \
            or not parts.hostname:
        raise InputError("fal_webhook", f"must be an absolute http(s) URL of at most "
                                        f"{MAX_URL_LENGTH} characters", 422)
    return url


def start() -> None:
    """Start the sender thread (idempotent). At start-up it picks up deliveries left pending by an
    earlier run of the server."""
    global _started
    with _start_lock:
        if not _started:
            _started = True
            threading.Thread(target=_sender, daemon=True, name="fal-webhooks").start()


def deliver_due(now: float | None = None) -> float:
    """Make one attempt at every delivery due at ``now``; return the seconds until the next one is
    due (at most 60). The sender thread calls it in a loop; tests call it directly."""
    now = time.time() if now is None else now
    conn = _connect()
    try:
        due = conn.execute("SELECT * FROM fal_webhooks WHERE next_attempt <= ? ORDER BY id",
                           (now,)).fetchall()
        for row in due:
            with conn:  # claim it: another sender (or this one after a crash) waits out the lease
                claimed = conn.execute("UPDATE fal_webhooks SET next_attempt = ? WHERE id = ? AND "
                                       "next_attempt = ?", (now + TIMEOUT + 60, row["id"],
                                                            row["next_attempt"])).rowcount
            if claimed:
                _attempt(conn, row, now)
        upcoming = conn.execute("SELECT MIN(next_attempt) FROM fal_webhooks").fetchone()[0]
    finally:
        conn.close()
    return 60.0 if upcoming is None else max(0.0, min(60.0, upcoming - time.time()))


def sign(request_id: str, timestamp: str, body: bytes) -> str:
    """fal's webhook signature with this server's key: hex ED25519 over
    ``request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)``."""
    message = "\n".join((request_id, USER_ID, timestamp, hashlib.sha256(body).hexdigest()))
    return _private_key().sign(message.encode()).hex()


def jwks() -> dict:
    """The public key as a JSON Web Key Set (RFC 7517/8037), ``kid`` its RFC 7638 thumbprint."""
    raw = _private_key().public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
    x = _b64url(raw)
    thumbprint = _b64url(hashlib.sha256(json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x},
                                                   separators=(",", ":")).encode()).digest())
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "alg": "EdDSA",
                      "use": "sig"}]}


def routes() -> list[Route]:
    """``GET /fal/.well-known/jwks.json``."""
    async def serve_jwks(request: Request) -> JSONResponse:
        return JSONResponse(jwks(), headers={"Cache-Control": "public, max-age=3600"})
    return [Route(JWKS_PATH, serve_jwks, methods=["GET"])]


# --- sending ------------------------------------------------------------------------------------------

def _sender() -> None:
    while True:
        try:
            wait = deliver_due()
        except Exception:  # a broken database must not end deliveries for good: retry later
            logger.exception("webhook delivery pass failed")
            wait = 30.0
        _wake.wait(wait)
        _wake.clear()


def _attempt(conn, row, now: float) -> None:
    attempt = row["attempts"] + 1
    where = urllib.parse.urlsplit(row["url"]).hostname or "?"  # never the full URL: it may hold a secret
    try:
        status = _post(row["url"], row["request_id"], row["body"])
        error = None if 200 <= status < 300 else f"HTTP {status}"
        final = False
    except InputError as err:  # refused or malformed URL; an unresolvable name may come back
        error, final = str(err), err.status in _FINAL
    except httpcore.TimeoutException:
        error, final = f"no answer within {TIMEOUT:g} s", False
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as err:
        error, final = f"connection failed ({type(err).__name__})", False
    with conn:
        if error is None or final or attempt >= MAX_ATTEMPTS:
            conn.execute("DELETE FROM fal_webhooks WHERE id = ?", (row["id"],))
        else:
            conn.execute("UPDATE fal_webhooks SET attempts = ?, next_attempt = ?, last_error = ? "
                         "WHERE id = ?", (attempt, now + retry_base() * 2 ** (attempt - 1), error,
                                          row["id"]))
    if error is None:
        logger.info("webhook of %s delivered to %s (attempt %d)", row["request_id"], where, attempt)
    elif final or attempt >= MAX_ATTEMPTS:
        logger.warning("webhook of %s to %s abandoned after %d attempt(s): %s", row["request_id"],
                       where, attempt, error)
    else:
        logger.info("webhook of %s to %s failed (attempt %d, will retry): %s", row["request_id"],
                    where, attempt, error)


def _post(url: str, request_id: str, body: bytes) -> int:
    """POST ``body`` signed to ``url`` under the SSRF policy; the answer's status."""
    url, pool = fetch.checked_pool(check_url(url), field="fal_webhook", timeout=TIMEOUT)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "post-processing-studio",
               "X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": USER_ID,
               "X-Fal-Webhook-Timestamp": timestamp,
               "X-Fal-Webhook-Signature": sign(request_id, timestamp, body)}
    timeouts = {"connect": min(5.0, TIMEOUT), "read": TIMEOUT, "write": TIMEOUT, "pool": TIMEOUT}
    with pool:
        return pool.request("POST", url, headers=headers, content=body,
                            extensions={"timeout": timeouts}).status


# --- key and database ---------------------------------------------------------------------------------

def _private_key() -> Ed25519PrivateKey:
    """This server's signing key, made once per data directory and kept there (mode 0600). Made
    under a temporary name and linked into place, so two processes starting at once agree on one."""
    path = db.data_dir() / KEY_FILE
    if path not in _keys:
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            temporary = path.with_name(f"{KEY_FILE}.{os.getpid()}.partial")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)  # fails if another process got there first: use theirs
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        _keys[path] = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return _keys[path]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _connect() -> sqlite3.Connection:
    """A connection to the data directory's database, with the deliveries table created."""
    conn = db.connect()
    conn.execute(_SCHEMA)
    conn.commit()
    return conn
