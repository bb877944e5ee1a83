"""AuraSR full-size graph on CPU: build time, per-tile latency vs the torch reference, peak memory.

Full config (dim 64, 617.6M parameters, 2.47 GB fp32) with seeded random weights (latency does not
depend on the values), written once as ``config.json`` + ``model.safetensors`` in a child process and
memory-mapped exactly as ``upscaler.weights`` loads the Hub files.  Measured in one run:

* graph build time (``upscaler.graph.build_model``) and session creation time;
* onnxruntime per-tile latency for batch 1 and 4 (``upscaler.runtime.create_session``);
* peak RSS of the onnxruntime part, as a multiple of the weight size;
* the torch reference (``aura-sr`` 0.0.4 ``UnetUpsampler``, skipped with a message when torch,
  einops or aura_sr are missing), timed interleaved with onnxruntime so machine load hits both alike.

Targets (issue #3): onnxruntime per tile <= 0.9x torch, peak RSS <= 1.5x weights, build <= 20 s.
Latencies are the minimum and median over the repeats.

Usage: ``python benchmarks/bench_upscaler.py [--repeat N] [--dir DIR]`` (DIR keeps the 2.5 GB
checkpoint between runs; default: a temporary directory, deleted afterwards).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("AURASR_DEVICE", "cpu")

from tiny_aurasr import real_config  # noqa: E402
from upscaler.config import AuraConfig  # noqa: E402
from upscaler.graph import build_model  # noqa: E402
from upscaler.runtime import create_session  # noqa: E402
from upscaler.weights import read_safetensors  # noqa: E402

BATCHES = (1, 4)
_WRITE = """
import sys
from tiny_aurasr import random_weights, real_config, write_checkpoint
from upscaler.config import AuraConfig
write_checkpoint(sys.argv[1], real_config(), random_weights(AuraConfig.from_dict(real_config()), seed=0))
"""


def ensure_checkpoint(directory: Path) -> None:
    """Write the random full-size checkpoint in a child process, so its 2.5 GB of numpy arrays never
    count towards this process's peak RSS."""
    if (directory / "model.safetensors").exists() and json.loads((directory / "config.json").read_text()) == real_config():
        return
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    subprocess.run([sys.executable, "-c", _WRITE, str(directory)], check=True, env=env)
    print(f"wrote random full-size checkpoint to {directory} in {time.perf_counter() - start:.1f} s")


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def torch_reference(weights: dict[str, np.ndarray]):
    """``forward(lowres, z)`` of the reference module, or None (with a message) if unavailable."""
    try:
        import torch
        import einops  # noqa: F401
        import torchvision_stub
        torchvision_stub.install()
        import aura_sr
    except ImportError as exc:
        print(f"torch reference skipped: {exc} (needs torch, einops and `pip install --no-deps aura-sr==0.0.4`)")
        return None
    module = aura_sr.UnetUpsampler(**real_config()).eval()
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=True)
    torch.randn_like = torch.zeros_like  # zero input noise, as the onnxruntime runs get

    def forward(lowres: np.ndarray, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(lowres), noise=torch.from_numpy(z)).clamp(0, 1).numpy()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per batch size and runtime")
    parser.add_argument("--dir", type=Path, help="where to keep the random checkpoint (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aurasr-bench-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        ensure_checkpoint(directory)
        run(directory, args.repeat)


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call; CPU time is the steadier figure on a loaded box."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(directory: Path, repeat: int) -> None:
    cfg = AuraConfig.from_dict(json.loads((directory / "config.json").read_text()))
    weights = read_safetensors(directory / "model.safetensors")
    weight_bytes = sum(a.nbytes for a in weights.values())
    t = cfg.input_image_size
    print(f"full config: {sum(a.size for a in weights.values()) / 1e6:.1f}M parameters, "
          f"{weight_bytes / 1e9:.2f} GB, {len(weights)} tensors, {t}x{t} tiles, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")

    # Phase 1, onnxruntime only (one session alive at a time): build, session, memory.
    rng = np.random.default_rng(0)
    feeds, outputs = {}, {}
    for b in BATCHES:
        lowres = rng.random((b, 3, t, t), dtype=np.float32)
        feeds[b] = {"lowres": lowres, "z": rng.standard_normal((b, cfg.style_network.dim_in), dtype=np.float32),
                    "noise_aug": np.zeros_like(lowres)}
        start = time.perf_counter()
        model, fed = build_model(cfg, weights, b)
        built = time.perf_counter() - start
        session = create_session(model, fed)
        created = time.perf_counter() - start - built
        first, _ = timed(lambda: outputs.__setitem__(b, session.run(None, feeds[b])[0]))
        rss = psutil.Process().memory_info().rss
        print(f"batch {b}: graph build {built:.2f} s ({len(model.graph.node)} nodes, "
              f"{sum(a.nbytes for a in fed.values()) / 1e6:.0f} MB fed, rest memory-mapped), session {created:.2f} s, "
              f"first run {first:.2f} s; RSS {rss / 1e9:.2f} GB = {rss / weight_bytes:.2f}x weights")
        del session, model, fed
    ort_peak = peak_rss()
    print(f"peak RSS, onnxruntime phase: {ort_peak / 1e9:.2f} GB = {ort_peak / weight_bytes:.2f}x weights "
          f"(target <= 1.50)")

    # Phase 2, latency: onnxruntime and torch runs interleaved, so machine load hits both alike.
    forward = torch_reference(weights)
    print(f"\nper-tile latency, {repeat} runs each (s, min / median of wall clock; median process CPU time):")
    for b in BATCHES:
        session = create_session(*build_model(cfg, weights, b))
        session.run(None, feeds[b])
        ort_times, torch_times = [], []
        if forward is not None:
            ref = forward(feeds[b]["lowres"], feeds[b]["z"])  # warm-up, and a fidelity check
            print(f"  batch {b}: max |onnxruntime - torch| = {np.abs(outputs[b] - ref).max():.2e}")
        for _ in range(repeat):
            ort_times.append(timed(lambda: session.run(None, feeds[b])))
            if forward is not None:
                torch_times.append(timed(lambda: forward(feeds[b]["lowres"], feeds[b]["z"])))
        del session
        wall = np.array([w for w, _ in ort_times]) / b
        cpu = np.median([c for _, c in ort_times]) / b
        line = f"  batch {b}: onnxruntime {wall.min():.2f} / {np.median(wall):.2f} (cpu {cpu:.2f})"
        if torch_times:
            twall = np.array([w for w, _ in torch_times]) / b
            tcpu = np.median([c for _, c in torch_times]) / b
            line += (f"   torch {twall.min():.2f} / {np.median(twall):.2f} (cpu {tcpu:.2f})"
                     f"   ratio {wall.min() / twall.min():.2f} / {np.median(wall) / np.median(twall):.2f}"
                     f" (cpu {cpu / tcpu:.2f}; target <= 0.90)")
        print(line, flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
