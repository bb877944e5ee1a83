"""The preview's ``scale`` contract (issue 9): ``effects.process(proxy, params, scale=s)`` looks like
the full-resolution result downscaled to the proxy's size, and ``scale=1`` is unchanged.

Every check compares the preview with the *downscaled full-resolution result* (Pillow LANCZOS, the
proxy's own filter), never with the implementation's formulas. The photos are the sample photo
``tests/data/coffee.png`` (600x400) upscaled with LANCZOS to 1.5, 6 and 24 megapixels at test time;
the proxy is :func:`imaging.thumbnail` at 512 px, as the page makes it. Mean absolute differences are
on 0..255. Grain and dissolve are random: they are compared in their statistics (the strength of
the noise they add and its brightness bias), not pixel by pixel.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import effects
from effects.schema import EFFECTS
from imaging import thumbnail

DATA = Path(__file__).resolve().parent / "data"
PROXY_SIDE = 512
SEED = 3

#: Defaults and strong settings of every effect. Chromatic's default is no shift at all, so its
#: "default" case shifts by +-5. The scale=1 hashes in data/scale1_sha256.json were computed from
#: these cases with the code of commit 699e0c7 (before ``scale`` did anything).
CASES: dict[str, dict] = {
    "grain": {"enable_grain": True},
    "grain_strong": {"enable_grain": True, "grain_intensity": 1.0, "grain_scale": 60.0},
    **{f"grain_{s}": {"enable_grain": True, "grain_style": s}
       for s in ("analog", "kodak", "fuji", "cinematic", "newspaper")},
    "color_correction": {"enable_color_correction": True, "contrast": 40.0, "saturation": 30.0,
                         "temperature": 20.0, "gamma": 0.8},
    "chromatic": {"enable_chromatic": True, "red_shift": 5, "blue_shift": -5},
    "chromatic_strong": {"enable_chromatic": True, "red_shift": 20, "green_shift": -7,
                         "green_direction": "vertical", "blue_shift": -20, "blue_direction": "vertical"},
    "blur": {"enable_blur": True},
    "blur_strong": {"enable_blur": True, "blur_radius": 31, "blur_sigma": 0.5},
    "kuwahara": {"enable_blur": True, "blur_type": "kuwahara"},
    "kuwahara_strong": {"enable_blur": True, "blur_type": "kuwahara", "blur_radius": 8},
    "vignette": {"enable_vignette": True, "vignette_strength": 1.0},
    "parabolize": {"enable_parabolize": True},
    "tint": {"enable_tint": True, "tint_mode": "teal", "tint_strength": 0.6},
    "dissolve": {"enable_dissolve": True},
    "dissolve_strong": {"enable_dissolve": True, "dissolve_factor": 0.9},
    "dodge_burn": {"enable_dodge_burn": True, "dodge_burn_mode": "dodge_and_burn"},
    "glow": {"enable_glow": True},
    "glow_strong": {"enable_glow": True, "glow_intensity": 2.0, "glow_radius": 12},
    "sharpen": {"enable_sharpen": True},
    "sharpen_strong": {"enable_sharpen": True, "sharpen_radius": 3, "sharpen_alpha": 2.5},
    "smart_sharpen": {"enable_sharpen": True, "sharpen_mode": "smart"},
    "smart_sharpen_strong": {"enable_sharpen": True, "sharpen_mode": "smart", "noise_radius": 15,
                             "smart_sharpen_strength": 15.0, "smart_sharpen_ratio": 0.8},
    "cas": {"enable_sharpen": True, "sharpen_mode": "cas"},
    "cas_strong": {"enable_sharpen": True, "sharpen_mode": "cas", "cas_amount": 1.0},
    "solarize": {"enable_solarize": True},
    "desaturate": {"enable_desaturate": True, "desaturate_factor": 0.7},
    "all": {f"enable_{e.key}": True for e in EFFECTS},
    "all_deterministic": {f"enable_{e.key}": e.key not in ("grain", "dissolve") for e in EFFECTS},
}

#: Issue 9's targets for the spatial effects: mean absolute difference to the downscaled result.
TARGETS = {
    "blur": 0.75, "blur_strong": 0.75,
    "chromatic": 1.0, "chromatic_strong": 1.0,
    "glow": 1.25, "glow_strong": 2.25,  # intensity 2
    "cas": 1.25, "smart_sharpen": 1.25,
    "kuwahara": 2.5, "kuwahara_strong": 3.25,  # r = 3 and r = 8
    "sharpen": 10.0,
}
#: The spatial effects at their defaults, whose average has its own target.
SPATIAL_DEFAULTS = ("blur", "kuwahara", "chromatic", "glow", "sharpen", "smart_sharpen", "cas")
AVERAGE_TARGET = 1.25
#: Effects that do not depend on resolution: ``scale`` must not change them.
RESOLUTION_FREE = ("color_correction", "vignette", "parabolize", "tint", "dodge_burn", "solarize",
                   "desaturate")
#: The 24 MP photo is costly to process: only a few effects there.
AT_24_MP = ("blur", "chromatic_strong", "kuwahara")


@functools.cache
def photo(megapixels: float) -> Image.Image:
    """The sample photo upscaled to about ``megapixels`` at 3:2 (600x400 itself for 0.24)."""
    source = Image.open(DATA / "coffee.png").convert("RGB")
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    return source.resize((width, int(round(width / 1.5))), Image.LANCZOS)


@functools.cache
def second_photo(megapixels: float) -> Image.Image:
    """Dissolve's second image: the photo mirrored, a different picture of the same statistics."""
    return ImageOps.mirror(photo(megapixels))


