"""The page in a real browser: Debian's chromium driven by Playwright (no browser download).

Each test opens its own tab and uploads its own photo, so the tests do not depend on each other's
order. Covered: the live preview and auto-enable, every mode switch of every effect (from the page
and from a preset), presets (picker, gallery, files, save), Process with a named download and the
"outdated" marker, the 1:1 loupe, the histogram, hold-to-compare, the request panel, the layout on
wide screens and phones, and the README screenshot (written to a temp dir). Speed is measured by
benchmarks/bench_drag.py, not here.
"""
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import effects
from effects.schema import DEFAULTS, EFFECTS, FIELDS
from studio import live
from studio_server import running_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000
COFFEE = ROOT / "examples" / "coffee.png"

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)
expect = sync_api.expect


@pytest.fixture(scope="module")
def photo_1mp(tmp_path_factory) -> Path:
    """coffee.png enlarged to 1224×816 (1.0 MP)."""
    path = tmp_path_factory.mktemp("photo") / "coffee-1mp.png"
    Image.open(COFFEE).resize((1224, 816), Image.LANCZOS).save(path)
    return path


@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    yield page
    context.close()


def upload(page, path: Path = COFFEE) -> None:
    page.locator("#source input[type=file]").set_input_files(str(path))
    page.wait_for_selector("#preview.has-image")
    settled(page)


def settled(page) -> None:
    """Wait until the preview shows the newest settings (or an error shows), then check no error."""
    page.wait_for_function("studio.settled() || document.querySelector('#preview-status').textContent")
    expect(page.locator("#preview-status")).to_have_text("")


def renders(page) -> int:
    return page.evaluate("studio.shown.length")


def open_effect(page, key: str) -> None:
    section = page.locator(f"#effect-{key}")
    if not section.locator("input[type=checkbox]").first.is_visible():
        section.locator("button").first.click()
    expect(section.locator("input[type=checkbox]").first).to_be_visible()
    page.wait_for_timeout(150)  # a slider filled in the instant it mounts can snap back


def choose(page, field, value: str) -> None:
    """Pick an enum value as a user does: a radio button, or an option of a dropdown."""
    if len(field.choices) <= 3:
        page.locator(f"#{field.name}").get_by_label(value, exact=True).check()
    else:
        page.locator(f"#{field.name} input").click()
        page.get_by_role("option", name=value, exact=True).click()


def preview_pixels(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator("#preview img").screenshot())).convert("RGB"),
                      np.int16)


def test_upload_shows_a_preview_and_an_empty_seed(page):
    upload(page)
    assert page.evaluate("document.querySelector('#preview img').naturalWidth") == 512
    expect(page.locator("#seed input")).to_have_value("")
    expect(page.locator("#source-size")).to_contain_text("600 × 400 px")


def test_moving_a_control_of_a_disabled_effect_enables_it(page):
    upload(page)
    before = preview_pixels(page)
    open_effect(page, "vignette")
    enable = page.locator("#enable_vignette input[type=checkbox]")
    expect(enable).not_to_be_checked()
    page.locator("#vignette_strength input[type=range]").fill("1")
    expect(enable).to_be_checked()
    expect(page.locator("#effect-vignette")).to_have_attribute("data-enabled", "")  # marked ●
    settled(page)
    assert (before[:20, :20] - preview_pixels(page)[:20, :20]).mean() > 8  # darker corners
    assert page.locator("#vignette_strength input[type=range]").get_attribute("max") == "1"


def test_every_mode_switch_keeps_the_preview_rendering(page):
    """Every enum of every effect through all its values and back: the preview renders each time
    without an error, and mode-dependent controls show and hide with their values intact."""
    upload(page)
    dependents = [f for f in FIELDS if f.shown_when is not None]
    for effect in EFFECTS:
        enums = [f for f in effect.fields if f.kind == "enum"]
        if not enums:
            continue
        open_effect(page, effect.key)
        for field in enums:
            for value in (*field.choices[1:], field.default):
                choose(page, field, value)
                settled(page)
                for dependent in (d for d in dependents if d.shown_when[0] == field.name):
                    box = page.locator(f"#{dependent.name}")
                    if value in dependent.shown_when[1]:
                        expect(box).to_be_visible()
                        expect(box.locator("input[type=number]")).to_have_value(
                            f"{dependent.default:g}")
                    else:
                        expect(box).to_be_hidden()
            expect(page.locator(f"#enable_{effect.key} input[type=checkbox]")).to_be_checked()
    expect(page.get_by_test_id("toast-body")).to_have_count(0)


