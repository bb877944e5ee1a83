"""The app's APIs on a real in-process server: Gradio endpoints through gradio_client, JSON endpoints
through HTTP, both compared with ``effects.process`` / ``upscaler.upscale`` (tiny AuraSR, offline)."""
import base64
import functools
import http.server
import io
import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import effects
import upscaler
from local_http import serving
from effects.schema import FIELDS
from seed_doc import seed_fields
from studio import presets
from studio_server import running_app, tiny_aurasr_hub

ROOT = Path(__file__).resolve().parent.parent
AURA_SEED_DOC = ROOT / "tests" / "data" / "fal-aura-sr-api.txt"
PRESET_FILES = sorted(presets.PRESETS_DIR.glob("*.json"))
EXAMPLE = ROOT / "examples" / "chelsea.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with tiny_aurasr_hub(tmp_path_factory.mktemp("hf") / "hub"), running_app() as url:
        yield url


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    c = Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(client):
    return client.view_api(print_info=False, return_format="dict")


@pytest.fixture(scope="module")
def small_rgba(tmp_path_factory) -> Path:
    """A 40×28 RGBA image with a real alpha ramp."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (28, 40, 4), dtype=np.uint8)
    pixels[..., 3] = np.linspace(0, 255, 40, dtype=np.uint8)[None, :]
    path = tmp_path_factory.mktemp("img") / "rgba.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def from_data_uri(url: str) -> Image.Image:
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


# -- the API listing ---------------------------------------------------------------------------------

def test_only_process_and_upscale_are_listed(api):
    assert set(api["named_endpoints"]) == {"/process", "/upscale"}
    assert api["unnamed_endpoints"] == {}


def test_process_parameters_are_fal_fields_with_fal_defaults(api):
    params = api["named_endpoints"]["/process"]["parameters"]
    doc = seed_fields()
    assert [p["parameter_name"] for p in params] == [*doc, "seed"]
    image_url, *fields, seed = params
    assert image_url["component"] == "Image" and not image_url["parameter_has_default"]
    assert seed["parameter_has_default"] and seed["parameter_default"] is None
    for p in fields:
        name, spec = p["parameter_name"], doc[p["parameter_name"]]
        assert p["parameter_has_default"], name
        if spec["type"] == "string":  # dissolve_image_url: an optional image file here
            assert p["component"] == "Image" and p["parameter_default"] is None
        elif spec["default"] is not None:
            assert p["parameter_default"] == spec["default"], name
        elif spec["type"] == "boolean":
            assert p["parameter_default"] is False, name
        else:  # numbers fal documents without a default are 0 (no adjustment)
            assert p["parameter_default"] == 0, name
        if spec["choices"]:
            assert p["type"]["enum"] == spec["choices"], name
        if spec["type"] == "integer":
            assert p["type"]["type"] == "integer", name


def test_upscale_parameters_follow_the_aura_sr_document(api):
    params = api["named_endpoints"]["/upscale"]["parameters"]
    doc = AURA_SEED_DOC.read_text(encoding="utf-8")
    assert [p["parameter_name"] for p in params] == [
        "image_url", "upscaling_factor", "overlapping_tiles", "checkpoint", "seed"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in params[1:]}
    assert defaults == {"upscaling_factor": 4, "overlapping_tiles": False, "checkpoint": "v1",
                        "seed": None}
    assert re.search(r'checkpointCheckpointEnum\n.*Default value: "v1"\n\nPossible enum values: v1, v2',
                     doc)
    assert re.search(r'Default value: "4"\n\nPossible enum values: 4', doc)
    assert params[3]["type"]["enum"] == ["v1", "v2"]


def test_page_plumbing_is_private_and_preview_coalesces():
    import app
    fns = list(app.demo.fns.values())
    assert sorted(fn.api_name for fn in fns if fn.api_visibility == "public") == ["process", "upscale"]
    previews = [fn for fn in fns if fn.concurrency_id == "preview"]
    live = [fn for fn in previews if len(fn.targets) > 1]
    assert len(live) == 1  # one gr.on over every control, so always_last coalesces across all
    assert len(live[0].targets) == len(FIELDS) - 1 + 1  # every field but the image, plus the seed
    assert {event for _, event in live[0].targets} == {"input"}
    assert live[0].trigger_mode == "always_last" and live[0].show_progress == "hidden"
    assert all(fn.api_visibility == "private" and fn.show_progress == "hidden" for fn in previews)
    assert {fn.concurrency_id for fn in fns if fn.api_name in ("process", "upscale")} == {
        "process", "upscale"}


# -- /process through gradio_client ----------------------------------------------------------------

@pytest.mark.parametrize("preset_file", PRESET_FILES, ids=lambda p: p.stem)
def test_process_every_preset_matches_effects_process(client, preset_file):
    preset = json.loads(preset_file.read_text())
    png, output = client.predict(image_url=handle_file(EXAMPLE), **preset, seed=3,
                                 api_name="/process")
    expected = effects.process(Image.open(EXAMPLE), {**preset, "seed": 3})
    got = Image.open(png)
    assert got.format == "PNG" and got.size == expected.size
    np.testing.assert_array_equal(pixels(got), pixels(expected))
    (record,) = output["images"]
    assert record["content_type"] == "image/png"
    assert (record["width"], record["height"]) == expected.size
    assert record["file_size"] == Path(png).stat().st_size
    assert record["file_name"].endswith(".png") and record["url"].endswith(record["file_name"])


def test_process_without_seed_works_as_written_in_the_contract(client):
    preset = json.loads((presets.PRESETS_DIR / "noir.json").read_text())
    png, _ = client.predict(image_url=handle_file(EXAMPLE), **preset, api_name="/process")
    assert Image.open(png).size == Image.open(EXAMPLE).size


def test_process_keeps_alpha_and_is_lossless(client, small_rgba):
    png, output = client.predict(image_url=handle_file(small_rgba), enable_solarize=True,
                                 solarize_threshold=0.3, api_name="/process")
    got = Image.open(png)
    assert got.mode == "RGBA"
    expected = effects.process(Image.open(small_rgba), {"enable_solarize": True,
                                                        "solarize_threshold": 0.3})
    np.testing.assert_array_equal(pixels(got), pixels(expected))
    assert output["images"][0]["width"] == 40


def test_process_dissolve_uses_the_second_image_file(client, small_rgba):
    params = {"enable_dissolve": True, "dissolve_factor": 0.3, "seed": 9}
    png, _ = client.predict(image_url=handle_file(EXAMPLE), dissolve_image_url=handle_file(small_rgba),
                            **params, api_name="/process")
    expected = effects.process(Image.open(EXAMPLE), params, dissolve_image=Image.open(small_rgba))
    np.testing.assert_array_equal(pixels(Image.open(png)), pixels(expected))


def test_process_refuses_out_of_range_and_missing_dissolve_image(client):
    with pytest.raises(AppError, match=r"contrast: 500 is out of range; allowed \[-100, 100\]"):
        client.predict(image_url=handle_file(EXAMPLE), contrast=500, api_name="/process")
    with pytest.raises(AppError, match="dissolve_image_url: enable_dissolve is on but no second image"):
        client.predict(image_url=handle_file(EXAMPLE), enable_dissolve=True, api_name="/process")


def test_process_refuses_an_undecodable_upload(client, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    with pytest.raises(AppError, match="image_url: the PNG (header|data) is corrupt or truncated"):
        client.predict(image_url=handle_file(bad), api_name="/process")


def test_process_over_plain_http(server, api):
    """The Gradio endpoint without gradio_client: upload, POST /gradio_api/call/process, read SSE."""
    base = server.rstrip("/")
    with EXAMPLE.open("rb") as f:
        (uploaded,) = httpx.post(f"{base}/gradio_api/upload", files={"files": f}, timeout=30).json()
    params = api["named_endpoints"]["/process"]["parameters"]
    values = {p["parameter_name"]: p["parameter_default"] for p in params}
    values.update(image_url={"path": uploaded, "meta": {"_type": "gradio.FileData"}},
                  enable_solarize=True, solarize_threshold=0.25)
    r = httpx.post(f"{base}/gradio_api/call/process", json={"data": list(values.values())}, timeout=30)
    event_id = r.json()["event_id"]
    stream = httpx.get(f"{base}/gradio_api/call/process/{event_id}", timeout=60).text
    assert "event: complete" in stream, stream
    png_data, output = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])
    got = Image.open(io.BytesIO(httpx.get(png_data["url"], timeout=30).content))
    expected = effects.process(Image.open(EXAMPLE), {"enable_solarize": True, "solarize_threshold": 0.25})
    np.testing.assert_array_equal(pixels(got), pixels(expected))
    assert output["images"][0]["width"] == expected.width


# -- /upscale through gradio_client -----------------------------------------------------------------

def test_upscale_matches_the_upscaler(client, small_rgba):
    png, output = client.predict(image_url=handle_file(small_rgba), checkpoint="v2",
                                 overlapping_tiles=True, seed=5, api_name="/upscale")
    expected, _ = upscaler.upscale(Image.open(small_rgba), checkpoint="v2", overlapping_tiles=True,
                                   seed=5)
    got = Image.open(png)
    assert got.size == (160, 112) and got.mode == "RGBA"
    np.testing.assert_array_equal(pixels(got), pixels(expected))
    assert set(output) == {"image", "timings"}
    assert output["image"]["width"] == 160 and output["image"]["height"] == 112
    assert output["image"]["file_size"] == Path(png).stat().st_size
    assert set(output["timings"]) >= {"inference"}


def test_upscale_checkpoints_differ(client, small_rgba):
    v1, _ = client.predict(image_url=handle_file(small_rgba), seed=5, api_name="/upscale")
    v2, _ = client.predict(image_url=handle_file(small_rgba), checkpoint="v2", seed=5,
                           api_name="/upscale")
    assert not np.array_equal(pixels(Image.open(v1)), pixels(Image.open(v2)))


def test_upscale_refuses_unknown_checkpoint(client, small_rgba):
    with pytest.raises(AppError, match="v3"):
        client.predict(image_url=handle_file(small_rgba), checkpoint="v3", api_name="/upscale")


# -- JSON endpoints over HTTP ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_host(tmp_path_factory):
    """A plain HTTP server on 127.0.0.1 serving the examples, allowed through the SSRF guard."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(EXAMPLE.parent))
    with serving(handler) as httpd, pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
        yield f"http://127.0.0.1:{httpd.server_address[1]}"


