"""Webhook deliveries (studio.fal.webhooks): fal's body and headers, the ED25519 signature checked
against the published JWKS with `cryptography`, the retry schedule, durability, and the SSRF policy.

Deliveries are driven by calling ``deliver_due(now)`` with chosen clocks, so the backoff is checked
exactly, without sleeping; one test runs the app and kills it mid-retry. The webhook of a real JS
client is in test_fal_js_client.py.
"""
import base64
import hashlib
import http.server
import json
import stat
import threading
import time

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from common.errors import InputError
from fal_server import FalServer, data_uri, gradient
from local_http import serving
from studio.fal import db, webhooks
from studio_server import free_port


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records every POST; answers the statuses queued in ``answers`` (then 200)."""
    answers: list[int] = []
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(monkeypatch, tmp_path):
    """A local receiver the SSRF policy lets through (STUDIO_ALLOWED_HOSTS), a fresh data dir, and
    no background sender (the test drives deliveries itself)."""
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("STUDIO_WEBHOOK_RETRY_BASE", "10")
    monkeypatch.setattr(webhooks, "start", lambda: None)
    # A sender thread an earlier in-process app started would claim this test's deliveries from
    # the new data dir: only the test's own thread delivers while the fixture is active.
    deliver, test_thread = webhooks.deliver_due, threading.current_thread()
    monkeypatch.setattr(webhooks, "deliver_due", lambda now=None: deliver(now) if
                        threading.current_thread() is test_thread else 60.0)
    Receiver.answers, Receiver.received = [], []
    with serving(Receiver) as httpd:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook?secret=s3"


def verify_with_jwks(jwks: dict, headers: dict, body: bytes) -> bool:
    """fal's receiver-side check (fal docs): ED25519 over request id, user id, timestamp and the
    body's SHA-256, with a key of the JWKS."""
    message = "\n".join((headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"],
                         headers["x-fal-webhook-timestamp"], hashlib.sha256(body).hexdigest()))
    for key in jwks["keys"]:
        assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
        try:
            public.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message.encode())
            return True
        except InvalidSignature:
            pass
    return False


def published_jwks() -> dict:
    with TestClient(Starlette(routes=webhooks.routes())) as client:
        response = client.get(webhooks.JWKS_PATH)
    assert response.status_code == 200
    return response.json()


def pending() -> list:
    conn = db.connect()
    try:
        return conn.execute("SELECT attempts, next_attempt, last_error FROM fal_webhooks").fetchall()
    finally:
        conn.close()


def test_delivery_has_fals_body_and_headers_and_a_signature_the_jwks_verifies(receiver):
    payload = {"images": [{"url": "https://x/fal/files/t/a.png", "width": 8, "height": 8}]}
    webhooks.enqueue(url=receiver, request_id="req-1", gateway_request_id="gw-1", status="OK",
                     payload=payload, error=None)
    before = int(time.time())
    webhooks.deliver_due()
    [(headers, body)] = Receiver.received
    assert json.loads(body) == {"request_id": "req-1", "gateway_request_id": "gw-1", "status": "OK",
                                "payload": payload, "error": None}
    assert headers["content-type"] == "application/json"
    assert headers["x-fal-webhook-request-id"] == "req-1"
    assert before <= int(headers["x-fal-webhook-timestamp"]) <= time.time()
    assert verify_with_jwks(published_jwks(), headers, body)
    # The signature covers the body: one changed byte fails.
    assert not verify_with_jwks(published_jwks(), headers, body.replace(b"req-1", b"req-2"))
    assert pending() == []  # delivered: nothing left to send


def test_error_payload_is_status_error_with_the_detail(receiver):
    detail = {"detail": [{"loc": ["body", "grain_intensity"], "msg": "too big", "type": "value_error"}]}
    webhooks.enqueue(url=receiver, request_id="r", gateway_request_id="r", status="ERROR",
                     payload=detail, error="Invalid status code: 422")
    webhooks.deliver_due()
    body = json.loads(Receiver.received[0][1])
    assert (body["status"], body["error"], body["payload"]) == ("ERROR", "Invalid status code: 422",
                                                                detail)


def test_retries_double_the_delay_and_stop_after_ten_attempts(receiver):
    Receiver.answers = [500] * 20
    webhooks.enqueue(url=receiver, request_id="r", gateway_request_id="r", status="OK",
                     payload={}, error=None)
    now = time.time()
    for attempt in range(1, webhooks.MAX_ATTEMPTS):
        webhooks.deliver_due(now)
        assert len(Receiver.received) == attempt
        [(attempts, next_attempt, last_error)] = pending()
        delay = 10 * 2 ** (attempt - 1)  # STUDIO_WEBHOOK_RETRY_BASE=10
        assert (attempts, last_error) == (attempt, "HTTP 500")
        assert next_attempt == pytest.approx(now + delay)
        webhooks.deliver_due(now + delay - 0.5)  # not yet due
        assert len(Receiver.received) == attempt
        now += delay
    webhooks.deliver_due(now)  # the tenth attempt fails too: abandoned
    assert len(Receiver.received) == webhooks.MAX_ATTEMPTS == 10
    assert pending() == []