def test_mode_switch_from_a_loaded_preset_and_back(page, tmp_path):
    upload(page)
    preset = tmp_path / "painterly.json"
    preset.write_text(json.dumps({"enable_blur": True, "blur_type": "kuwahara", "blur_radius": 4,
                                  "enable_sharpen": True, "sharpen_mode": "cas"}))
    page.get_by_test_id("Load preset…-upload-button").set_input_files(str(preset))
    open_effect(page, "blur")
    expect(page.locator("#blur_type").get_by_label("kuwahara", exact=True)).to_be_checked()
    expect(page.locator("#blur_sigma")).to_be_hidden()
    settled(page)
    choose(page, next(f for f in FIELDS if f.name == "blur_type"), "gaussian")
    expect(page.locator("#blur_sigma input[type=number]")).to_have_value("1")
    settled(page)
    open_effect(page, "sharpen")
    expect(page.locator("#cas_amount")).to_be_visible()
    expect(page.locator("#sharpen_radius")).to_be_hidden()
    choose(page, next(f for f in FIELDS if f.name == "sharpen_mode"), "basic")
    expect(page.locator("#sharpen_radius input[type=number]")).to_have_value("1")
    settled(page)


def test_preset_pick_sets_controls_and_renders_one_preview(page, monkeypatch):
    upload(page)
    calls = []
    real = live.render_preview
    monkeypatch.setattr(live, "render_preview", lambda *a: calls.append(1) or real(*a))
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="Noir").click()
    settled(page)
    page.wait_for_timeout(1000)  # time for any stray extra renders to show up
    assert len(calls) == 1
    open_effect(page, "desaturate")
    expect(page.locator("#enable_desaturate input[type=checkbox]")).to_be_checked()
    open_effect(page, "color_correction")
    open_effect(page, "vignette")
    expect(page.locator("#contrast input[type=number]")).to_have_value("40")
    expect(page.locator("#vignette_strength input[type=number]")).to_have_value("0.65")
    expect(page.locator("#seed input")).to_have_value("")


def test_gallery_shows_every_look_on_the_users_image_and_applies_it(page):
    upload(page)
    thumbs = page.locator("#preset-gallery img")
    expect(thumbs).to_have_count(10)
    noir = thumbs.nth(6)  # presets sorted by file name: …, newspaper, noir, …
    pixels = np.asarray(Image.open(io.BytesIO(noir.screenshot())).convert("RGB"), np.int16)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() < 4  # Noir on the coffee: grey
    noir.click()
    expect(page.locator("#preset-pick input")).to_have_value("Noir")
    settled(page)
    open_effect(page, "desaturate")
    expect(page.locator("#enable_desaturate input[type=checkbox]")).to_be_checked()


def test_save_preset_downloads_the_current_settings(page, tmp_path):
    upload(page)
    open_effect(page, "dissolve")
    page.locator("#enable_dissolve input[type=checkbox]").check()  # no second image yet
    open_effect(page, "glow")
    page.locator("#glow_radius input[type=range]").fill("9")
    settled(page)
    page.wait_for_timeout(500)  # the preset file follows the committed change
    with page.expect_download() as info:
        page.locator("#save-preset").click()
    path = tmp_path / "preset.json"
    info.value.save_as(path)
    saved = json.loads(path.read_text())
    flags = {e.enable.name: e.key in ("dissolve", "glow") for e in EFFECTS}
    assert saved == {**flags, "glow_radius": 9}


def test_load_preset_file_and_broken_file(page, tmp_path):
    upload(page)
    good = tmp_path / "teal.json"
    good.write_text(json.dumps({"enable_tint": True, "tint_mode": "teal", "seed": 42}))
    page.get_by_test_id("Load preset…-upload-button").set_input_files(str(good))
    expect(page.locator("#seed input")).to_have_value("42")
    settled(page)
    open_effect(page, "tint")
    expect(page.locator("#enable_tint input[type=checkbox]")).to_be_checked()

    bad = tmp_path / "bad.json"
    bad.write_text('{"contrast": 300}')
    page.get_by_test_id("Load preset…-upload-button").set_input_files(str(bad))
    expect(page.get_by_text("contrast: 300 is out of range; allowed [-100, 100]")).to_be_visible()
    expect(page.locator("#seed input")).to_have_value("42")  # nothing the user set is lost
    expect(page.locator("#enable_tint input[type=checkbox]")).to_be_checked()


def test_seed_out_of_range_is_named_in_the_preview(page):
    upload(page)
    page.locator("#seed input").fill("99999999999")
    expect(page.locator("#preview-status")).to_contain_text(
        "seed: 99999999999 is out of range; allowed [0, 4294967295]")
    page.locator("#seed input").fill("7")
    settled(page)


def test_process_names_the_download_and_marks_it_outdated_after_a_change(page, photo_1mp, tmp_path):
    upload(page, photo_1mp)
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="Cinematic").click()
    settled(page)
    page.wait_for_timeout(500)  # the preset's follow-up events done (see the report on flakiness)
    settled(page)
    page.locator("#run").click()
    download_button = page.locator("#download")
    expect(download_button).to_be_visible(timeout=60_000)
    expect(page.locator("#outdated .studio-outdated-note")).to_be_hidden()
    with page.expect_download() as info:
        download_button.click()
    assert info.value.suggested_filename == "coffee-1mp-cinematic.png"
    path = tmp_path / "result.png"
    info.value.save_as(path)
    with Image.open(path) as result:
        assert result.format == "PNG" and result.size == (1224, 816)

    open_effect(page, "color_correction")
    page.locator("#contrast input[type=range]").fill("5")
    expect(page.locator("#outdated .studio-outdated-note")).to_be_visible()
    expect(page.locator("#outdated")).to_contain_text("Outdated")
    page.locator("#contrast input[type=range]").fill("22")  # back to what was processed
    expect(page.locator("#outdated .studio-outdated-note")).to_be_hidden()
    upload(page, COFFEE)  # another image, same settings
    expect(page.locator("#outdated .studio-outdated-note")).to_be_visible()


