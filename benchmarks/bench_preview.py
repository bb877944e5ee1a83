"""How faithful and how fast the scaled preview is (issue 9), as printed figures.

1. Fidelity: for every case of tests/test_preview_fidelity.py, the mean absolute difference (0..255)
   between the 512 px preview rendered with ``scale`` and the full-resolution result downscaled to
   the preview's size (Pillow LANCZOS), on the sample photo upscaled to 1.5, 6 and 24 MP; next to
   it the same figure for today's unscaled preview. Grain and dissolve are random, so for them the
   strength of the added noise (std, preview / downscaled result) is printed as well.
2. Speed: all 13 effects stacked on the 512 px proxy (``effects.process``, conversions included),
   in memory passes: its time divided by the time of one pass, ``np.multiply(a, 1.0001, out=b)``
   on a 1024x1024x3 float32 array, both measured interleaved in the same run (fastest of each).

Usage: ``python benchmarks/bench_preview.py [--quick]`` (--quick: no 24 MP column, fewer repeats).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import effects  # noqa: E402
from imaging import thumbnail  # noqa: E402
from test_preview_fidelity import (CASES, PROXY_SIDE, SEED, TARGETS, mad, photo,  # noqa: E402
                                   second_photo, versions)

NOISY = ("grain", "dissolve")


def unscaled(case: str, megapixels: float) -> np.ndarray:
    """Today's preview: the proxy with the full image's pixel parameters."""
    proxy = thumbnail(photo(megapixels), PROXY_SIDE)
    other = second_photo(megapixels) if CASES[case].get("enable_dissolve") else None
    return np.asarray(effects.process(proxy, {**CASES[case], "seed": SEED}, dissolve_image=other),
                      np.float64)


def noise_ratio(case: str, megapixels: float) -> float:
    """std of the noise the preview adds / std of the noise in the downscaled result (grain: around
    the untouched image; dissolve: around the two images' blend)."""
    reference, preview, proxy = versions(case, megapixels)
    base = proxy
    if case.startswith("dissolve"):
        factor = effects.validate(CASES[case])["dissolve_factor"]
        full = (factor * np.asarray(photo(megapixels), np.float64)
                + (1 - factor) * np.asarray(second_photo(megapixels), np.float64))
        base = np.asarray(Image.fromarray(np.uint8(full + 0.5)).resize(
            (proxy.shape[1], proxy.shape[0]), Image.LANCZOS), np.float64)
    return float((preview - base).std() / (reference - base).std())


def passes(fn, one_pass, repeats: int) -> tuple[float, float]:
    """(``fn``'s time in passes, the pass's time in s): each timed ``repeats`` times, interleaved,
    and the fastest of each taken, so load from other processes on the machine cancels out."""
    fn()
    times, pass_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        middle = time.perf_counter()
        fn()
        times.append(time.perf_counter() - middle)
        pass_times.append(middle - start)
    return min(times) / min(pass_times), min(pass_times)


def main(quick: bool) -> None:
    sizes = (1.5, 6) if quick else (1.5, 6, 24)
    heavy = set(TARGETS) | {"all", "all_deterministic"}
    print("Preview fidelity: MAD (0..255) scaled preview vs downscaled full result "
          "[today's unscaled preview in brackets]")
    print(f"{'case':24s}{'target':>8s}" + "".join(f"{f'{mp:g} MP':>20s}" for mp in sizes))
    spatial_sum = {mp: [] for mp in sizes}
    for case in CASES:
        cells = []
        for mp in sizes:
            if mp == 24 and case not in heavy:
                cells.append(f"{'-':>20s}")
                continue
            reference, preview, _ = versions(case, mp)
            value = mad(preview, reference)
            cell = f"{value:.2f} [{mad(unscaled(case, mp), reference):.1f}]"
            if case.startswith(NOISY):
                cell += f" n{noise_ratio(case, mp):.2f}"
            cells.append(f"{cell:>20s}")
            if case in ("blur", "kuwahara", "chromatic", "glow", "sharpen", "smart_sharpen", "cas"):
                spatial_sum[mp].append(value)
            if mp == 24:  # a 24 MP photo and its results are large: keep none of them
                versions.cache_clear()
        target = f"{TARGETS[case]:g}" if case in TARGETS else ""
        print(f"{case:24s}{target:>8s}" + "".join(cells), flush=True)
    print(f"{'spatial average':24s}{'1.25':>8s}"
          + "".join(f"{np.mean(spatial_sum[mp]):20.2f}" for mp in sizes))
    print("n = std of the added noise, preview / downscaled result (target 1 +- 0.15, dissolve"
          " +- 0.05)")

    repeats = 10 if quick else 30
    a = np.random.default_rng(0).random((1024, 1024, 3), dtype=np.float32)
    b = np.empty_like(a)
    full = photo(6)
    proxy = thumbnail(full, PROXY_SIDE)
    other = thumbnail(second_photo(6), PROXY_SIDE)
    scale = proxy.width / full.width
    print(f"\nPreview speed on a {proxy.width}x{proxy.height} proxy of the 6 MP photo (scale "
          f"{scale:.3f}), in passes (one pass = np.multiply(a, 1.0001, out=b) on 1024x1024x3 "
          "float32; fastest of interleaved runs)")
    stacks = {"all 13, defaults": CASES["all"],
              "all 13, kuwahara r=8, smart sharpen": {**CASES["all"], "blur_type": "kuwahara",
                                                      "blur_radius": 8, "sharpen_mode": "smart"},
              "11 without grain and dissolve": CASES["all_deterministic"]}
    for name, params in stacks.items():
        params = {**params, "seed": SEED}
        scaled, pass_s = passes(lambda: effects.process(proxy, params, dissolve_image=other,
                                                        scale=scale),
                                lambda: np.multiply(a, 1.0001, out=b), repeats)
        today, _ = passes(lambda: effects.process(proxy, params, dissolve_image=other),
                          lambda: np.multiply(a, 1.0001, out=b), repeats)
        print(f"{name:38s} scaled {scaled:5.1f} passes   (unscaled {today:5.1f} passes; "
              f"pass {pass_s * 1e3:.2f} ms)")


if __name__ == "__main__":
    main("--quick" in sys.argv)