def post(server: str, route: str, body) -> httpx.Response:
    return httpx.post(f"{server.rstrip('/')}/api/{route}", json=body, timeout=120)


def test_json_post_processing_with_data_uri_matches(server):
    body = {"image_url": data_uri(EXAMPLE), **json.loads((presets.PRESETS_DIR / "cinematic.json")
                                                         .read_text()), "seed": 1}
    r = post(server, "post-processing", body)
    assert r.status_code == 200
    (record,) = r.json()["images"]
    got = from_data_uri(record["url"])
    expected = effects.process(Image.open(EXAMPLE), {k: v for k, v in body.items() if k != "image_url"})
    np.testing.assert_array_equal(pixels(got), pixels(expected))
    assert record["file_size"] == len(base64.b64decode(record["url"].partition(",")[2]))
    assert (record["content_type"], record["width"], record["height"]) == ("image/png", 451, 300)


def test_json_post_processing_with_http_urls(server, image_host):
    body = {"image_url": f"{image_host}/chelsea.png", "enable_dissolve": True,
            "dissolve_image_url": f"{image_host}/coffee.png", "dissolve_factor": 0.6, "seed": 2}
    r = post(server, "post-processing", body)
    assert r.status_code == 200, r.text
    expected = effects.process(Image.open(EXAMPLE), body,
                               dissolve_image=Image.open(EXAMPLE.parent / "coffee.png"))
    np.testing.assert_array_equal(pixels(from_data_uri(r.json()["images"][0]["url"])),
                                  pixels(expected))


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"contrast": 300}, "contrast", "contrast: 300 is out of range; allowed [-100, 100]"),
    ({"grain_style": "vhs"}, "grain_style", "grain_style: 'vhs' is not one of"),
    ({"blur_radius": 2.5}, "blur_radius", "must be an integer"),
    ({"contrst": 1}, "contrst", "did you mean 'contrast'?"),
    ({"enable_dissolve": True}, "dissolve_image_url", "no second image URL"),
    ({"image_url": None}, "image_url", "is required"),
    ({"image_url": "ftp://example.com/a.png"}, "image_url", "scheme ftp: is not allowed"),
])
def test_json_post_processing_422_names_the_field(server, body, field, message):
    r = post(server, "post-processing", {"image_url": data_uri(EXAMPLE), **body})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", field]
    assert message in detail["msg"]