def test_loupe_shows_a_1_to_1_crop_of_the_full_resolution_result(page, photo_1mp):
    upload(page, photo_1mp)
    open_effect(page, "sharpen")
    page.locator("#enable_sharpen input[type=checkbox]").check()
    settled(page)
    img = page.locator("#preview img")
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
    page.wait_for_selector("#loupe.has-image")
    expect(page.locator("#loupe-status")).to_contain_text("100% crop")
    data = page.evaluate("""async () => {
        const r = await fetch(document.querySelector('#loupe img').src);
        return Array.from(new Uint8Array(await r.arrayBuffer())); }""")
    shown = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"), np.int16)
    assert shown.shape == (live.LOUPE_SIDE, live.LOUPE_SIDE, 3)
    full = effects.process(Image.open(photo_1mp), {"enable_sharpen": True}).convert("RGB")
    left, top = round(0.25 * 1224 - 160), round(0.5 * 816 - 160)

    def sent(dx: int, dy: int) -> np.ndarray:  # the full-resolution crop as the route encodes it
        crop = full.crop((left + dx, top + dy, left + dx + 320, top + dy + 320))
        return np.asarray(Image.open(io.BytesIO(live.jpeg(crop))), np.int16)
    assert min(np.abs(shown - sent(dx, dy)).mean() for dx in (-1, 0, 1) for dy in (-1, 0, 1)) < 0.5
    expect(page.locator("#loupe-mark")).to_be_visible()


def test_histogram_follows_the_preview_and_marks_clipping(page):
    upload(page)
    canvas = page.locator("#histogram")
    low = float(canvas.get_attribute("data-clip-high"))
    open_effect(page, "color_correction")
    page.locator("#brightness input[type=range]").fill("100")
    settled(page)
    expect(page.locator("#clipping")).to_contain_text("highlights")
    assert float(canvas.get_attribute("data-clip-high")) > max(0.05, low)
    drawn = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), np.int16)
    assert (np.abs(drawn[..., 0] - drawn[..., 1]) > 60).any()  # coloured channel lines drawn


def test_hold_to_compare_shows_the_unprocessed_image_on_the_preview(page):
    upload(page)
    open_effect(page, "desaturate")
    page.locator("#enable_desaturate input[type=checkbox]").check()
    settled(page)
    spread = lambda px: np.abs(px[..., 0] - px[..., 2]).mean()  # noqa: E731 (colourfulness)
    assert spread(preview_pixels(page)) < 3
    page.locator("#hold-before").hover()
    page.mouse.down()
    expect(page.locator("#preview .studio-before-badge")).to_be_visible()
    page.wait_for_function("document.querySelector('#preview img').dataset.after")
    page.wait_for_timeout(200)
    assert spread(preview_pixels(page)) > 20  # the coffee in colour
    page.mouse.up()
    expect(page.locator("#preview .studio-before-badge")).to_be_hidden()
    page.wait_for_timeout(200)
    assert spread(preview_pixels(page)) < 3


def test_request_panel_shows_the_current_settings_for_this_server(page):
    upload(page)
    page.locator("#request-panel").locator("button").first.click()
    open_effect(page, "tint")
    choose(page, next(f for f in FIELDS if f.name == "tint_mode"), "teal")
    panel = page.locator("#request-panel")
    expect(panel).to_contain_text('"tint_mode": "teal"')
    expect(panel).to_contain_text("tint_mode='teal'")
    expect(panel).to_contain_text(page.url.rstrip("/") + "/api/post-processing")


def test_cancel_is_information_not_an_error(page):
    page.locator("#cancel").click()
    expect(page.get_by_text("Cancelled. Settings and earlier results are kept.")).to_be_visible()
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)


def test_preview_stays_in_view_on_wide_screens_and_comes_first_on_phones(page, browser, app_url):
    upload(page)
    open_effect(page, "desaturate")
    page.locator("#effect-desaturate").scroll_into_view_if_needed()
    box = page.locator("#preview img").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] / 2 < 1000  # still on screen

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    tab = phone.new_page()
    tab.goto(app_url)
    assert tab.locator("#preview").bounding_box()["y"] < tab.locator("#effect-grain").bounding_box()["y"]
    phone.close()


def test_screenshot_for_the_readme_goes_where_it_is_told(browser, app_url, tmp_path):
    sys.path.insert(0, str(ROOT / "docs"))
    from make_screenshot import SIZE, capture
    out = tmp_path / "screenshot.png"
    capture(browser, app_url, out)
    assert Image.open(out).size == (SIZE["width"], SIZE["height"])
