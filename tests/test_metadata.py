"""Colour-true files: every output path (effects.process, the CLI, /process, the JSON endpoints,
fal's run routes, the page's upscale step) keeps the source's ICC profile (a real Adobe RGB (1998)
profile, tests/data/AdobeRGB1998.icc) and its EXIF (camera, lens, date, copyright, GPS), with the
orientation applied to the pixels and the tag reset to 1; damaged EXIF never fails a file; HEIC and
AVIF decode; the server's own results pass the input caps (docs/decisions.md, "Colour and metadata").
"""
import base64
import io
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageCms
from studio_server import running_app, tiny_aurasr_hub

import effects
from imaging import decode_image, encode_png, metadata, sniff_format, upright
from studio import handlers

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ADOBE_RGB = (DATA / "AdobeRGB1998.icc").read_bytes()
SRGB = ImageCms.createProfile("sRGB")

# EXIF tags (EXIF 2.32): base IFD, Exif sub-IFD, GPS sub-IFD.
MAKE, MODEL, ORIENTATION, COPYRIGHT, EXIF_IFD, GPS_IFD = 0x010F, 0x0110, 0x0112, 0x8298, 0x8769, 0x8825
DATE_ORIGINAL, LENS_MODEL, GPS_LATITUDE_REF, GPS_LATITUDE = 0x9003, 0xA434, 0x0001, 0x0002


def camera_exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif.update({MAKE: "Canon", MODEL: "EOS R5", ORIENTATION: orientation, COPYRIGHT: "(c) A. Photographer"})
    exif.get_ifd(EXIF_IFD).update({DATE_ORIGINAL: "2024:05:01 10:00:00", LENS_MODEL: "RF24-70mm F2.8"})
    exif.get_ifd(GPS_IFD).update({GPS_LATITUDE_REF: "N", GPS_LATITUDE: (52.0, 22.0, 5.5)})
    return exif.tobytes()


