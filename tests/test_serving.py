"""The serving layer (studio.work, studio.api, studio.limits) on a real in-process server and directly:
server faults are logged 5xx without local paths, client errors are short and field-named, URLs are
fetched outside the CPU slot, bodies have a deadline, every API request gets one access-log line,
the aura-sr schema table drives validation and /upscale, and warnings reach the answers."""
import base64
import concurrent.futures
import http.server
import inspect
import io
import json
import logging
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from hf_cache import use_hf_cache, write_hf_cache
from PIL import Image
from tiny_aurasr import random_weights, tiny_config, write_checkpoint
from upscaler_fixtures import probe_model

import upscaler
from common.env import ConfigError
from common.errors import InputError
from common.fields import ValidationError
from local_http import serving
from studio import api, handlers, work
from studio_server import client, server  # noqa: F401 (fixtures)
from upscaler.config import AuraConfig

ROOT = Path(__file__).resolve().parent.parent
LEAKS = ("Traceback", 'File "', "/work", "/tmp", "/root", "/home", "site-packages", "snapshots",
         "safetensors", "Errno")


def png_bytes(width: int = 24, height: int = 16, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


SMALL = png_bytes()
GIF_FRAMES = [Image.new("RGB", (12, 10), c) for c in ((250, 0, 0), (0, 0, 250))]


def animated_gif() -> bytes:
    buffer = io.BytesIO()
    GIF_FRAMES[0].save(buffer, "GIF", save_all=True, append_images=GIF_FRAMES[1:])
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("STUDIO_ALLOWED_HOSTS", "STUDIO_BODY_TIMEOUT", "AURASR_BATCH",
                 "AURASR_MAX_INPUT_PIXELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AURASR_DEVICE", "cpu")


def post(server: str, route: str, body=None, **kwargs) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.post(f"{server}/api/{route}", timeout=60, **kwargs)


def assert_server_fault(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"detail": message}
    for leak in LEAKS:
        assert leak not in response.text


def collect(**options):
    """execute() with a list for its log lines and a store_image that keeps the images."""
    lines, stored = [], []

    def store(image):
        stored.append(image)
        return {"url": f"memory:{len(stored)}", "width": image.width, "height": image.height}

    kwargs = {"log": lines.append, "cancelled": lambda: False, "store_image": store, **options}
    return lines, stored, kwargs


# --- server faults: logged 5xx, short public message, no paths -----------------------------------

def test_bad_aurasr_batch_is_a_logged_500_not_a_422(server, monkeypatch, caplog):
    monkeypatch.setenv("AURASR_BATCH", "lots")
    with caplog.at_level(logging.ERROR, logger="studio.work"):
        r = post(server, "aura-sr", {"image_url": data_uri(SMALL)})
    assert_server_fault(r, 500, work.SERVER_FAULTS["config"][1])
    assert "configuration error: AURASR_BATCH must be an integer >= 1, got 'lots'" in caplog.text


def test_broken_checkpoint_is_a_logged_500_without_the_cache_path(server, tmp_path, monkeypatch,
                                                                  caplog):
    folder = tmp_path / "files"
    config = tiny_config()
    write_checkpoint(folder, config, random_weights(AuraConfig.from_dict(config), 0))
    files = {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}
    files["model.safetensors"] = files["model.safetensors"][:-100]  # truncated download
    cache = tmp_path / "hub"
    write_hf_cache(cache, "fal/AuraSR", files)
    use_hf_cache(monkeypatch, cache)
    upscaler.register_model("v1", None)
    try:
        with caplog.at_level(logging.ERROR, logger="studio.work"):
            r = post(server, "aura-sr", {"image_url": data_uri(SMALL)})
    finally:
        upscaler.register_model("v1", None)  # later tests load the good tiny checkpoint again
    assert_server_fault(r, 500, work.SERVER_FAULTS["config"][1])
    # The operator gets the file and the cause in the log.
    assert "configuration error:" in caplog.text and "model.safetensors" in caplog.text
    assert "truncated or corrupt" in caplog.text


@pytest.mark.parametrize("exc, kind", [
    (ConfigError("STUDIO_MAX_PIXELS must be an integer >= 1, got 'x'"), "config"),
    (upscaler.CheckpointError("/root/.cache/huggingface/hub/x/model.safetensors is not valid"), "config"),
    (upscaler.WeightsUnavailableError("cannot get config.json into /root/.cache/huggingface"), "weights"),
    (MemoryError(), "memory"),
    (KeyError("/work/fal/studio/secret.py"), "internal"),
    (ValueError("a ValueError from deep inside, /tmp/x"), "internal"),  # not a declared client error
])
def test_public_error_classifies_server_faults(exc, kind, caplog):
    with caplog.at_level(logging.INFO, logger="studio.work"):
        status, body = work.public_error(exc)
    assert (status, body) == (work.SERVER_FAULTS[kind][0], {"detail": work.SERVER_FAULTS[kind][1]})
    assert status >= 500
    (record,) = [r for r in caplog.records if r.name == "studio.work"]
    assert record.levelno >= logging.WARNING
    assert (record.exc_info is not None) == (kind == "internal")  # tracebacks only for the unexpected


def test_unexpected_failure_through_the_api_is_a_500_with_traceback_in_the_log(server, monkeypatch,
                                                                                caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom in /work/fal/effects/pipeline.py")

    monkeypatch.setattr(work.effects, "process", broken)
    with caplog.at_level(logging.ERROR, logger="studio.work"):
        r = post(server, "post-processing", {"image_url": data_uri(SMALL)})
    assert_server_fault(r, 500, work.SERVER_FAULTS["internal"][1])
    (record,) = [r for r in caplog.records if r.name == "studio.work"]
    assert record.exc_info[0] is RuntimeError


def test_config_errors_come_from_the_one_env_reader(monkeypatch):
    monkeypatch.setenv("AURASR_THREADS", "-2")
    with pytest.raises(ConfigError, match="AURASR_THREADS must be an integer >= 0, got '-2'"):
        upscaler.runtime.create_session(*probe_model("nearest", 8, 4).build(1))
    monkeypatch.setenv("AURASR_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="AURASR_DEVICE='tpu' is not valid"):
        upscaler.runtime.device()
    assert not hasattr(upscaler.runtime, "env_int")
    assert issubclass(upscaler.CheckpointError, ConfigError)


# --- client errors: short, field-named, logged as one line ---------------------------------------

def test_a_5_mb_tint_mode_answers_a_short_message(server, caplog):
    huge = "x" * 5_000_000
    with caplog.at_level(logging.INFO, logger="studio.work"):
        r = post(server, "post-processing", {"image_url": data_uri(SMALL), "tint_mode": huge})
    assert r.status_code == 422
    assert len(r.content) < 1000
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "tint_mode"]
    assert detail["msg"].startswith("tint_mode: 'xxxx") and "(5,000,002 characters)" in detail["msg"]
    refused = [rec for rec in caplog.records if rec.name == "studio.work"]
    assert len(refused) == 1 and refused[0].exc_info is None  # one line, no traceback
    assert refused[0].getMessage().startswith("refused 422: tint_mode:")
    assert len(refused[0].getMessage()) < 1000


@pytest.mark.parametrize("route, body, field", [
    ("post-processing", {"y" * 100_000: 1}, "y" * 100),
    ("aura-sr", {"z" * 100_000: 1}, "z" * 100),
    ("aura-sr", {"checkpoint": "v" * 100_000}, "checkpoint"),
    ("aura-sr", {"overlapping_tiles": "w" * 100_000}, "overlapping_tiles"),
    ("aura-sr", {"seed": "9" * 100_000}, "seed"),
    ("post-processing", {"image_url": "a" * 100_000 + "://x"}, "image_url"),
    ("post-processing", {"image_url": "http://" + "h" * 100_000 + ".invalid/x.png"}, "image_url"),
])
def test_long_bad_values_are_quoted_short_everywhere(server, route, body, field):
    r = post(server, route, {"image_url": data_uri(SMALL), **body})
    assert 400 <= r.status_code < 500, r.text
    assert len(r.content) < 1000
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", field]


# --- bursts wait, URLs are fetched outside the slot ------------------------------------------------

def test_a_burst_queues_instead_of_503(server):
    bodies = [{"image_url": data_uri(png_bytes(64, 48, seed)), "enable_grain": True} for seed in range(6)]
    with httpx.Client(timeout=120) as c, concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda b: c.post(f"{server}/api/post-processing", json=b), bodies))
    assert [r.status_code for r in responses] == [200] * 6


