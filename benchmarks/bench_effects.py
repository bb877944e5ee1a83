"""Effects speed: per-effect and whole-pipeline medians, also as ratios to one memory-bound pass.

One "pass" is ``np.multiply(a, 1.0001, out=b)`` on a 1024×1024×3 float32 array, measured in the same
run, so the ratios survive noisy or different machines. Targets (issue #2): all 13 effects (gaussian
blur, basic sharpen) at 1024² ≤ 130 passes; at 512² ≤ 40 passes; kuwahara r=3, smart sharpen and CAS
at 1024² each ≤ 60 passes.

Large images (issue #11, ``--large``): all 13 effects through ``effects.process`` (PIL in, PIL out,
bands on every core) at 1, 6, 24 and 48 MP (3:2 photos), each size in a fresh subprocess. Printed:
seconds (median and spread over ``--runs``), memory passes per megapixel (time / one pass, per 10^6
pixels; the pass is re-measured around every run, so load from other processes cancels out as far
as it can) and peak working memory in bytes per pixel: the rise of the process's peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs`` after both images are decoded) during the first
run, i.e. everything the request allocates beyond its decoded inputs, numpy, OpenCV and Pillow alike.
Targets: <= 45 passes/MP at 24 MP, <= 40 bytes/px. ``--reference`` also times the plain
whole-image loop (each effect function on the whole image) for the speed-up.

PNG encoders (``--png``): seconds (wall and CPU) and MiB for a photo and the all-13 result at each
``--sizes`` megapixels: ``imaging.encode_png`` (Up filter, bands deflated on every core), Pillow
at compress_level 0, 1 and 6 (adaptive filters, one stream) and OpenCV's ``imencode`` at level 1
with its Up and adaptive filters; each checked lossless.

Usage: ``python benchmarks/bench_effects.py [--repeat N] [--large [--runs N] [--sizes MP...]
[--reference]] [--png [--sizes MP...]]``
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from effects import keep_freed_buffers, validate  # noqa: E402
from effects.pipeline import _calls, apply, process  # noqa: E402
from imaging import encode_png, to_float_rgb, to_pil  # noqa: E402
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


def _memory_kib() -> tuple[int, int]:
    """(current, peak) resident set of this process in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def photo(megapixels: float) -> Image.Image:
    """A 3:2 photo of about ``megapixels`` million pixels."""
    width = round((megapixels * 1.5e6) ** 0.5)
    return load(1024)[0].resize((width, round(megapixels * 1e6 / width)), Image.LANCZOS)


def block_pass(count: int = 100) -> tuple[float, float]:
    """Seconds of one pass, wall and CPU, as the mean over ``count`` passes in a row: a block as
    long as a pipeline run is slowed by other processes about as much as the run itself."""
    a = np.random.default_rng(0).random((1024, 1024, 3), dtype=np.float32)
    b = np.empty_like(a)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        np.multiply(a, 1.0001, out=b)
    return (time.perf_counter() - start) / count, (time.process_time() - start_cpu) / count


def one_size(megapixels: float, runs: int, reference: bool) -> dict:
    """Measure one size in this (fresh) process; see the module docstring."""
    image = photo(megapixels)
    flip = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    params = validate({**{e.enable.name: True for e in EFFECTS}, "seed": 0})
    pixels = image.width * image.height
    seconds, cpu, units = [], [], [block_pass()]
    before, _ = _memory_kib()
    Path("/proc/self/clear_refs").write_text("5")  # peak := current
    for run in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = process(image, params, dissolve_image=flip)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if run == 0:
            peak = _memory_kib()[1] - before
        units.append(block_pass())
        del out
    unit, unit_cpu = (statistics.mean(u[k] for u in units) for k in (0, 1))
    mp = pixels / 1e6
    result = {"mp": mp, "size": f"{image.width}x{image.height}", "seconds": seconds,
              "unit_ms": 1000 * unit, "passes_per_mp": statistics.median(seconds) / unit / mp,
              "cpu_passes_per_mp": statistics.median(cpu) / unit_cpu / mp,
              "bytes_per_px": peak * 1024 / pixels}
    if reference:
        rgb, other = to_float_rgb(image)[0], to_float_rgb(flip)[0]
        start = time.perf_counter()
        for effect, kwargs in _calls(params, other, None, 1.0):
            rgb = effect.function(rgb, **kwargs)
        to_pil(rgb)
        result["reference_seconds"] = time.perf_counter() - start
    return result