def test_json_post_processing_400_for_undecodable_image(server):
    broken = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"x" * 40).decode()
    r = post(server, "post-processing", {"image_url": broken})
    assert r.status_code == 400
    assert r.json()["detail"][0]["loc"] == ["body", "image_url"]
    assert "corrupt or truncated" in r.json()["detail"][0]["msg"]


def test_json_body_must_be_json(server):
    r = httpx.post(f"{server.rstrip('/')}/api/post-processing", content=b"{nope", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "body: is not valid JSON"


def test_json_aura_sr_matches_the_upscaler(server, small_rgba):
    body = {"image_url": data_uri(small_rgba), "upscaling_factor": 4, "overlapping_tiles": True,
            "checkpoint": "v1", "seed": 8}
    r = post(server, "aura-sr", body)
    assert r.status_code == 200, r.text
    out = r.json()
    expected, _ = upscaler.upscale(Image.open(small_rgba), overlapping_tiles=True, seed=8)
    np.testing.assert_array_equal(pixels(from_data_uri(out["image"]["url"])), pixels(expected))
    assert (out["image"]["width"], out["image"]["height"]) == (160, 112)
    assert set(out["timings"]) >= {"inference"}


@pytest.mark.parametrize(("body", "field"), [
    ({"upscaling_factor": 2}, "upscaling_factor"),
    ({"checkpoint": "v3"}, "checkpoint"),
    ({"overlapping_tiles": "maybe"}, "overlapping_tiles"),
    ({"seed": -1}, "seed"),
    ({"scale": 4}, "scale"),
])
def test_json_aura_sr_422_names_the_field(server, small_rgba, body, field):
    r = post(server, "aura-sr", {"image_url": data_uri(small_rgba), **body})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", field]


def test_json_aura_sr_accepts_fal_string_factor(server, small_rgba):
    r = post(server, "aura-sr", {"image_url": data_uri(small_rgba), "upscaling_factor": "4", "seed": 1})
    assert r.status_code == 200 and r.json()["image"]["width"] == 160


def test_every_field_is_a_control(api):
    names = {p["parameter_name"] for p in api["named_endpoints"]["/process"]["parameters"]}
    assert {f.name for f in FIELDS} < names
