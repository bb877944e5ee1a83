"""The page's event functions called directly (no server): live preview, proxies, comparison."""
import numpy as np
import pytest
from PIL import Image

import effects
from studio import handlers, presets, snippets


@pytest.fixture
def rgba_photo(tmp_path):
    """A 1200×800 RGBA photo (coffee.png enlarged) with a transparent left half."""
    image = Image.open(presets.PRESETS_DIR.parent / "examples" / "coffee.png").convert("RGBA")
    image = image.resize((1200, 800))
    alpha = np.full((800, 1200), 255, np.uint8)
    alpha[:, :600] = 0
    image.putalpha(Image.fromarray(alpha))
    path = tmp_path / "photo.png"
    image.save(path)
    return path


def test_proxy_is_at_most_512_px_and_keeps_alpha(rgba_photo):
    proxy = handlers.make_proxy(str(rgba_photo))
    assert proxy.size == (512, 341) and proxy.mode == "RGBA"
    assert handlers.make_proxy(None) is None


def test_preview_renders_the_proxy_with_the_settings(rgba_photo):
    proxy = handlers.make_proxy(str(rgba_photo))
    settings = presets.full_settings({"enable_solarize": True, "solarize_threshold": 0.2})
    preview, body, python, curl, preset_file = handlers.render_preview(proxy, None, **settings)
    expected = effects.process(proxy, settings)
    assert preview.mode == "RGB" and preview.size == proxy.size  # JPEG transport: no alpha
    right = (slice(None), slice(300, None))  # the opaque half is the effect's output as is
    np.testing.assert_array_equal(np.asarray(preview)[right], np.asarray(expected)[right][..., :3])
    assert np.all(np.asarray(preview)[:, :250] == 236)  # transparent half shown over light grey
    assert '"solarize_threshold": 0.2' in body and "enable_solarize=True" in python
    assert curl.startswith(f"curl -X POST {snippets.SERVER}/api/post-processing")
    assert presets.read_preset(open(preset_file, "rb").read()) == presets.to_preset(settings)


def test_preview_without_an_image_still_updates_the_request_panel():
    settings = presets.full_settings({"enable_glow": True})
    preview, body, *_ = handlers.render_preview(None, None, seed=7, **settings)
    assert preview is None
    assert '"enable_glow": true' in body and '"seed": 7' in body


def test_preview_leaves_out_dissolve_until_a_second_image_is_given(rgba_photo):
    proxy = handlers.make_proxy(str(rgba_photo))
    settings = presets.full_settings({"enable_dissolve": True, "dissolve_factor": 0.0})
    without, *_ = handlers.render_preview(proxy, None, **settings)
    assert np.array_equal(np.asarray(without), np.asarray(handlers._opaque(proxy)))
    other = Image.new("RGB", (50, 50), (255, 0, 0))
    with_red, *_ = handlers.render_preview(proxy, other, **settings)
    assert np.asarray(with_red)[:, 300:].mean(axis=(0, 1)).round().tolist() == [255, 0, 0]


def test_compare_pairs_screen_sized_images_and_shows_the_download(rgba_photo, tmp_path):
    result = tmp_path / "result.png"
    Image.open(rgba_photo).resize((2400, 1600)).save(result)
    (before, after), button = handlers.compare(str(rgba_photo), str(result))
    assert after.size == (1024, 683) and before.size == after.size
    assert button == {"__type__": "update", "value": str(result), "visible": True}


def test_upscale_shows_the_first_download_then_tiles(monkeypatch):
    import upscaler

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
