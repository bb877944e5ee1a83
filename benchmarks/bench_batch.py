"""Batch throughput: files/s of ``python -m effects`` on a folder of 1 MP photos, in-process
against a local Ray, measured in one run.

The folder holds ``--files`` JPEGs of 1024x1024 (crops and flips of the example photos, quality 92);
every file gets the ``cinematic`` preset (grain, colour correction, vignette, tint) with a fixed seed,
and is written as PNG. Figures:

* in-process: ``effects.__main__.main`` over the folder (one process, OpenCV's own threads);
* local Ray: the start-up of a local Ray (``ray.init``, ``--cpus`` CPUs) timed on its own, then the
  same command with ``--ray`` (one actor per CPU) twice: the first job also sets up the workers'
  environment (the project's packages, imports), the second finds it ready. The outputs are checked
  to be byte-identical to the in-process ones.

Usage: ``python benchmarks/bench_batch.py [--files N] [--cpus N]``. Timings are wall clock on
whatever else the machine runs; compare the two figures of one run.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from effects.__main__ import main as cli  # noqa: E402

PRESET = ROOT / "presets" / "cinematic.json"
SIDE = 1024


def photos(folder: Path, count: int) -> None:
    """``count`` different 1 MP JPEGs cut from the example photos."""
    sources = [Image.open(p).convert("RGB") for p in sorted((ROOT / "examples").glob("*.png"))]
    rng = np.random.default_rng(0)
    for i in range(count):
        source = sources[i % len(sources)]
        scale = SIDE / min(source.size) * (1 + rng.random())
        big = source.resize((round(source.width * scale) + 1, round(source.height * scale) + 1), Image.LANCZOS)
        x, y = (int(rng.integers(0, d - SIDE + 1)) for d in big.size)
        crop = big.crop((x, y, x + SIDE, y + SIDE))
        if i % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(folder / f"photo{i:03d}.jpg", quality=92)


def timed_cli(args: list[str]) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli(args)
    if code != 0:
        raise SystemExit(f"batch failed ({code}):\n{err.getvalue()}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=24, help="photos in the folder")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        photos(folder, args.files)
        common = [str(folder), "--preset", str(PRESET), "--set", "seed=1"]
        print(f"{args.files} photos of {SIDE}x{SIDE} (JPEG), preset {PRESET.stem}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")

        timed_cli([*common, "--out", str(Path(tmp) / "warm")])  # warm-up: imports, page cache
        here = timed_cli([*common, "--out", str(Path(tmp) / "here")])
        print(f"in-process: {here:.1f} s, {args.files / here:.2f} files/s")

        try:
            import ray
        except ImportError:
            print("local Ray: skipped (pip install -r requirements-ray.txt)")
            return
        from batch.on_ray import runtime_env

        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
                 object_store_memory=256 * 2**20)
        try:
            started = time.perf_counter() - start
            there = timed_cli([*common, "--out", str(Path(tmp) / "there"), "--ray"])
            again = timed_cli([*common, "--out", str(Path(tmp) / "again"), "--ray"])
        finally:
            ray.shutdown()
        print(f"local Ray, {args.cpus} CPUs: start-up {started:.1f} s, then {there:.1f} s, "
              f"{args.files / there:.2f} files/s ({args.files / (started + there):.2f} files/s with the "
              f"start-up); {here / there:.2f}x in-process")
        print(f"  a second job on the same Ray (worker environment set up): {again:.1f} s, "
              f"{args.files / again:.2f} files/s; {here / again:.2f}x in-process")
        same = all((Path(tmp) / "here" / p.name).read_bytes() == p.read_bytes()
                   for p in (Path(tmp) / "there").iterdir())
        print(f"outputs byte-identical to the in-process run: {same}")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