def photo() -> Image.Image:
    """A 48×32 crop of the cat photo, the left half in-gamut greens and reds (where Adobe RGB and
    sRGB differ most: (60, 160, 90) in Adobe RGB is (0, 161, 85) in sRGB)."""
    image = Image.open(ROOT / "examples" / "chelsea.png").convert("RGB").crop((200, 40, 248, 72))
    for i, colour in enumerate([(60, 160, 90), (40, 120, 60), (160, 60, 40), (90, 140, 70)]):
        image.paste(colour, (6 * i, 0, 6 * i + 6, 32))
    return image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A lossless Adobe RGB PNG with camera EXIF, stored rotated (orientation 6: turn 90° clockwise)."""
    path = tmp_path_factory.mktemp("src") / "adobe.png"
    stored = photo().transpose(Image.Transpose.ROTATE_90)  # what a camera held upright writes
    path.write_bytes(encode(stored, "PNG", icc_profile=ADOBE_RGB, exif=camera_exif(6)))
    return path


def as_srgb(image: Image.Image) -> np.ndarray:
    """What a colour-managed viewer shows: the pixels converted from their profile to sRGB (untagged
    pixels are taken as sRGB)."""
    rgb = image.convert("RGB")
    icc = image.info.get("icc_profile")
    if icc:
        rgb = ImageCms.profileToProfile(rgb, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB,
                                        outputMode="RGB")
    return np.asarray(rgb, dtype=np.int16)


def assert_colour_and_metadata_kept(png: bytes) -> None:
    """``png`` is the neutral result of :func:`source`: same colours, upright, with its EXIF."""
    assert png.startswith(b"\x89PNG")
    out = Image.open(io.BytesIO(png))
    out.load()
    expected = photo()
    assert out.size == expected.size == (48, 32)  # orientation applied to the pixels
    assert out.info["icc_profile"] == ADOBE_RGB
    np.testing.assert_array_equal(np.asarray(out.convert("RGB")), np.asarray(expected))
    shown, source_shown = as_srgb(out), as_srgb(Image.open(io.BytesIO(encode(expected, "PNG",
                                                                            icc_profile=ADOBE_RGB))))
    np.testing.assert_array_equal(shown, source_shown)
    # The profile matters: read as sRGB, the coloured half would look visibly different.
    assert np.abs(shown - np.asarray(expected, np.int16))[:, :24].max() >= 40
    exif = out.getexif()
    assert (exif[MAKE], exif[MODEL], exif[COPYRIGHT]) == ("Canon", "EOS R5", "(c) A. Photographer")
    assert exif[ORIENTATION] == 1
    sub = exif.get_ifd(EXIF_IFD)
    assert (sub[DATE_ORIGINAL], sub[LENS_MODEL]) == ("2024:05:01 10:00:00", "RF24-70mm F2.8")
    gps = exif.get_ifd(GPS_IFD)
    assert gps[GPS_LATITUDE_REF] == "N" and [float(v) for v in gps[GPS_LATITUDE]] == [52.0, 22.0, 5.5]


# --- effects.process + imaging.encode_png ---------------------------------------------------------

def test_process_and_encode_png_keep_profile_exif_and_orientation(source):
    image, warnings = decode_image(source, field="image_url")
    assert warnings == [] and image.size == (48, 32) and image.getexif()[ORIENTATION] == 1
    assert_colour_and_metadata_kept(encode_png(effects.process(image, {})))


def test_process_of_an_undecoded_file_applies_orientation_once(source):
    # What a script doing Image.open + effects.process gets: the same as through decode_image.
    with Image.open(source) as image:
        assert_colour_and_metadata_kept(encode_png(effects.process(image, {})))


def test_metadata_leaves_the_source_untouched(source):
    with Image.open(source) as image:
        assert metadata(image)["icc_profile"] == ADOBE_RGB
        assert image.getexif()[ORIENTATION] == 6  # read again later: still the source's own tag
        assert upright(image).size == (48, 32)


def test_profiles_of_other_colour_spaces_are_not_copied_to_rgb_results():
    grey_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not RGB
    image = Image.new("L", (4, 4), 128)
    image.info["icc_profile"] = grey_profile
    result = effects.process(image, {})
    assert result.mode == "RGB" and "icc_profile" not in result.info


def test_a_real_effect_keeps_the_profile():
    image = photo()
    image.info["icc_profile"] = ADOBE_RGB
    out = Image.open(io.BytesIO(encode_png(effects.process(image, {"enable_solarize": True}))))
    assert out.info["icc_profile"] == ADOBE_RGB


def test_dissolve_mixes_the_second_image_in_the_main_image_colour_space():
    # dissolve_factor 0 takes every value from the second image: in the main image's colour space.
    params = {"enable_dissolve": True, "dissolve_factor": 0.0, "seed": 0}
    adobe_green = Image.new("RGB", (4, 4), (60, 160, 90))
    adobe_green.info["icc_profile"] = ADOBE_RGB
    srgb_main = Image.new("RGB", (4, 4), (0, 0, 0))  # untagged: sRGB
    out = effects.process(srgb_main, params, dissolve_image=adobe_green)
    assert "icc_profile" not in out.info
    assert np.abs(np.asarray(out, int) - (0, 161, 85)).max() <= 1  # ImageCms: Adobe → sRGB
    adobe_main = Image.new("RGB", (4, 4), (0, 0, 0))
    adobe_main.info["icc_profile"] = ADOBE_RGB
    out = effects.process(adobe_main, params, dissolve_image=Image.new("RGB", (4, 4), (0, 161, 85)))
    assert out.info["icc_profile"] == ADOBE_RGB
    # sRGB (0, 161, 85) is Adobe RGB (90, 160, 90): Adobe (60, 160, 90) lies outside sRGB (clipped).
    assert np.abs(np.asarray(out, int) - (90, 160, 90)).max() <= 1
    same = effects.process(adobe_main, params, dissolve_image=adobe_green)
    assert np.array_equal(np.asarray(same), np.asarray(adobe_green))  # one space: values as they are


# --- damaged EXIF -----------------------------------------------------------------------------------

def damaged_jpeg() -> bytes:
    """A JPEG whose EXIF block (tests/data/damaged-exif.bin: :func:`camera_exif` with one flipped
    byte, found by fuzzing) Pillow reads, orientation 6 included, but cannot write back: a GPS tag
    whose number became 24 (GPSDestBearing, a rational) still holds the text "N"."""
    return encode(photo().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95,
                  exif=(DATA / "damaged-exif.bin").read_bytes())


def test_damaged_exif_block_never_fails_a_file():
    with Image.open(io.BytesIO(damaged_jpeg())) as raw:
        with pytest.raises(Exception):
            raw.getexif().tobytes()  # the damage: Pillow's own re-serialising fails here
        assert raw.getexif()[MAKE] == "Canon"
    image, warnings = decode_image(damaged_jpeg(), field="image_url")
    assert warnings == ["image_url: the EXIF metadata is damaged; it is left out of the result"]
    assert image.size == (48, 32)  # the orientation it could read is still applied
    out = Image.open(io.BytesIO(encode_png(effects.process(image, {}))))
    assert out.size == (48, 32) and not out.getexif()
    with Image.open(io.BytesIO(damaged_jpeg())) as raw:
        assert effects.process(raw, {}).size == (48, 32)


# --- the CLI ---------------------------------------------------------------------------------------

def test_cli_keeps_metadata_reads_heic_and_goes_on_past_damaged_exif(source, tmp_path):
    damaged, phone = tmp_path / "damaged.jpg", tmp_path / "phone.heic"
    damaged.write_bytes(damaged_jpeg())
    phone.write_bytes(encode(photo(), "HEIF", quality=95, icc_profile=ADOBE_RGB, exif=camera_exif(1)))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "effects", str(source), str(damaged), str(phone),
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "done 3, skipped 0, failed 0" in run.stderr
    assert "damaged.jpg: the EXIF metadata is damaged; it is left out of the result" in run.stderr
    assert_colour_and_metadata_kept((out / "adobe.png").read_bytes())
    assert Image.open(out / "damaged.png").size == (48, 32)
    heic = Image.open(out / "phone.png")
    assert heic.size == (48, 32) and heic.info["icc_profile"] == ADOBE_RGB and heic.getexif()[MAKE] == "Canon"


# --- HEIC / AVIF ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, options", [("HEIF", {"quality": 95}), ("AVIF", {"quality": 95})])
def test_heic_and_avif_decode_upright_with_profile_and_exif(fmt, options):
    # Stored rotated with orientation 6, as a phone writes it (pillow-heif turns that into HEIF's own
    # rotation property, Pillow's AVIF keeps the EXIF tag): both decode upright.
    stored = photo().transpose(Image.Transpose.ROTATE_90)
    data = encode(stored, fmt, icc_profile=ADOBE_RGB, exif=camera_exif(6), **options)
    assert sniff_format(data[:16]) == fmt
    image, warnings = decode_image(data, field="image_url")
    assert warnings == [] and image.size == (48, 32) and image.mode == "RGB"
    assert np.abs(np.asarray(image, np.int16) - np.asarray(photo(), np.int16)).mean() < 6  # lossy
    out = Image.open(io.BytesIO(encode_png(effects.process(image, {}))))
    assert out.size == (48, 32) and out.info["icc_profile"] == ADOBE_RGB
    exif = out.getexif()
    assert exif[MAKE] == "Canon" and exif[ORIENTATION] == 1
    assert exif.get_ifd(EXIF_IFD)[LENS_MODEL] == "RF24-70mm F2.8"


def test_iso_media_sniffing():
    assert sniff_format(b"\0\0\0\x18ftypheic\0\0\0\0") == "HEIF"
    assert sniff_format(b"\0\0\0\x1cftypavif\0\0\0\0") == "AVIF"
    assert sniff_format(b"\0\0\0\x18ftypmif1\0\0\0\0") == "HEIF"  # generic brand: Pillow tells
    assert sniff_format(b"\0\0\0\x18ftypisom\0\0\0\0") is None  # an MP4 video


# --- trusted intermediates ---------------------------------------------------------------------------

def test_trusted_results_pass_the_input_caps(monkeypatch):
    data = encode(Image.new("RGB", (80, 60), (1, 2, 3)), "PNG")
    monkeypatch.setenv("STUDIO_MAX_PIXELS", "1000")
    with pytest.raises(ValueError, match="the limit is 1000 pixels"):
        decode_image(data, field="image_url")
    assert decode_image(data, field="result", trusted=True)[0].size == (80, 60)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own bomb error from 2000 px
    with pytest.raises(ValueError, match="the limit is 1000 pixels"):
        decode_image(data, field="image_url")
    assert decode_image(data, field="result", trusted=True)[0].size == (80, 60)
    assert Image.MAX_IMAGE_PIXELS == 1000  # lifted for that one open only


# --- the page and the APIs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with tiny_aurasr_hub(tmp_path_factory.mktemp("hf") / "hub"), running_app() as url:
        yield url


def png_of_data_uri(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64"
    return base64.b64decode(payload)


def test_process_endpoint_file_keeps_metadata(server, source, tmp_path):
    # The file /process answers is also the page's download.
    client = Client(server, verbose=False, download_files=str(tmp_path))
    try:
        png, _ = client.predict(image_url=handle_file(source), api_name="/process")
    finally:
        client.close()
    assert_colour_and_metadata_kept(Path(png).read_bytes())


def test_json_post_processing_with_data_uri_keeps_metadata(server, source):
    body = {"image_url": "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode()}
    r = httpx.post(f"{server.rstrip('/')}/api/post-processing", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert_colour_and_metadata_kept(png_of_data_uri(r.json()["images"][0]["url"]))


def test_json_post_processing_takes_heic(server):
    data = encode(photo(), "HEIF", quality=95, icc_profile=ADOBE_RGB)
    body = {"image_url": "data:image/heic;base64," + base64.b64encode(data).decode(),
            "enable_solarize": True}
    r = httpx.post(f"{server.rstrip('/')}/api/post-processing", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(png_of_data_uri(r.json()["images"][0]["url"])))
    assert out.size == (48, 32) and out.info["icc_profile"] == ADOBE_RGB


def test_json_aura_sr_keeps_metadata(server, source):
    body = {"image_url": "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode()}
    r = httpx.post(f"{server.rstrip('/')}/api/aura-sr", json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(png_of_data_uri(r.json()["image"]["url"])))
    assert out.size == (192, 128) and out.info["icc_profile"] == ADOBE_RGB
    assert out.getexif()[ORIENTATION] == 1 and out.getexif()[MAKE] == "Canon"


def test_page_upscale_after_process_takes_a_result_larger_than_the_cap(server, source, tmp_path,
                                                                         monkeypatch):
    result = tmp_path / "result.png"
    image, _ = decode_image(source, field="image_url")
    result.write_bytes(encode_png(effects.process(image, {})))
    monkeypatch.setenv("STUDIO_MAX_PIXELS", "1000")  # the 48×32 result is above the upload cap
    path, output = handlers.upscale_after_process(str(result), True, "v1", False, 0,
                                                  progress=lambda *args, **kwargs: None)
    upscaled = Image.open(path)
    assert upscaled.size == (192, 128) and output["images"][0]["width"] == 192
    assert upscaled.info["icc_profile"] == ADOBE_RGB and upscaled.getexif()[MAKE] == "Canon"


# --- fal's own routes (python app.py over https) ------------------------------------------------------

@pytest.fixture(scope="module")
def fal(tmp_path_factory):
    from fal_server import FalServer
    server = FalServer(tmp_path_factory.mktemp("fal-metadata")).start()
    try:
        with server.http(key=None) as client:
            yield client
    finally:
        server.stop()


@pytest.mark.parametrize("app, size", [("fal-ai/post-processing", (48, 32)), ("fal-ai/aura-sr", (192, 128))])
def test_fal_run_results_keep_profile_and_exif(fal, source, app, size):
    body = {"image_url": "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode()}
    r = fal.post(f"/fal/run/{app}", json=body)
    assert r.status_code == 200, r.text
    output = r.json()
    record = output["images"][0] if "images" in output else output["image"]
    png = fal.get(record["url"]).content  # a file URL on this server, as fal's CDN URLs
    if app == "fal-ai/post-processing":
        assert_colour_and_metadata_kept(png)
    out = Image.open(io.BytesIO(png))
    assert out.size == size and out.info["icc_profile"] == ADOBE_RGB
    assert out.getexif()[ORIENTATION] == 1 and out.getexif()[MAKE] == "Canon"