def test_default_schedule_spans_two_hours():
    delays = [webhooks.DEFAULT_RETRY_BASE * 2 ** n for n in range(webhooks.MAX_ATTEMPTS - 1)]
    assert sum(delays) == pytest.approx(2 * 3600)


def test_a_pending_delivery_survives_a_restart(receiver):
    Receiver.answers = [503]
    webhooks.enqueue(url=receiver, request_id="r", gateway_request_id="r", status="OK",
                     payload={}, error=None)
    webhooks.deliver_due()
    assert len(pending()) == 1
    webhooks._keys.clear()  # a new process: nothing cached, only the data dir
    webhooks.deliver_due(time.time() + 11)
    assert len(Receiver.received) == 2 and pending() == []
    # Both attempts were signed with the one key kept in the data dir.
    assert all(verify_with_jwks(published_jwks(), h, b) for h, b in Receiver.received)


def test_the_key_is_kept_private_in_the_data_dir(receiver, tmp_path):
    jwks = published_jwks()
    key_file = tmp_path / webhooks.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    webhooks._keys.clear()
    assert published_jwks() == jwks  # read back, not regenerated


def test_loopback_is_refused_by_default_and_not_retried(receiver, monkeypatch):
    monkeypatch.delenv("STUDIO_ALLOWED_HOSTS")
    webhooks.enqueue(url=receiver, request_id="r", gateway_request_id="r", status="OK",
                     payload={}, error=None)
    webhooks.deliver_due()
    assert Receiver.received == [] and pending() == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "not a url"])
def test_a_malformed_url_is_dropped(receiver, url):
    webhooks.enqueue(url=url, request_id="r", gateway_request_id="r", status="OK", payload={},
                     error=None)
    webhooks.deliver_due()
    assert pending() == []


def test_a_dead_receiver_is_retried(receiver):
    webhooks.enqueue(url="http://127.0.0.1:9/closed", request_id="r", gateway_request_id="r",
                     status="OK", payload={}, error=None)
    webhooks.deliver_due()
    [(attempts, _, last_error)] = pending()
    assert attempts == 1 and last_error.startswith("connection failed")


@pytest.mark.parametrize("url", ["ftp://h/x", "https://", "/relative", "http://h:99999/x",
                                 "https://h/" + "x" * 2048])
def test_check_url_refuses_what_can_never_be_delivered(url):
    with pytest.raises(InputError) as caught:
        webhooks.check_url(url)
    assert (caught.value.field, caught.value.status) == ("fal_webhook", 422)


def test_check_url_passes_http_urls_and_absence():
    assert webhooks.check_url("https://my.app/hook?x=1") == "https://my.app/hook?x=1"
    assert webhooks.check_url(None) is None and webhooks.check_url("") is None


def test_a_webhook_whose_receiver_is_down_arrives_after_a_sigkill_and_restart(tmp_path):
    """End to end: the receiver is down, the server fails its first attempts, is killed with
    SIGKILL, the receiver comes up, the restarted server delivers from its database."""
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    server = FalServer(tmp_path, env={"STUDIO_ALLOWED_HOSTS": "127.0.0.1",
                                      "STUDIO_WEBHOOK_RETRY_BASE": "1"}).start()
    try:
        with server.http() as client:
            refused = client.post("/fal/queue/fal-ai/post-processing?fal_webhook=ftp://h/x",
                                  json={"image_url": data_uri(gradient())})
            rid = client.post(f"/fal/queue/fal-ai/post-processing?fal_webhook={hook}",
                              json={"image_url": data_uri(gradient())}).json()["request_id"]
        assert refused.status_code == 422  # refused at submit, not dropped at delivery
        assert "fal_webhook" in json.dumps(refused.json())
        deadline = time.monotonic() + 60
        while "will retry" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "will retry" in server.log()
        server.kill()
        Receiver.answers, Receiver.received = [], []
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            server.start()
            deadline = time.monotonic() + 60
            while not Receiver.received and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            httpd.shutdown()
            httpd.server_close()
        [(headers, body)] = Receiver.received
        assert json.loads(body)["request_id"] == rid and json.loads(body)["status"] == "OK"
        jwks = httpx.get(server.url + webhooks.JWKS_PATH, verify=str(server.ca)).json()
        assert verify_with_jwks(jwks, headers, body)
    finally:
        server.stop()
