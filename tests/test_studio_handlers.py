"""The page's server side called directly (no server): the decoded source and its live views
(preview, before, loupe, histogram), what follows the settings, the gallery and the steps around
Process."""
import io
import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import effects
import upscaler
from effects.schema import FIELDS_BY_NAME
from common.errors import InputError
from studio import handlers, live, presets, snippets, ui
from studio.components import FieldNumber


@pytest.fixture
def rgba_photo(tmp_path):
    """A 1200×800 RGBA photo (coffee.png enlarged) with a transparent left half."""
    image = Image.open(presets.PRESETS_DIR.parent / "examples" / "coffee.png").convert("RGBA")
    image = image.resize((1200, 800))
    alpha = np.full((800, 1200), 255, np.uint8)
    alpha[:, :600] = 0
    image.putalpha(Image.fromarray(alpha))
    path = tmp_path / "coffee.png"
    image.save(path)
    return path


@pytest.fixture
def token(rgba_photo):
    token, size = handlers.load_source(str(rgba_photo))
    assert size == "1200 × 800 px"
    return token


def settings_of(preset: dict) -> dict:
    return {k: v for k, v in presets.full_settings(preset).items() if k not in live.IMAGE_FIELDS}


def test_upload_is_decoded_once_into_full_image_and_512_px_proxy(token, rgba_photo):
    source = live.SOURCES.get(token)
    assert source.image.size == (1200, 800) and source.image.mode == "RGBA"
    assert source.proxy.size == (512, 341) and source.proxy.mode == "RGBA"
    assert source.scale == pytest.approx(512 / 1200) and source.name == "coffee"
    assert handlers.load_source(None) == ("", "")


def test_preview_renders_the_proxy_at_the_proxys_scale(token, monkeypatch):
    source = live.SOURCES.get(token)
    params = live.request_for(settings_of({"enable_solarize": True, "solarize_threshold": 0.2}),
                              None, preview=True)
    scales = []
    real = effects.process
    monkeypatch.setattr(effects, "process", lambda *a, scale=1.0, **k: scales.append(scale) or
                        real(*a, scale=scale, **k))
    preview = live.render_preview(source, params)
    assert scales == [pytest.approx(512 / 1200)]
    expected = real(source.proxy, params, scale=512 / 1200)
    assert preview.mode == "RGB" and preview.size == source.proxy.size  # JPEG transport: no alpha
    right = (slice(None), slice(300, None))  # the opaque half is the effect's output as is
    np.testing.assert_array_equal(np.asarray(preview)[right], np.asarray(expected)[right][..., :3])
    assert np.all(np.asarray(preview)[:, :250] == 236)  # transparent half shown over light grey


def test_preview_leaves_out_dissolve_until_a_second_image_is_given(token, tmp_path):
    source = live.SOURCES.get(token)
    params = live.request_for(settings_of({"enable_dissolve": True, "dissolve_factor": 0.0}), None,
                              preview=True)
    without = live.render_preview(source, params)
    assert np.array_equal(np.asarray(without), np.asarray(live.opaque(source.proxy)))
    red = tmp_path / "red.png"
    Image.new("RGB", (50, 50), (255, 0, 0)).save(red)
    handlers.load_dissolve(str(red), token)
    with_red = live.render_preview(source, params)
    assert np.asarray(with_red)[:, 300:].mean(axis=(0, 1)).round().tolist() == [255, 0, 0]
    assert source.dissolve.size == (50, 50)
    handlers.load_dissolve(None, token)
    assert source.dissolve is None and source.dissolve_proxy is None


def test_route_body_gives_jpeg_with_histogram_and_full_size(token):
    data, headers = live.render({"token": token, "settings": settings_of({"enable_tint": True})})
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (512, 341)
    hist = json.loads(headers["X-Histogram"])
    assert sum(hist["luma"]) == 512 * 341 and len(hist["r"]) == live.HISTOGRAM_BINS
    assert headers["X-Full-Size"] == "1200x800"
    before, headers = live.render({"token": token, "settings": {}, "view": "before"})
    assert Image.open(io.BytesIO(before)).size == (512, 341) and headers == {}


