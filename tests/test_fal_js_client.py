"""The real JS client, ``@fal-ai/client`` 1.10.1 on Node, against ``python app.py`` over https.

The client is configured as the README says: ``fal.config({credentials, proxyUrl: {url:
"<server>/fal/proxy", when: "always"}})``, trusting the throw-away CA through
``NODE_EXTRA_CA_CERTS``. Each test runs one step of ``tests/js/steps.mjs`` in a fresh ``node``.
The package is installed with npm into a temporary folder once per session. Without node/npm the
tests skip, except in CI (``CI=true``), where they fail.
"""
import base64
import hashlib
import http.server
import io
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image

import effects
from fal_server import KEY, FalServer, gradient
from local_http import serving

STEPS = Path(__file__).resolve().parent / "js" / "steps.mjs"
PACKAGE = "@fal-ai/client@1.10.1"
GRAIN = {"enable_grain": True, "grain_intensity": 0.3, "seed": 7}  # what steps.mjs sends


@pytest.fixture(scope="session")
def fal_js(tmp_path_factory) -> Path:
    """A folder where ``npm install @fal-ai/client@1.10.1`` ran."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        reason = "node and npm are needed for the real JS client (Debian: apt-get install nodejs npm)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must install them (.ci/run does)")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("fal-js")
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), PACKAGE],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"npm install {PACKAGE} failed:\n{done.stderr[-3000:]}"
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The webhook receiver is on 127.0.0.1, which the SSRF policy refuses unless allowed.
    server = FalServer(tmp_path_factory.mktemp("fal-js-server"),
                       env={"STUDIO_API_KEYS": KEY, "STUDIO_ALLOWED_HOSTS": "127.0.0.1",
                            "STUDIO_WEBHOOK_RETRY_BASE": "0.2"}).start()
    yield server
    server.stop()


def js(server: FalServer, fal_js: Path, step: str, *, key: str | None = KEY,
       image: Image.Image | None = None, webhook: str = "") -> dict:
    """Run one step of steps.mjs; its printed ``{"ok": ...}`` or ``{"error": ...}``."""
    png = server.folder / f"input-{step}.png"
    (image or gradient()).save(png)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_KEY")}
    env.update({"FAL_JS_DIR": str(fal_js), "STUDIO_URL": server.url, "FAL_KEY": key or "",
                "INPUT_PNG": str(png), "WEBHOOK_URL": webhook, "NODE_EXTRA_CA_CERTS": str(server.ca)})
    done = subprocess.run(["node", str(STEPS), step], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def fetched(server: FalServer, url: str) -> np.ndarray:
    """The pixels of a file this server handed out, fetched without a key (the URL is the key)."""
    assert url.startswith(server.url + "/fal/files/")
    response = httpx.get(url, verify=str(server.ca))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def expected(params: dict, image: Image.Image | None = None) -> np.ndarray:
    return np.asarray(effects.process(image or gradient(), params))


def test_run_answers_the_processed_image_at_a_file_url_and_the_request_id(server, fal_js):
    out = js(server, fal_js, "run")["ok"]
    assert out["requestId"]
    [record] = out["data"]["images"]
    assert (record["width"], record["height"], record["content_type"]) == (64, 64, "image/png")
    np.testing.assert_array_equal(fetched(server, record["url"]), expected(GRAIN))


@pytest.mark.parametrize("step", ["subscribe", "stream"])
def test_subscribe_polling_and_streaming_report_stage_logs(server, fal_js, step):
    out = js(server, fal_js, step)["ok"]
    statuses = [u["status"] for u in out["updates"]]
    assert statuses[-1] == "COMPLETED" and set(statuses) <= {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    logs = out["updates"][-1]["logs"]  # polling: the full list; streaming: JS appends new lines
    assert logs[0] == "fal-ai/post-processing: starting"
    assert [line for line in logs if line.startswith("effect ")] == ["effect 1/1: grain"]
    assert len(logs) == len(set(logs))  # streamed events carry only new lines: none repeated
    np.testing.assert_array_equal(fetched(server, out["result"]["data"]["images"][0]["url"]),
                                  expected(GRAIN))


def test_submit_status_and_result(server, fal_js):
    out = js(server, fal_js, "queue")["ok"]
    submitted, completed = out["submitted"], out["completed"]
    rid = submitted["request_id"]
    assert submitted["gateway_request_id"] == rid
    assert submitted["status_url"] == f"{server.url}/fal/queue/fal-ai/post-processing/requests/{rid}/status"
    assert out["statuses"][-1] == "COMPLETED"
    assert completed["metrics"]["inference_time"] > 0 and completed["logs"]
    assert out["result"]["requestId"] == rid
    np.testing.assert_array_equal(fetched(server, out["result"]["data"]["images"][0]["url"]),
                                  expected(GRAIN))


def test_cancel_a_running_upscale(server, fal_js):
    out = js(server, fal_js, "cancel", image=gradient(512))["ok"]
    completed = out["completed"]
    assert (completed["status"], completed["error"], completed["error_type"]) == \
        ("COMPLETED", "Invalid status code: 400", "request_cancelled")
    assert (out["result"]["name"], out["result"]["status"]) == ("ApiError", 400)
    assert (out["again"]["status"], out["again"]["body"]) == (400, {"status": "ALREADY_COMPLETED"})


class WebhookReceiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    arrived = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).arrived.set()

    def log_message(self, *args):
        pass


def test_webhook_arrives_signed_with_the_key_of_the_servers_jwks(server, fal_js):
    with serving(WebhookReceiver) as httpd:
        hook = f"http://127.0.0.1:{httpd.server_address[1]}/fal-webhook"
        submitted = js(server, fal_js, "webhook", webhook=hook)["ok"]
        assert WebhookReceiver.arrived.wait(30), server.log()[-2000:]
    [(headers, body)] = WebhookReceiver.received
    payload = json.loads(body)
    assert (payload["request_id"], payload["gateway_request_id"], payload["status"], payload["error"]) \
        == (submitted["request_id"], submitted["request_id"], "OK", None)
    np.testing.assert_array_equal(fetched(server, payload["payload"]["images"][0]["url"]),
                                  expected(GRAIN))
    assert headers["x-fal-webhook-request-id"] == submitted["request_id"]
    assert abs(int(headers["x-fal-webhook-timestamp"]) - time.time()) < 300
    # Verified as a receiver does, against the JWKS the server publishes (no key needed for it).
    jwks = httpx.get(server.url + "/fal/.well-known/jwks.json", verify=str(server.ca)).json()
    [key] = jwks["keys"]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
    message = "\n".join((headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"],
                         headers["x-fal-webhook-timestamp"], hashlib.sha256(body).hexdigest()))
    public.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message.encode())  # raises if bad


def uploads(server: FalServer) -> list[str]:
    """The names of the files clients uploaded (not results) that the server's storage holds."""
    conn = sqlite3.connect(server.folder / "data" / "studio.sqlite3")
    try:
        return [row[0] for row in conn.execute(
            "SELECT file_name FROM storage_files WHERE upload_token IS NOT NULL AND size IS NOT NULL "
            "ORDER BY created_at")]
    finally:
        conn.close()