class _Slow(http.server.BaseHTTPRequestHandler):
    """/slow: sends an image only once the test sets ``release``; ``hit`` is set when it is asked."""

    hit = threading.Event()
    release = threading.Event()

    def do_GET(self):
        type(self).hit.set()
        type(self).release.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", str(len(SMALL)))
        self.end_headers()
        self.wfile.write(SMALL)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("route", ["post-processing", "aura-sr"])
def test_a_slow_url_does_not_hold_the_slot(server, monkeypatch, route):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _Slow.hit.clear()
    _Slow.release.clear()
    with serving(_Slow) as httpd:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/slow"
        slow = {}
        thread = threading.Thread(target=lambda: slow.setdefault("r", post(server, route, {"image_url": url})))
        thread.start()
        try:
            assert _Slow.hit.wait(20)  # the slow request is fetching now
            start = time.monotonic()
            fast = httpx.post(f"{server}/api/{route}", json={"image_url": data_uri(SMALL)}, timeout=15)
            assert fast.status_code == 200, fast.text
            assert time.monotonic() - start < 15
            assert "r" not in slow  # still fetching while the second request was processed
        finally:
            _Slow.release.set()
            thread.join(30)
    assert slow["r"].status_code == 200, slow["r"].text


def test_five_slow_urls_do_not_lock_full_resolution_work(server, monkeypatch):
    """The issue's case: five requests whose image servers are slow, then a request with its image
    inline. It is processed while the five are still fetching (before: all locked for ~100 s)."""
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _Slow.hit.clear()
    _Slow.release.clear()
    with serving(_Slow) as httpd, concurrent.futures.ThreadPoolExecutor(5) as pool:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/slow"
        slow = [pool.submit(post, server, "post-processing", {"image_url": f"{url}?{n}"})
                for n in range(5)]
        try:
            assert _Slow.hit.wait(20)
            time.sleep(0.5)  # let all five reach their fetch
            fast = httpx.post(f"{server}/api/post-processing", json={"image_url": data_uri(SMALL)},
                              timeout=15)
            assert fast.status_code == 200, fast.text
            assert not any(f.done() for f in slow)
        finally:
            _Slow.release.set()
        assert [f.result(timeout=60).status_code for f in slow] == [200] * 5