@pytest.mark.parametrize("view", ["preview", "before", "loupe"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_every_live_view_carries_the_uploads_colour_profile(tmp_path, view, mode):
    profile = (Path(__file__).parent / "data" / "AdobeRGB1998.icc").read_bytes()
    path = tmp_path / "wide.png"
    Image.new(mode, (300, 200), (40, 160, 90, 200)[:len(mode)]).save(path, icc_profile=profile)
    token, _ = handlers.load_source(str(path))
    data, _ = live.render({"token": token, "settings": settings_of({"enable_tint": True}),
                           "view": view, "at": [0.5, 0.5]})
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == profile


@pytest.mark.parametrize("body, field, status, message", [
    ({"settings": {"contrast": 300}}, "contrast", 422, "out of range; allowed [-100, 100]"),
    ({"settings": {}, "seed": 2**40}, "seed", 422, "out of range; allowed [0, 4294967295]"),
    ({"settings": {"blur_sigma": [1.0]}}, "blur_sigma", 422, "got list"),
    ({"settings": {}, "view": "loupe", "at": [2, 0]}, "at", 422, "fractions"),
    ({"settings": {}, "token": "unknown"}, "token", 404, "upload it again"),
])
def test_route_errors_name_the_field(token, body, field, status, message):
    with pytest.raises(InputError) as info:
        live.render({"token": token, **body})
    assert info.value.field == field and info.value.status == status
    assert str(info.value).startswith(f"{field}: ") and message in str(info.value)


def test_histogram_counts_levels_and_clipping():
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, 10:] = 255
    pixels[0, :5] = (128, 128, 128)
    hist = live.histogram(Image.fromarray(pixels))
    assert hist["luma"][0] == 95 and hist["luma"][63] == 100 and hist["luma"][32] == 5
    assert hist["r"] == hist["g"] == hist["b"] == hist["luma"]
    assert hist["clip_low"] == pytest.approx(95 / 200) and hist["clip_high"] == pytest.approx(0.5)
    red = live.histogram(Image.new("RGB", (4, 4), (200, 0, 0)))  # luma 2126*200/10000 = 42
    assert red["luma"][42 // 4] == 16 and red["r"][200 // 4] == 16 and red["clip_low"] == 1.0


def test_loupe_is_a_1_to_1_crop_of_the_full_resolution_result(token, monkeypatch):
    source = live.SOURCES.get(token)
    settings = settings_of({"enable_vignette": True, "vignette_strength": 0.8,
                            "enable_sharpen": True})
    params = live.request_for(settings, None, preview=False)
    full = live.opaque(effects.process(source.image, params))
    calls = []
    real = effects.process
    monkeypatch.setattr(effects, "process", lambda *a, **k: calls.append(a[0].size) or real(*a, **k))
    crop = live.render_loupe(source, params, (0.5, 0.5))
    assert crop.size == (live.LOUPE_SIDE, live.LOUPE_SIDE)
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(full.crop((440, 240, 760, 560))))
    corner = live.render_loupe(source, params, (1.0, 0.0))  # clamped to the image
    np.testing.assert_array_equal(np.asarray(corner), np.asarray(full.crop((880, 0, 1200, 320))))
    assert calls == [(1200, 800)]  # moving the loupe reuses the render
    data, _ = live.render({"token": token, "settings": settings, "view": "loupe", "at": [0, 1]})
    assert Image.open(io.BytesIO(data)).size == (320, 320)


def test_store_drops_least_recently_used_sources_beyond_its_memory_bound():
    store = live.SourceStore(max_bytes=2 * 2 * 100 * 100 * 3)  # two sources of image + proxy
    image = Image.new("RGB", (100, 100))
    first, second = (store.add(live.Source(image=image, proxy=image, name="x")) for _ in range(2))
    store.get(first)  # used: now the newest
    third = store.add(live.Source(image=image, proxy=image, name="x"))
    assert store.get(second) is None and store.get(first) and store.get(third)
    huge = store.add(live.Source(image=Image.new("RGB", (400, 400)), proxy=image, name="x"))
    assert store.get(huge) is not None and store.get(first) is None  # the newest always stays


def test_saved_preset_and_snippets_follow_the_settings_dissolve_included():
    settings = settings_of({"enable_dissolve": True, "enable_glow": True})  # no second image
    saved = presets.read_preset(open(handlers.save_preset(seed=7, **settings), "rb").read())
    assert saved["enable_dissolve"] is True and saved["enable_glow"] is True and saved["seed"] == 7
    body, python, curl = handlers.request_panel(True, seed=7, **settings)
    assert '"enable_dissolve": true' in body and "enable_dissolve=True" in python
    assert '"seed": 7' in body
    assert curl.startswith(f"curl -X POST {snippets.SERVER}/api/post-processing")
    assert handlers.request_panel(False, **settings) == (gr.skip(),) * 3
    with pytest.raises(gr.Error, match="seed: "):
        handlers.save_preset(seed=-1, **settings)


def test_gallery_renders_every_preset_on_the_users_image(token):
    builtin = presets.load_builtin()[0]
    looks = handlers.preset_gallery(token, builtin)
    assert [name for _, name in looks] == list(builtin)
    by_name = dict((name, np.asarray(image, np.int16)) for image, name in looks)
    assert all(image.shape[:2] == (107, 160) for image in by_name.values())
    noir = by_name["Noir"][:, 100:]  # desaturated: grey
    assert np.abs(noir[..., 0] - noir[..., 2]).max() <= 2
    assert np.abs(by_name["Cinematic"] - by_name["Noir"]).mean() > 10
    assert handlers.preset_gallery("gone", builtin) is None
    updates = handlers.pick_from_gallery(list(builtin).index("Noir"), builtin)
    assert updates[-1] == gr.update(value="Noir")
    assert updates[[*FIELDS_BY_NAME].index("enable_desaturate")]["value"] is True


def test_compare_uses_the_kept_source_and_names_the_download(token, tmp_path):
    result = tmp_path / "abc123.png"
    Image.new("RGB", (1200, 800), (9, 9, 9)).save(result)
    (before, after), button = handlers.compare(token, str(result), "Old photograph")
    assert after.size == (1024, 683) and before.size == after.size
    assert np.asarray(before)[:, 700:].mean() > 20  # the coffee photo, not the result
    assert button["visible"] is True and button["value"].endswith("/coffee-old-photograph.png")
    assert open(button["value"], "rb").read() == result.read_bytes()
    assert handlers.compare("gone", str(result), None) == (gr.skip(), gr.skip())


@pytest.mark.parametrize("source, preset, name", [
    ("coffee", "Cinematic", "coffee-cinematic.png"), ("IMG 0042", None, "img-0042-edited.png"),
    ("ÿ", "Noir", "image-noir.png")])
def test_download_names_follow_the_source_and_the_look(source, preset, name):
    assert handlers.download_name(source, preset) == name


def test_upscale_option_checks_the_input_cap_before_the_effects(token, monkeypatch):
    monkeypatch.setattr(upscaler, "max_input_pixels", lambda: 500_000)
    with pytest.raises(gr.Error, match=r"1200×800 \(0.96 MP\); the upscaler takes at most 0.50 MP"):
        handlers.check_upscale_input(token, True)
    handlers.check_upscale_input(token, False)
    monkeypatch.setattr(upscaler, "max_input_pixels", lambda: 1_000_000)
    handlers.check_upscale_input(token, True)


def test_failed_upscale_keeps_the_effects_result(tmp_path, monkeypatch):
    def unavailable(checkpoint, progress):
        raise upscaler.WeightsUnavailableError("AuraSR v1 weights are not downloaded")
    monkeypatch.setattr(upscaler, "preload", unavailable)
    result = tmp_path / "result.png"
    Image.new("RGB", (8, 8)).save(result)
    assert handlers.upscale_after_process(str(result), True, "v1", False, None,
                                          progress=lambda *a, **k: None) == (gr.skip(), gr.skip())
    assert handlers.upscale_after_process(str(result), False, "v1", False, None) == (
        gr.skip(), gr.skip())


def test_seed_range_errors_name_the_field(rgba_photo):
    assert FieldNumber().preprocess(2**40) == 2**40  # handed on unchecked
    with pytest.raises(gr.Error, match=r"seed: 1099511627776 is out of range; allowed \[0, 4294967295\]"):
        handlers.process(str(rgba_photo), seed=2**40, **presets.full_settings({}))


def test_mode_switch_updates_visibility_only():
    sigma = FIELDS_BY_NAME["blur_sigma"]
    assert ui.visibility_update(sigma, "kuwahara") == {"__type__": "update", "visible": False}
    assert ui.visibility_update(sigma, "gaussian") == {"__type__": "update", "visible": True}


def test_page_slider_range_comes_from_ui_maximum():
    field = FIELDS_BY_NAME["vignette_strength"]
    assert (field.maximum, field.ui_maximum) == (10, 1)
    with gr.Blocks():
        controls, _ = ui.build_effect_controls()
    assert controls["vignette_strength"].maximum == 1
    index = [*FIELDS_BY_NAME].index("vignette_strength")
    assert ui.value_updates(presets.full_settings({"vignette_strength": 0.4}))[index]["maximum"] == 1
    assert ui.value_updates(presets.full_settings({"vignette_strength": 4}))[index]["maximum"] == 10


def test_upscale_shows_the_first_download_then_tiles(monkeypatch):
    def preload(checkpoint, progress):
        progress(0, 2_500_000_000)
        progress(1_250_000_000, 2_500_000_000)

    def upscale(image, *, progress, **options):
        progress(1, 2)
        progress(2, 2)
        return image.resize((4 * image.width, 4 * image.height)), {"inference": 0.0}

    monkeypatch.setattr(upscaler, "preload", preload)
    monkeypatch.setattr(upscaler, "upscale", upscale)
    shown = []
    result, _ = handlers._run_upscaler(Image.new("RGB", (3, 2)), session=None,
                                       progress=lambda value, desc, **kw: shown.append((value, desc)),
                                       upscaling_factor=4, overlapping_tiles=False, checkpoint="v2",
                                       seed=None)
    assert result.size == (12, 8)
    descriptions = [desc for _, desc in shown]
    assert descriptions[0] == "Loading AuraSR…"
    assert descriptions[2] == "Downloading AuraSR v2 weights (once): 1.25 of 2.50 GB"
    assert shown[2][0] == (1_250_000_000, 2_500_000_000)
    assert descriptions[-1].startswith("AuraSR tile 2/2")