def test_storage_upload_stores_the_bytes_at_a_file_url(server, fal_js):
    url = js(server, fal_js, "upload")["ok"]
    assert url.startswith(server.url + "/fal/files/") and url.endswith(".png")
    buffer = io.BytesIO()
    gradient().save(buffer, "PNG")
    response = httpx.get(url, verify=str(server.ca))  # no key: the URL is the capability
    assert response.status_code == 200 and response.content == buffer.getvalue()


def test_a_file_input_is_uploaded_and_used_by_the_run(server, fal_js):
    before = uploads(server)
    out = js(server, fal_js, "autoUpload", image=gradient(48))["ok"]
    assert uploads(server) == [*before, "photo.png"]  # File.name travels with the upload
    record = out["data"]["images"][0]
    assert (record["width"], record["height"]) == (48, 48)
    np.testing.assert_array_equal(fetched(server, record["url"]), expected(GRAIN, gradient(48)))


@pytest.mark.parametrize("step", ["invalidRun", "invalidSubscribe"])
def test_an_invalid_field_is_a_validation_error_naming_it(server, fal_js, step):
    error = js(server, fal_js, step)["error"]
    assert (error["name"], error["status"], error["validation"]) == ("ValidationError", 422, True)
    [field_error] = error["fieldErrors"]
    assert field_error["loc"] == ["body", "grain_intensity"]
    assert field_error["msg"].startswith("grain_intensity: 5 ")


def test_aura_sr_through_subscribe(server, fal_js):
    out = js(server, fal_js, "auraSr", image=gradient(16))["ok"]
    image = out["result"]["data"]["image"]
    assert (image["width"], image["height"]) == (64, 64)
    assert fetched(server, image["url"]).shape == (64, 64, 3)
    assert any(u["logs"] and any(l.startswith("AuraSR tile") for l in u["logs"]) for u in out["updates"])


@pytest.mark.parametrize("key, reason", [("wrong-key", "is not a valid key"), (None, "is missing")])
def test_a_wrong_or_missing_key_is_401(server, fal_js, key, reason):
    error = js(server, fal_js, "run", key=key)["error"]
    assert (error["name"], error["status"]) == ("ApiError", 401)
    assert reason in error["body"]["detail"]