def test_execute_logs_every_stage_in_order():
    lines, stored, kwargs = collect()
    body = {"image_url": data_uri(SMALL), "enable_grain": True, "enable_tint": True,
            "enable_dissolve": True, "dissolve_image_url": data_uri(png_bytes(seed=1)), "seed": 4}
    answer = work.execute("fal-ai/post-processing", body, **kwargs)
    assert answer == {"images": [{"url": "memory:1", "width": 24, "height": 16}]}
    stages = [line.split(":")[0].split(" ")[0] for line in lines]
    assert stages == ["fetch", "fetch", "decode", "decode", "effects", "effect", "effect", "effect",
                      "encode"]
    assert [line for line in lines if line.startswith("effect ")] == [
        "effect 1/3: grain", "effect 2/3: tint", "effect 3/3: dissolve"]
    assert lines[0].startswith("fetch image_url: ") and "from a data: URI" in lines[0]
    assert lines[2].startswith("decode image_url: 24x16 RGB")


def test_execute_stops_when_cancelled_between_effects():
    lines, stored, kwargs = collect()
    kwargs["cancelled"] = lambda: any(line.startswith("effect 1/") for line in lines)
    body = {"image_url": data_uri(SMALL), "enable_grain": True, "enable_tint": True}
    with pytest.raises(work.Cancelled):
        work.execute("fal-ai/post-processing", body, **kwargs)
    assert "effect 1/2: grain" in lines and "effect 2/2: tint" not in lines and stored == []


def test_aura_sr_logs_tiles_and_stops_at_a_tile_when_cancelled():
    upscaler.register_model("v2", probe_model("nearest", tile=8, z_dim=4))
    try:
        lines, stored, kwargs = collect()
        body = {"image_url": data_uri(png_bytes(20, 12)), "checkpoint": "v2", "seed": 1}
        answer = work.execute("fal-ai/aura-sr", body, **kwargs)
        assert answer["image"] == {"url": "memory:1", "width": 80, "height": 48}
        assert set(answer["timings"]) == {"load", "preprocess", "inference", "postprocess"}
        assert [line for line in lines if line.startswith("AuraSR tile")] == [
            f"AuraSR tile {n}/6" for n in range(1, 7)]  # 3 x 2 tiles of 8 px
        lines, stored, kwargs = collect()
        kwargs["cancelled"] = lambda: "AuraSR tile 2/6" in lines
        with pytest.raises(work.Cancelled):
            work.execute("fal-ai/aura-sr", body, **kwargs)
        assert lines[-1] == "AuraSR tile 2/6" and stored == []
    finally:
        upscaler.register_model("v2", None)


def test_own_file_urls_are_read_in_process(monkeypatch):
    from studio.fal import storage
    own = "https://files.studio.invalid/fal/files/abc/photo.png"  # .invalid never resolves
    monkeypatch.setattr(storage, "resolve", lambda url: SMALL if url == own else None)
    lines, stored, kwargs = collect()
    work.execute("fal-ai/post-processing", {"image_url": own}, **kwargs)
    assert lines[0].startswith(f"fetch image_url: {len(SMALL):,} bytes from this server's storage")
    assert stored[0].size == (24, 16)


