"""Hostile input through both API styles of the running app: every refusal is a 4xx (or a readable
Gradio error) naming the field, never a 500, a traceback or a local path; a held slot makes requests
wait, not fail; files outside the app's cache are never served; and normal requests still work after.
"""
import base64
import http.server
import io
import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio.route_utils import delete_files_created_by_app
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from local_http import serving
from studio import limits
from common.errors import InputError
from studio_server import client, server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chelsea.png"
LEAKS = ("Traceback", 'File "', "/work", "/tmp", "/root", "site-packages", "PIL.", "Errno")


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


SMALL_PNG = _encode(Image.new("RGB", (24, 16), (10, 200, 30)), "PNG")
NOISE_JPEG = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)),
                     "JPEG")
BOMB_PNG = _bomb_png(8000, 8000)
GIF_FRAMES = [Image.new("RGB", (12, 10), c) for c in ((250, 0, 0), (0, 0, 250))]
ANIMATED_GIF = _encode(GIF_FRAMES[0], "GIF", save_all=True, append_images=GIF_FRAMES[1:])


def data_uri(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


class _Images(http.server.BaseHTTPRequestHandler):
    """/img (PNG), /html, /to-ip (redirect to 127.0.0.1), /big (1 MB, no Content-Length)."""

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path == "/img":
            self._send(SMALL_PNG)
        elif self.path == "/html":
            self._send(b"<html><body>not an image</body></html>")
        elif self.path == "/to-ip":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/img")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            try:
                self.wfile.write(SMALL_PNG + b"\0" * 1_000_000)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.send_error(404)

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_host():
    with serving(_Images) as httpd:
        yield httpd.server_address[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("STUDIO_ALLOWED_HOSTS", "STUDIO_MAX_DOWNLOAD_BYTES", "STUDIO_MAX_REQUEST_BYTES",
                 "STUDIO_MAX_PIXELS", "AURASR_MAX_INPUT_PIXELS"):
        monkeypatch.delenv(name, raising=False)


def post(server, route, body=None, **kwargs) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.post(f"{server}/api/{route}", timeout=60, **kwargs)


def assert_refused(response: httpx.Response, status: int, field: str, *fragments: str) -> str:
    assert response.status_code == status, response.text
    for leak in LEAKS:
        assert leak not in response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", field]
    assert detail["msg"].startswith(f"{field}: ")
    for fragment in fragments:
        assert fragment in detail["msg"]
    return detail["msg"]


def assert_app_error(call, *fragments: str) -> str:
    with pytest.raises(AppError) as info:
        call()
    message = str(info.value)
    for leak in LEAKS:
        assert leak not in message
    for fragment in fragments:
        assert fragment in message
    return message


# --- JSON API: URL inputs -------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["post-processing", "aura-sr"])
def test_json_local_server_refused_then_allowed_by_opt_in(server, image_host, monkeypatch, route):
    body = {"image_url": f"http://127.0.0.1:{image_host}/img"}
    assert_refused(post(server, route, body), 403, "image_url", "address 127.0.0.1 is loopback",
                   "STUDIO_ALLOWED_HOSTS")
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    r = post(server, route, body)
    assert r.status_code == 200, r.text


def test_json_redirect_to_private_address_refused(server, image_host, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "localhost")
    body = {"image_url": f"http://localhost:{image_host}/to-ip"}
    assert_refused(post(server, "post-processing", body), 403, "image_url", "127.0.0.1 is loopback",
                   "after 1 redirect")


def test_json_dissolve_url_checked_too(server):
    body = {"image_url": data_uri(SMALL_PNG), "enable_dissolve": True,
            "dissolve_image_url": "http://169.254.169.254/latest/meta-data/"}
    assert_refused(post(server, "post-processing", body), 403, "dissolve_image_url",
                   "169.254.169.254 is link-local")


@pytest.mark.parametrize("url, status, message", [
    ("file:///etc/passwd", 422, "scheme file: is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", 422, "scheme gopher: is not allowed"),
    ("http://[::ffff:127.0.0.1]/", 403, "maps to 127.0.0.1, which is loopback"),
    ("http://2130706433/", 403, "resolves to 127.0.0.1, which is loopback"),
    ("data:image/png;base64,%%%", 400, "not valid base64"),
    ("data:text/plain,hello", 415, "does not point to an image"),
])
def test_json_bad_urls(server, url, status, message):
    assert_refused(post(server, "post-processing", {"image_url": url}), status, "image_url", message)


def test_json_non_image_and_oversized_downloads(server, image_host, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    assert_refused(post(server, "post-processing", {"image_url": f"http://127.0.0.1:{image_host}/html"}),
                   415, "image_url", "does not point to an image")
    monkeypatch.setenv("STUDIO_MAX_DOWNLOAD_BYTES", "100000")
    assert_refused(post(server, "post-processing", {"image_url": f"http://127.0.0.1:{image_host}/big"}),
                   413, "image_url", "download limit of 100,000 bytes")


# --- JSON API: images -----------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["post-processing", "aura-sr"])
@pytest.mark.parametrize("data, status, message", [
    (BOMB_PNG, 413, "8000×8000"),
    (NOISE_JPEG[: len(NOISE_JPEG) // 2], 400, "JPEG data is corrupt or truncated"),
    (b"GIF89a" + b"\0" * 4, 400, "GIF header is corrupt"),
    (b"\x89PNG\r\n\x1a\n", 400, "PNG header is corrupt"),
], ids=["bomb", "truncated-jpeg", "short-gif", "bare-png-magic"])
def test_json_hostile_images(server, route, data, status, message):
    assert_refused(post(server, route, {"image_url": data_uri(data)}), status, "image_url", message)


def test_json_upscale_input_cap_from_the_upscaler(server, monkeypatch):
    monkeypatch.setenv("AURASR_MAX_INPUT_PIXELS", "300")
    assert_refused(post(server, "aura-sr", {"image_url": data_uri(SMALL_PNG)}), 413, "image_url",
                   "24×16 (384 pixels)", "limit is 300 pixels")


def test_json_animated_gif_uses_first_frame(server):
    r = post(server, "post-processing", {"image_url": data_uri(ANIMATED_GIF, "image/gif")})
    assert r.status_code == 200, r.text
    record = r.json()["images"][0]
    first = Image.open(io.BytesIO(base64.b64decode(record["url"].partition(",")[2])))
    assert (record["width"], record["height"]) == (12, 10)
    assert first.convert("RGB").getpixel((5, 5)) == (250, 0, 0)


# --- JSON API: parameters and bodies --------------------------------------------------------------

@pytest.mark.parametrize("body, field, message", [
    ({"grain_intensity": "NaN", "enable_grain": True}, "grain_intensity", "finite number"),
    ({"blur_radius": 10**30}, "blur_radius", "out of range"),
    ({"enable_vignette": "perhaps"}, "enable_vignette", "must be true or false"),
    ({"tint_mode": ["sepia"]}, "tint_mode", "is not one of"),
    ({"seed": -1}, "seed", "out of range"),
])
def test_json_invalid_parameters_are_422_naming_the_field(server, body, field, message):
    assert_refused(post(server, "post-processing", {"image_url": data_uri(SMALL_PNG), **body}), 422,
                   field, message)


def test_json_nan_literal_is_refused(server):
    body = json.dumps({"image_url": data_uri(SMALL_PNG), "contrast": float("nan")})  # "NaN" token
    assert_refused(post(server, "post-processing", content=body,
                        headers={"content-type": "application/json"}), 422, "contrast")


@pytest.mark.parametrize("content", [b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe\x00garbage", b""],
                         ids=["deep-list", "deep-object", "bad-utf", "empty"])
def test_json_hostile_bodies(server, content):
    r = post(server, "post-processing", content=content, headers={"content-type": "application/json"})
    assert_refused(r, 422, "body", "is not valid JSON")


def test_json_body_size_cap(server, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_REQUEST_BYTES", "1000")
    body = {"image_url": data_uri(SMALL_PNG + b"\0" * 2000)}
    assert_refused(post(server, "post-processing", body), 413, "body", "larger than 1,000 bytes")

    def chunks():  # no Content-Length: the cap must be counted while reading
        for _ in range(10):
            yield b" " * 500
    r = post(server, "post-processing", content=chunks(), headers={"content-type": "application/json"})
    assert_refused(r, 413, "body", "larger than 1,000 bytes")


def test_deeply_nested_preset_file_is_a_clear_error():
    from studio import presets
    with pytest.raises(InputError) as info:
        presets.read_preset(b"[" * 100_000, source="evil.json")
    assert info.value.status == 422 and str(info.value).startswith("evil.json: not valid JSON")


# --- load limits ---------------------------------------------------------------------------------

def test_gate_lets_one_in_and_the_others_wait_their_turn():
    gate = limits.Gate("test", concurrency=1)
    inside, release, order = threading.Event(), threading.Event(), []

    def holder():
        with gate.running():
            order.append("first in")
            inside.set()
            release.wait(10)

    def waiter(name):
        with gate.running():
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(10)
    waiters = [threading.Thread(target=waiter, args=(f"waiter {i}",)) for i in range(5)]
    for thread in waiters:
        thread.start()
    deadline = time.monotonic() + 10
    while gate.waiting < 5 and time.monotonic() < deadline:  # all five are waiting, none refused
        time.sleep(0.01)
    assert gate.waiting == 5 and order == ["first in"]
    release.set()
    for thread in (first, *waiters):
        thread.join(10)
    assert order[0] == "first in" and sorted(order[1:]) == [f"waiter {i}" for i in range(5)]
    assert gate.waiting == 0
    with gate.running():  # free again
        pass


def test_running_upscale_does_not_block_full_processing(server, client):
    # Hold the only upscale slot, as a long upscale would; full processing and its gate are separate.
    with limits.UPSCALE.running():
        r = post(server, "post-processing", {"image_url": data_uri(SMALL_PNG), "enable_solarize": True})
        assert r.status_code == 200
        path, _ = client.predict(image_url=handle_file(EXAMPLE), api_name="/process")
        assert Image.open(path).size == (451, 300)


def _page_event(server: str, config: dict, session: str, api_name: str, values: dict) -> list:
    """Run a (private) page event the way the browser does: queue/join, then the SSE stream."""
    dep = next(d for d in config["dependencies"] if d["api_name"] == api_name)
    props = {c["id"]: c.get("props", {}) for c in config["components"]}
    data = [values.get(props[i].get("elem_id"), props[i].get("value")) for i in dep["inputs"]]
    joined = httpx.post(f"{server}/gradio_api/queue/join", timeout=30, json={
        "data": data, "fn_index": dep["id"], "session_hash": session})
    event_id = joined.json()["event_id"]
    with httpx.stream("GET", f"{server}/gradio_api/queue/data", params={"session_hash": session},
                      timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                assert message["success"], message
                return message["output"]["data"]
    raise AssertionError("no result")


def test_long_upscale_does_not_block_previews(server, client, tmp_path):
    config = httpx.get(f"{server}/config", timeout=30).json()
    upload = httpx.post(f"{server}/gradio_api/upload", timeout=30,
                        files={"files": ("photo.png", EXAMPLE.read_bytes(), "image/png")}).json()[0]
    source = {"path": upload, "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}
    small = tmp_path / "small.png"
    small.write_bytes(SMALL_PNG)
    with limits.UPSCALE.running():  # the slot a long upscale would hold
        job = client.submit(image_url=handle_file(small), api_name="/upscale")  # waits for the slot
        token, _ = _page_event(server, config, "hardening1", "load_source", {"source": source})
        for contrast in (10, 20, 30):  # the page's live preview: studio.live's route
            preview = httpx.post(f"{server}/studio/preview", timeout=60, json={
                "token": token, "settings": {"enable_color_correction": True, "contrast": contrast}})
            assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        assert not job.done()  # the upscale really was still waiting while the previews ran
    path, _ = job.result(timeout=120)
    assert Image.open(path).size == (96, 64)


@pytest.mark.parametrize("body, status, message", [
    ({"token": "nope", "settings": {}}, 404, "token: this image is no longer on the server"),
    ([1, 2], 422, "body: must be a JSON object"),
    ({"token": "x", "settings": {}, "view": "x" * 10_000}, 422, "view: must be 'preview'"),
])
def test_preview_route_refuses_bad_bodies_naming_the_field(server, body, status, message):
    response = httpx.post(f"{server}/studio/preview", timeout=60, json=body)
    assert response.status_code == status
    assert response.json()["detail"].startswith(message)
    assert len(response.text) < 400 and not any(leak in response.text for leak in LEAKS)


def test_kinds_have_separate_concurrency_and_the_queue_is_bounded():
    import app
    ids = {fn.concurrency_id for fn in app.demo.fns.values() if fn.fn is not None}
    assert {"preview", "process", "upscale"} <= ids
    assert app.demo._queue.max_size == limits.GRADIO_QUEUE_SIZE


# --- Gradio API --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (BOMB_PNG, "8000×8000 (64.0 MP); the limit is"),
    (_bomb_png(100_000, 100_000), "the limit is"),
    (NOISE_JPEG[: len(NOISE_JPEG) // 2], "JPEG data is corrupt or truncated"),
    (b"just some text", "not an image in a supported format"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not an image in a supported format"),
    (b"", "empty"),
], ids=["bomb", "huge-bomb", "truncated-jpeg", "text", "eps", "empty"])
@pytest.mark.parametrize("api_name", ["/process", "/upscale"])
def test_gradio_hostile_uploads(client, tmp_path, data, message, api_name):
    path = tmp_path / "upload.png"
    path.write_bytes(data)
    assert_app_error(lambda: client.predict(image_url=handle_file(path), api_name=api_name),
                     "image_url: ", message)


def test_gradio_hostile_dissolve_upload(client, tmp_path):
    path = tmp_path / "second.png"
    path.write_bytes(b"not an image at all")
    assert_app_error(lambda: client.predict(image_url=handle_file(EXAMPLE), enable_dissolve=True,
                                            dissolve_image_url=handle_file(path), api_name="/process"),
                     "dissolve_image_url: ", "not an image")


def test_gradio_url_inputs_go_through_the_same_checks(client, image_host, monkeypatch):
    url = f"http://127.0.0.1:{image_host}/img"
    assert_app_error(lambda: client.predict(image_url=handle_file(url), api_name="/process"),
                     "image_url: address 127.0.0.1 is loopback")
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    path, output = client.predict(image_url=handle_file(url), api_name="/process")
    assert (output["images"][0]["width"], output["images"][0]["height"]) == (24, 16)
    assert_app_error(lambda: client.predict(image_url=handle_file(f"http://127.0.0.1:{image_host}/html"),
                                            api_name="/process"), "does not point to an image")


def test_gradio_data_url_input(client):
    payload = {"path": None, "url": data_uri(SMALL_PNG), "meta": {"_type": "gradio.FileData"}}
    _, output = client.predict(image_url=payload, api_name="/process")
    assert (output["images"][0]["width"], output["images"][0]["height"]) == (24, 16)
    payload["url"] = "data:image/png;base64,@@"
    assert_app_error(lambda: client.predict(image_url=payload, api_name="/process"),
                     "image_url: the data: URI is not valid base64")


@pytest.mark.parametrize("kwargs, message", [
    ({"contrast": 300}, "contrast: 300 is out of range; allowed [-100, 100]"),
    ({"grain_style": "vhs"}, "grain_style: 'vhs' is not one of"),
    ({"blur_radius": 2.5}, "blur_radius: must be an integer"),
    ({"gamma": "bright"}, "gamma: must be a number in [0.2, 2.2], got the string 'bright'"),
    ({"enable_vignette": "perhaps"}, "enable_vignette: must be true or false"),
    ({"tint_mode": None}, "tint_mode: None is not one of"),
])
def test_gradio_invalid_parameters_same_message_as_json(server, client, kwargs, message):
    assert_app_error(lambda: client.predict(image_url=handle_file(EXAMPLE), **kwargs, api_name="/process"),
                     message)
    r = post(server, "post-processing", {"image_url": data_uri(SMALL_PNG), **kwargs})
    assert_refused(r, 422, next(iter(kwargs)), message)


# --- files and cleanup ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/gradio_api/file=/etc/passwd", "/gradio_api/file=%2Fetc%2Fpasswd", "/gradio_api/file=app.py",
    f"/gradio_api/file={ROOT / 'app.py'}", f"/gradio_api/file={EXAMPLE}",
    "/gradio_api/file=../../../../etc/passwd", "/gradio_api/file=/proc/self/environ",
    "/gradio_api/file=~/.bashrc", "/file=/etc/passwd",
])
def test_files_outside_the_cache_are_not_served(server, path):
    r = httpx.get(server + path, timeout=30)
    assert r.status_code in (403, 404), (path, r.status_code)
    assert "root:" not in r.text and "import" not in r.text


def test_results_are_served_and_cleaned_up(server, client):
    import app
    _, output = client.predict(image_url=handle_file(EXAMPLE), api_name="/process")
    url = output["images"][0]["url"]
    served = Path(url.removeprefix("/gradio_api/file="))
    assert httpx.get(server + url, timeout=30).status_code == 200
    assert served.exists()
    delete_files_created_by_app(app.demo, None)  # what delete_cache runs on its schedule
    assert not served.exists()


def test_json_api_writes_no_files(server):
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    before = sorted(p for p in cache.rglob("*") if p.is_file())
    r = post(server, "post-processing", {"image_url": data_uri(SMALL_PNG), "enable_glow": True})
    assert r.status_code == 200
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == before


# --- still serving --------------------------------------------------------------------------------

def test_normal_requests_still_succeed_after_the_hostile_ones(server, client, tmp_path):
    r = post(server, "post-processing", {"image_url": data_uri(EXAMPLE.read_bytes()), "enable_tint": True})
    assert r.status_code == 200 and r.json()["images"][0]["width"] == 451
    r = post(server, "aura-sr", {"image_url": data_uri(SMALL_PNG)})
    assert r.status_code == 200 and r.json()["image"]["width"] == 96
    path, output = client.predict(image_url=handle_file(EXAMPLE), enable_vignette=True, api_name="/process")
    assert Image.open(path).size == (451, 300) and output["images"][0]["height"] == 300
    small = tmp_path / "small.png"
    small.write_bytes(SMALL_PNG)
    path, output = client.predict(image_url=handle_file(small), api_name="/upscale")
    assert Image.open(path).size == (96, 64) and output["image"]["width"] == 96