def png_encoders(sizes: list[float]) -> None:
    def pillow(level: int):
        def encode(image: Image.Image) -> bytes:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=level)
            return buffer.getvalue()
        return encode

    def opencv(png_filter: int):
        def encode(image: Image.Image) -> bytes:
            bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
            options = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, png_filter]
            return cv2.imencode(".png", bgr, options)[1].tobytes()
        return encode

    encoders = {"imaging.encode_png": encode_png, "Pillow level 0": pillow(0),
                "Pillow level 1": pillow(1), "Pillow level 6": pillow(6),
                "OpenCV level 1, Up": opencv(cv2.IMWRITE_PNG_FILTER_UP),
                "OpenCV level 1, adaptive": opencv(cv2.IMWRITE_PNG_ALL_FILTERS)}
    all_on = {**{e.enable.name: True for e in EFFECTS}, "seed": 0}
    print(f"{'MP':>5} {'image':12} {'encoder':26} {'wall s':>7} {'CPU s':>6} {'MiB':>6}")
    for mp in sizes:
        image = photo(mp)
        result = process(image, all_on, dissolve_image=image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        for name, picture in (("photo", image), ("all-13", result)):
            for label, encode in encoders.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                data = encode(picture)
                wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
                back = np.asarray(Image.open(io.BytesIO(data)))
                assert np.array_equal(back, np.asarray(picture)), label
                print(f"{mp:5.0f} {name:12} {label:26} {wall:7.2f} {cpu:6.2f} {len(data) / 2**20:6.1f}",
                      flush=True)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def large(sizes: list[float], runs: int, reference: bool) -> None:
    print(f"all 13 effects, process() in bands on {os.cpu_count()} cores; each size in a fresh process")
    print("passes/MP: wall time / one pass (per 10^6 px); CPU passes/MP: CPU time of all threads /")
    print("CPU time of one pass (on an idle 2-core machine the wall figure approaches CPU / 2)")
    print(f"{'MP':>6} {'size':>11} {'s median':>9} {'spread':>13} {'pass ms':>8} {'passes/MP':>10} "
          f"{'CPU p/MP':>9} {'bytes/px':>9}" + (f" {'whole-image s':>14}" if reference else ""))
    for mp in sizes:
        command = [sys.executable, __file__, "--one-size", str(mp), "--runs", str(runs)]
        if reference:
            command.append("--reference")
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        s = r["seconds"]
        line = (f"{r['mp']:6.1f} {r['size']:>11} {statistics.median(s):9.2f} "
                f"{min(s):6.2f}-{max(s):<6.2f} {r['unit_ms']:8.2f} {r['passes_per_mp']:10.1f} "
                f"{r['cpu_passes_per_mp']:9.1f} {r['bytes_per_px']:9.1f}")
        if reference:
            line += f" {r['reference_seconds']:14.2f}"
        print(line, flush=True)
    print(f"targets at 24 MP: <= 45 passes/MP, <= 40 bytes/px (load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--large", action="store_true", help="the large-image figures (issue #11)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 6, 24, 48])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--png", action="store_true", help="PNG encoders on large results")
    parser.add_argument("--one-size", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeat = args.repeat
    keep_freed_buffers()  # as app.py and the CLI do
    if args.one_size:
        print(json.dumps(one_size(args.one_size, args.runs, args.reference)))
        return
    if args.large:
        large(args.sizes, args.runs, args.reference)
        return
    if args.png:
        png_encoders(args.sizes)
        return
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