def test_unknown_app_is_a_404():
    with pytest.raises(InputError) as info:
        work.execute("fal-ai/flux", {}, **collect()[2])
    assert info.value.status == 404 and "fal-ai/post-processing, fal-ai/aura-sr" in str(info.value)


# --- request bodies: size cap and deadline -------------------------------------------------------

def test_a_body_that_arrives_too_slowly_gets_408(server, monkeypatch):
    monkeypatch.setenv("STUDIO_BODY_TIMEOUT", "1")
    host, port = urllib.parse.urlsplit(server).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"POST /api/post-processing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000\r\n\r\n{\"image_url\": ")
        start = time.monotonic()
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    assert 0.9 < time.monotonic() - start < 10
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    (detail,) = json.loads(payload)["detail"]
    assert detail["loc"] == ["body", "body"]
    assert detail["msg"].startswith("body: the request body did not arrive within 1 s")


def test_body_size_cap_still_applies(server, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_REQUEST_BYTES", "1000")
    r = post(server, "aura-sr", {"image_url": data_uri(SMALL + b"\0" * 2000)})
    assert r.status_code == 413 and "larger than 1,000 bytes" in r.json()["detail"][0]["msg"]


# --- access log ------------------------------------------------------------------------------------

def test_one_access_log_line_per_api_request_without_keys_or_queries(server, caplog):
    body = json.dumps({"image_url": data_uri(SMALL), "enable_solarize": True}).encode()
    with caplog.at_level(logging.INFO, logger="studio.access"):
        r = httpx.post(f"{server}/api/post-processing?token=sekrit-query", content=body, timeout=60,
                       headers={"content-type": "application/json", "authorization": "Key sekrit-key"})
        bad = post(server, "aura-sr", {"image_url": data_uri(SMALL), "seed": -5})
        httpx.get(f"{server}/config", timeout=30)  # the page's own routes are not access-logged
    assert r.status_code == 200 and bad.status_code == 422

    def lines():  # each line is written once its response has been sent: poll briefly for it
        found = [rec.getMessage() for rec in caplog.records if rec.name == "studio.access"]
        return [dict(part.split("=", 1) for part in line.split()[1:]) for line in found]

    def ours():
        return [f for f in lines() if (f["route"], f["status"]) in
                {("/api/post-processing", "200"), ("/api/aura-sr", "422")}]

    deadline = time.monotonic() + 5
    while len(ours()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a duplicate line would have arrived by now
    ours = ours()
    assert len(ours) == 2, lines()  # one line per request
    assert all(f["route"].startswith("/api/") for f in lines())  # /config is not access-logged
    first, second = ours
    assert first["method"] == "POST" and first["route"] == "/api/post-processing"
    assert int(first["in_bytes"]) == len(body) and int(first["out_bytes"]) == len(r.content)
    assert float(first["total_ms"]) >= float(first["first_byte_ms"]) > 0
    assert second["route"] == "/api/aura-sr" and int(second["out_bytes"]) == len(bad.content)
    assert "sekrit" not in caplog.text


def test_refused_keys_are_access_logged_without_the_key(server, monkeypatch, caplog):
    monkeypatch.setenv("STUDIO_API_KEYS", "right-key-1234")
    with caplog.at_level(logging.INFO, logger="studio.access"):
        r = httpx.post(f"{server}/api/post-processing", json={"image_url": data_uri(SMALL)},
                       headers={"authorization": "Key wrong-key-5678"}, timeout=30)
        deadline = time.monotonic() + 5
        while "status=401" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert r.status_code == 401
    assert "access method=POST route=/api/post-processing status=401" in caplog.text
    assert "key-1234" not in caplog.text and "key-5678" not in caplog.text


def test_access_log_hides_path_parameters():
    scope = {"path": "/fal/files/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/photo.png",
             "path_params": {"token": "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "name": "photo.png"}}
    assert api._route(scope) == "/fal/files/{token}/{name}"
    assert api._route({"path": "/fal/upload/" + "q" * 43}) == "/fal/upload/…"  # unmatched route


# --- the aura-sr schema table is the one declaration -------------------------------------------------

def test_upscale_signature_and_page_controls_come_from_the_schema(client):
    names = [f.name for f in upscaler.FIELDS]
    signature = inspect.signature(handlers.upscale).parameters
    assert list(signature)[:len(names)] == names
    assert all(signature[f.name].default == f.default for f in upscaler.OPTIONS)
    api_info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/upscale"]
    params = api_info["parameters"]
    assert [p["parameter_name"] for p in params] == names
    assert [p["parameter_default"] for p in params[1:]] == [f.default for f in upscaler.OPTIONS]
    import app
    by_id = {block.elem_id: block for block in app.demo.blocks.values() if block.elem_id}
    for f in upscaler.OPTIONS[:-1]:  # the seed is a number box
        control = by_id[f.name]
        assert control.label == f.label and control.info == f.description and control.value == f.default
        if f.kind == "enum":
            assert [value for _, value in control.choices] == list(f.choices)
    seed = by_id["up-seed"]
    assert (seed.minimum, seed.maximum, seed.precision) == (upscaler.SEED.minimum, upscaler.SEED.maximum, 0)


@pytest.mark.parametrize("options, message", [
    ({"seed": 2**40}, "seed: 1099511627776 is out of range; allowed [0, 4294967295]"),
    ({"checkpoint": "v9"}, "checkpoint: 'v9' is not one of 'v1', 'v2'"),
    ({"upscaling_factor": 8}, "upscaling_factor: 8 is not one of 4"),
    ({"overlapping_tiles": "sometimes"}, "overlapping_tiles: must be true or false, got 'sometimes'"),
])
def test_upscale_tab_json_and_python_share_the_field_named_messages(server, client, tmp_path, options,
                                                                     message):
    path = tmp_path / "small.png"
    path.write_bytes(SMALL)
    with pytest.raises(AppError, match=message.replace("[", r"\[").replace("]", r"\]")):
        client.predict(image_url=handle_file(path), **options, api_name="/upscale")
    r = post(server, "aura-sr", {"image_url": data_uri(SMALL), **options})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith(message)
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        upscaler.upscale(Image.open(path), **options)


def test_page_seeds_out_of_range_name_the_field(client, tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(SMALL)
    for api_name in ("/process", "/upscale"):
        with pytest.raises(AppError, match=r"seed: 1099511627776 is out of range; allowed \[0, 4294967295\]"):
            client.predict(image_url=handle_file(path), seed=2**40, api_name=api_name)


def test_aura_sr_schema_follows_the_seed_document():
    doc = (ROOT / "tests" / "data" / "fal-aura-sr-api.txt").read_text(encoding="utf-8")
    lines = doc[doc.index("\nInput\n#\n"):doc.index("\nOutput\n#\n")].split("\n")
    fal_fields = [f for f in upscaler.FIELDS if f is not upscaler.SEED]
    at = [next(i for i, line in enumerate(lines) if line.startswith(f.name)) for f in fal_fields]
    assert at == sorted(at)  # fal's order
    for f, i in zip(fal_fields, at):
        description = lines[i + 1]
        assert description.startswith(f.description), f.name
        if f.kind == "enum":
            assert f'Default value: "{f.default}"' in description, f.name
            assert lines[i + 3] == f"Possible enum values: {', '.join(map(str, f.choices))}", f.name
    assert lines[at[2]].removeprefix("overlapping_tiles") == "boolean"
    assert upscaler.OVERLAPPING_TILES.kind == "bool" and upscaler.OVERLAPPING_TILES.default is False


def test_validate_fills_fal_defaults_and_accepts_fal_string_enum():
    assert upscaler.validate({}) == {"upscaling_factor": 4, "overlapping_tiles": False,
                                     "checkpoint": "v1", "seed": None}
    assert upscaler.validate({"upscaling_factor": "4", "image_url": "x", "seed": "7"}) == {
        "upscaling_factor": 4, "overlapping_tiles": False, "checkpoint": "v1", "seed": 7, "image_url": "x"}
    with pytest.raises(ValidationError, match="scale: unknown field"):
        upscaler.validate({"scale": 4})


# --- warnings -------------------------------------------------------------------------------------

WARNING = "image_url: animated or multi-frame image (2 frames); only the first frame is used"


@pytest.mark.parametrize("route", ["post-processing", "aura-sr"])
def test_warnings_reach_the_json_answer_only_when_there_are_some(server, route):
    r = post(server, route, {"image_url": data_uri(animated_gif(), "image/gif")})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [WARNING]
    plain = post(server, route, {"image_url": data_uri(SMALL)})
    assert plain.status_code == 200 and "warnings" not in plain.json()


def test_warnings_reach_fal_answers_and_logs():
    lines, stored, kwargs = collect()
    answer = work.execute("fal-ai/post-processing", {"image_url": data_uri(animated_gif(), "image/gif")},
                          **kwargs)
    assert answer["warnings"] == [WARNING]
    assert f"warning: {WARNING}" in lines
