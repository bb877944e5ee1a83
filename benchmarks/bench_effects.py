"""Effects speed: per-effect and whole-pipeline medians, also as ratios to one memory-bound pass.

One "pass" is ``np.multiply(a, 1.0001, out=b)`` on a 1024×1024×3 float32 array, measured in the same
run, so the ratios survive noisy or different machines. Targets (issue #2): all 13 effects (gaussian
blur, basic sharpen) at 1024² ≤ 130 passes; at 512² ≤ 40 passes; kuwahara r=3, smart sharpen and CAS
at 1024² each ≤ 60 passes.

Usage: ``python benchmarks/bench_effects.py [--repeat N]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from effects import keep_freed_buffers, validate  # noqa: E402
from effects.pipeline import apply, process  # noqa: E402
from imaging import to_float_rgb  # noqa: E402
from effects.schema import EFFECTS  # noqa: E402

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "astronaut.png"


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: imports, OpenCV buffers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def one_pass_ms(repeat: int) -> float:
    a = np.random.default_rng(0).random((1024, 1024, 3), dtype=np.float32)
    b = np.empty_like(a)
    return median_ms(lambda: np.multiply(a, 1.0001, out=b), max(repeat, 50))


def load(size: int) -> tuple[Image.Image, np.ndarray]:
    image = Image.open(PHOTO).convert("RGB").resize((size, size), Image.LANCZOS)
    return image, to_float_rgb(image)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    keep_freed_buffers()  # as app.py and the CLI do
    unit = one_pass_ms(repeat)
    print(f"one pass (1024x1024x3 float32 multiply): {unit:.2f} ms\n")

    image, rgb = load(1024)
    second = to_float_rgb(load(1024)[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT))[0]
    all_on = {e.enable.name: True for e in EFFECTS}
    cases = [(e.label, {e.enable.name: True}) for e in EFFECTS] + [
        ("Blur: kuwahara r=3", {"enable_blur": True, "blur_type": "kuwahara", "blur_radius": 3}),
        ("Sharpen: smart", {"enable_sharpen": True, "sharpen_mode": "smart"}),
        ("Sharpen: cas", {"enable_sharpen": True, "sharpen_mode": "cas"}),
        *[(f"Grain: {s}", {"enable_grain": True, "grain_style": s})
          for s in ("analog", "kodak", "fuji", "cinematic", "newspaper")],
    ]
    print(f"{'effect at 1024x1024 (defaults)':36} {'ms':>8} {'passes':>8}")
    for label, params in cases:
        p = validate({**params, "seed": 0})
        ms = median_ms(lambda: apply(rgb, p, dissolve_image=second), repeat)
        print(f"{label:36} {ms:8.1f} {ms / unit:8.1f}")

    print()
    for size, target in ((1024, 130), (512, 40)):
        img, arr = load(size)
        other = np.ascontiguousarray(arr[:, ::-1])
        p = validate({**all_on, "seed": 0})
        ms = median_ms(lambda: apply(arr, p, dissolve_image=other), repeat)
        print(f"all 13 effects at {size}x{size}: {ms:7.1f} ms = {ms / unit:6.1f} passes "
              f"(target <= {target})")
        flip = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        ms = median_ms(lambda: process(img, {**all_on, "seed": 0}, dissolve_image=flip), repeat)
        print(f"  end to end with PIL decode/encode:  {ms:7.1f} ms = {ms / unit:6.1f} passes")


if __name__ == "__main__":
    main()