@functools.cache
def versions(case: str, megapixels: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(full result downscaled to the proxy's size, preview, proxy) as float arrays on 0..255."""
    full = photo(megapixels)
    proxy = thumbnail(full, PROXY_SIDE)
    params = {**CASES[case], "seed": SEED}
    other = second_photo(megapixels) if params.get("enable_dissolve") else None
    reference = effects.process(full, params, dissolve_image=other).resize(proxy.size, Image.LANCZOS)
    preview = effects.process(proxy, params, dissolve_image=other, scale=proxy.width / full.width)
    return tuple(np.asarray(im, np.float64) for im in (reference, preview, proxy))


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_scale_one_is_the_code_before_scale_existed():
    """scale=1 gives, byte for byte, the outputs of commit 699e0c7 (stored as hashes)."""
    expected = json.loads((DATA / "scale1_sha256.json").read_text())
    image = Image.open(DATA / "coffee.png").convert("RGB")
    other = ImageOps.mirror(image)
    got = {name: hashlib.sha256(effects.process(image, {**params, "seed": 7}, dissolve_image=other,
                                                scale=1.0).tobytes()).hexdigest()[:16]
           for name, params in CASES.items()}
    assert got == expected


_SIZES = [(case, mp) for mp in (1.5, 6) for case in TARGETS] + [(c, 24) for c in AT_24_MP]


@pytest.mark.parametrize(("case", "megapixels"), _SIZES, ids=[f"{c}-{mp}MP" for c, mp in _SIZES])
def test_spatial_effect_preview_matches_downscaled_result(case, megapixels):
    reference, preview, proxy = versions(case, megapixels)
    assert mad(preview, reference) <= TARGETS[case]
    # The effect is visible at this size: the untouched proxy is further away. (At 24 MP the
    # default radii shrink below a proxy pixel, and the proxy's own rounding is all that is left.)
    assert mad(proxy, reference) > mad(preview, reference) or megapixels == 24


@pytest.mark.parametrize("megapixels", (1.5, 6))
def test_spatial_effects_on_average(megapixels):
    mean = np.mean([mad(*versions(case, megapixels)[:2]) for case in SPATIAL_DEFAULTS])
    assert mean <= AVERAGE_TARGET


@pytest.mark.parametrize("case", RESOLUTION_FREE)
def test_resolution_independent_effects_ignore_scale(case):
    proxy = thumbnail(photo(1.5), PROXY_SIDE)
    params = {**CASES[case], "seed": SEED}
    scaled = effects.process(proxy, params, scale=0.3)
    assert scaled.tobytes() == effects.process(proxy, params).tobytes()
    reference, preview, _ = versions(case, 1.5)
    assert mad(preview, reference) <= 2.0  # quantisation and the downscale's rounding


def _noise(case: str, megapixels: float, baseline: np.ndarray | None = None):
    """The noise added by ``case``: full result downscaled minus ``baseline`` and preview minus it
    (``baseline``: the downscaled original by default)."""
    reference, preview, proxy = versions(case, megapixels)
    base = proxy if baseline is None else baseline
    return reference - base, preview - base, proxy


@pytest.mark.parametrize("megapixels", (1.5, 6))
@pytest.mark.parametrize("case", ("grain", "grain_strong", "grain_kodak", "grain_cinematic"))
def test_grain_has_the_downscaled_strength(case, megapixels):
    full, preview, _ = _noise(case, megapixels)
    # Strength: the std of the added noise (within 15%).
    assert preview.std() == pytest.approx(full.std(), rel=0.15)


@pytest.mark.parametrize("megapixels", (1.5, 6))
def test_grain_has_the_downscaled_brightness_bias(megapixels):
    """The clip lifts the shadows; the preview lifts them as much.

    The reference's min-max normalisation also shifts all of its noise by a random offset (its
    own range is asymmetric by chance; the preview's expected one is symmetric). The offset shows
    in the midtones, where nothing clips; in the shadows the clip removes part of it, so the
    reference's own lift lies between the shadows' mean with and without the offset.
    """
    full, preview, proxy = _noise("grain", megapixels)
    luma = proxy.mean(axis=2)
    dark, mid = luma < 25, (luma > 0.42 * 255) & (luma < 0.58 * 255)
    assert dark.mean() > 0.05 and mid.mean() > 0.05  # the photo has both
    offset = full[mid].mean()
    assert abs(preview[mid].mean()) < 0.5  # no bias where nothing clips
    low, high = sorted((full[dark].mean(), full[dark].mean() - offset))
    assert low > 2  # the shadows' lift is real and visible
    assert low - 0.5 <= preview[dark].mean() <= high + 0.5


@pytest.mark.parametrize("megapixels", (1.5, 6))
def test_newspaper_print_has_the_downscaled_tone(megapixels):
    """The newspaper style's dots are about 6 and 12 px apart at 1.5 and 6 MP, under 3 proxy pixels:
    the downscale averages them into a tone, which the preview shows instead of its own coarse
    dots (pixel by pixel, the downscaled dots' moiré remains)."""
    reference, preview, proxy = versions("grain_newspaper", megapixels)
    today = np.asarray(effects.process(thumbnail(photo(megapixels), PROXY_SIDE),
                                       {**CASES["grain_newspaper"], "seed": SEED}), np.float64)
    assert mad(preview, reference) < 12 < 40 < mad(today, reference)
    assert abs(preview.mean() - reference.mean()) < 2


@pytest.mark.parametrize("megapixels", (1.5, 6))
@pytest.mark.parametrize("case", ("dissolve", "dissolve_strong"))
def test_dissolve_has_the_downscaled_strength(case, megapixels):
    """Around the two images' blend, the dither's deviation is as strong as the downscaled one's
    (within 5%) and unbiased."""
    factor = effects.validate(CASES[case])["dissolve_factor"]
    full_image = np.asarray(photo(megapixels), np.float64)
    blend = factor * full_image + (1 - factor) * np.asarray(second_photo(megapixels), np.float64)
    proxy = thumbnail(photo(megapixels), PROXY_SIDE)
    blend = np.asarray(Image.fromarray(np.uint8(blend + 0.5)).resize(proxy.size, Image.LANCZOS),
                       np.float64)
    full, preview, _ = _noise(case, megapixels, baseline=blend)
    assert preview.std() == pytest.approx(full.std(), rel=0.05)
    assert abs(preview.mean()) < 0.5 and abs(full.mean()) < 0.5


@pytest.mark.parametrize("megapixels", (1.5, 6))
def test_all_deterministic_effects_together(megapixels):
    """The 11 deterministic effects stacked at their defaults (glow and dodge push most of the
    photo into solarize's flipped range): as close as the spatial effects alone."""
    reference, preview, proxy = versions("all_deterministic", megapixels)
    assert mad(preview, reference) <= AVERAGE_TARGET < mad(proxy, reference)


@pytest.mark.parametrize("megapixels", (1.5, 6))
def test_all_13_effects_together_beat_the_unscaled_preview(megapixels):
    """With grain and dissolve too, their noise meets the later non-linear effects (glow, dodge,
    sharpen, solarize) at full strength before the downscale averages it: the preview keeps the
    downscaled result's tone (compared after a 2 px blur, which averages the noise away) and is
    closer than today's unscaled preview."""
    reference, preview, _ = versions("all", megapixels)
    today = np.asarray(effects.process(thumbnail(photo(megapixels), PROXY_SIDE),
                                       {**CASES["all"], "seed": SEED},
                                       dissolve_image=second_photo(megapixels)), np.float64)
    assert mad(preview, reference) < 0.85 * mad(today, reference)

    def tone(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(np.float32(a), (0, 0), 2.0)
    assert mad(tone(preview), tone(reference)) < 2.0


def test_chromatic_wraps_around_on_the_proxy():
    """A shift that pushes a bright right-hand stripe past the edge shows it at the left edge of
    the preview, where the downscaled full result has it (the wrap-around rule)."""
    full = np.zeros((600, 1200, 3), np.uint8)
    full[:, -30:] = 255
    full_image = Image.fromarray(full)
    proxy = thumbnail(full_image, 300)
    params = {"enable_chromatic": True, "red_shift": 20}
    reference = np.asarray(effects.process(full_image, params).resize(proxy.size, Image.LANCZOS),
                           np.float64)
    preview = np.asarray(effects.process(proxy, params, scale=proxy.width / 1200), np.float64)
    assert reference[:, :3, 0].mean() > 200  # red wrapped to the left edge (20 px -> 5 proxy px)
    assert np.abs(preview[..., 0] - reference[..., 0]).max() < 40
    assert mad(preview, reference) < 1.0


def test_scale_out_of_range_is_refused():
    proxy = thumbnail(photo(1.5), 64)
    for scale in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="scale"):
            effects.process(proxy, {"enable_blur": True}, scale=scale)
