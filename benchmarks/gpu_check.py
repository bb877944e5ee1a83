"""AuraSR on a CUDA GPU: does onnxruntime really run the full-size graph there, how close to the CPU,
how fast, how much GPU memory. Prepared for a machine with a GPU; says so and exits 0 without one.

Run: ``python benchmarks/gpu_check.py`` (needs onnxruntime-gpu with its CUDA/cuDNN libraries, no
internet). In about 3-6 minutes on a recent GPU (``--budget``, default 450 s, skips what would not
fit) it prints:

1. the GPU (``nvidia-smi -L``) and onnxruntime's version;
2. the full-size AuraSR config (617.6M parameters) with seeded random weights, written once as
   ``config.json`` + ``model.safetensors`` exactly as ``benchmarks/bench_upscaler.py`` does (timing
   does not depend on the values);
3. placement: ``session.get_providers()`` of a CUDA session, and from onnxruntime's profile of one
   run, how many nodes and what share of the node time ran on ``CUDAExecutionProvider`` (a session
   can list CUDA and still run nodes on the CPU fallback);
4. CUDA against CPU on two tiles: max |difference| of the outputs (onnxruntime's CUDA provider uses
   TF32 convolutions by default on Ampere and later, so ~1e-3 is expected; far more means a fault);
5. ms per tile at batch 1, 8 and 16 through the app's own session path
   (``upscaler.runtime.create_session``), with the peak GPU memory of each (``nvidia-smi``, polled);
6. the wall time of ``upscaler.upscale`` on a 1024x1024 image (256 tiles), without and with
   overlapping tiles, at the app's default CUDA batch.

Options: ``--dir DIR`` keeps the 2.5 GB checkpoint between runs; ``--tiny --accelerator cpu`` runs
every step with the tiny test config on the CPU provider in seconds (how CI checks this script).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

import upscaler  # noqa: E402
from upscaler.config import AuraConfig  # noqa: E402
from upscaler.graph import INPUT_NAMES, OUTPUT_NAME, build_model, session_config  # noqa: E402
from upscaler.runtime import create_session, cuda_available  # noqa: E402
from upscaler.weights import read_safetensors  # noqa: E402

PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
BATCHES = (1, 8, 16)
REPEATS = 5
IMAGE_SIDE = 1024
# The child process writes the random checkpoint, so its 2.5 GB of arrays never stay in this one.
_WRITE = """
import json, sys
from tiny_aurasr import random_weights, real_config, tiny_config, write_checkpoint
from upscaler.config import AuraConfig
config = tiny_config() if sys.argv[2] == "tiny" else real_config()
write_checkpoint(sys.argv[1], config, random_weights(AuraConfig.from_dict(config), seed=0))
"""


class Budget:
    """Seconds left of the run; steps that would not fit are skipped with a line saying so."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def allows(self, step: str, needs: float) -> bool:
        if self.left() >= needs:
            return True
        print(f"{step}: skipped, {self.left():.0f} s of the time budget left (needs ~{needs:.0f} s)")
        return False


class GpuMemory:
    """Peak GPU memory in use while the ``with`` block runs, polled from ``nvidia-smi`` (the memory
    held by this process when the driver reports it per process, else the whole GPU's)."""

    def __init__(self):
        self.peak_mib: float | None = None
        self._stop = threading.Event()

    def _sample(self) -> float | None:
        try:
            apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                   "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            mine = [float(used) for pid, used in (line.split(",") for line in apps.stdout.splitlines() if "," in line)
                    if int(pid) == os.getpid() and used.strip().replace(".", "").isdigit()]
            if mine:
                return sum(mine)
            total = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, timeout=5)
            return float(total.stdout.split()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            value = self._sample()
            if value is not None:
                self.peak_mib = max(self.peak_mib or 0.0, value)

    def __enter__(self) -> GpuMemory:
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()

    def __str__(self) -> str:
        return "unknown (no nvidia-smi)" if self.peak_mib is None else f"{self.peak_mib / 1024:.2f} GiB"


def no_gpu_reason() -> str | None:
    """Why the CUDA provider cannot run here, or None when it can."""
    if PROVIDERS["cuda"] not in ort.get_available_providers():
        return (f"onnxruntime {ort.__version__} has no CUDA provider (providers: "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
    if not cuda_available():
        return ("onnxruntime's CUDA provider does not load: no CUDA GPU, or its CUDA/cuDNN libraries "
                "are missing")
    return None


def ensure_checkpoint(directory: Path, size: str) -> None:
    config = directory / "config.json"
    if (directory / "model.safetensors").exists() and config.exists():
        if json.loads(config.read_text()).get("dim") == (64 if size == "full" else 4):
            return
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    subprocess.run([sys.executable, "-c", _WRITE, str(directory), size], check=True, env=env)
    print(f"wrote the random {size} checkpoint in {time.perf_counter() - start:.1f} s")


def profiled_session(model, fed: dict, provider: str, profile_dir: Path) -> ort.InferenceSession:
    """A session on ``provider`` (CPU fallback allowed, as in the app) with onnxruntime's profiler
    on, which records the provider of every node it runs. The app's sessions never profile, hence
    this one is built here rather than by ``create_session``."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(profile_dir / provider)
    for key, value in session_config(model).items():
        options.add_session_config_entry(key, value)
    arrays = [np.ascontiguousarray(a) for a in fed.values()]
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays]
    if values:
        options.add_external_initializers(list(fed), values)
    chosen = [provider] if provider == PROVIDERS["cpu"] else [provider, PROVIDERS["cpu"]]
    session = ort.InferenceSession(model.SerializeToString(), options, providers=chosen)
    session.keep_alive = (arrays, values)
    return session


def placement(profile: Path) -> dict[str, tuple[int, float]]:
    """(nodes, microseconds) per provider, from an onnxruntime profile (kernel-time events)."""
    seen: dict[str, tuple[set, float]] = {}
    for event in json.loads(profile.read_text()):
        args = event.get("args", {})
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and "provider" in args:
            nodes, micros = seen.setdefault(args["provider"], (set(), 0.0))
            nodes.add(event["name"])
            seen[args["provider"]] = (nodes, micros + float(event.get("dur", 0)))
    return {provider: (len(nodes), micros) for provider, (nodes, micros) in seen.items()}


def feeds(cfg: AuraConfig, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = cfg.input_image_size
    lowres = rng.random((batch, cfg.channels, t, t), dtype=np.float32)
    z = rng.standard_normal((batch, cfg.style_network.dim_in), dtype=np.float32)
    return dict(zip(INPUT_NAMES, (lowres, z, np.zeros_like(lowres))))


def check_placement_and_accuracy(cfg, weights, provider: str, budget: Budget) -> None:
    """Steps 3 and 4: where the nodes run, and CUDA against CPU on two tiles."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-profile-") as tmp:
        start = time.perf_counter()
        session = profiled_session(*build_model(cfg, weights, 1), provider, Path(tmp))
        print(f"session on {provider}: created in {time.perf_counter() - start:.1f} s, "
              f"get_providers() = {session.get_providers()}")
        if session.get_providers()[0] != provider:
            print(f"FAULT: the session does not run on {provider}")
        tiles = [feeds(cfg, 1, seed) for seed in (1, 2)]
        accelerated = [session.run([OUTPUT_NAME], feed)[0] for feed in tiles]
        profile = Path(session.end_profiling())
        counts = placement(profile)
        total_nodes = sum(n for n, _ in counts.values()) or 1
        total_time = sum(t for _, t in counts.values()) or 1.0
        for name, (nodes, micros) in sorted(counts.items()):
            print(f"  {name}: {nodes} of {total_nodes} nodes, {100 * micros / total_time:.1f}% of node time")
        if counts.get(provider, (0, 0.0))[1] < 0.9 * total_time:
            print(f"FAULT: less than 90% of the node time ran on {provider}")
        del session
        if provider == PROVIDERS["cpu"] or not budget.allows("CUDA against CPU", 60):
            return
        start = time.perf_counter()
        cpu = profiled_session(*build_model(cfg, weights, 1), PROVIDERS["cpu"], Path(tmp))
        reference = [cpu.run([OUTPUT_NAME], feed)[0] for feed in tiles]
        cpu.end_profiling()
        diff = max(float(np.abs(a - r).max()) for a, r in zip(accelerated, reference))
        verdict = "ok" if diff < 0.02 else "FAULT: far beyond TF32 rounding"
        print(f"CUDA against CPU on two tiles: max |difference| = {diff:.2e} ({verdict}; "
              f"CPU took {time.perf_counter() - start:.1f} s)")


def time_batches(cfg, weights, budget: Budget) -> None:
    """Step 5: ms per tile at each batch size through the app's session path."""
    for batch in BATCHES:
        if not budget.allows(f"batch {batch}", 30):
            continue
        with GpuMemory() as memory:
            start = time.perf_counter()
            session = create_session(*build_model(cfg, weights, batch))
            created = time.perf_counter() - start
            feed = feeds(cfg, batch, 3)
            session.run([OUTPUT_NAME], feed)  # warm-up: cuDNN picks its algorithms here
            times = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                session.run([OUTPUT_NAME], feed)
                times.append(time.perf_counter() - start)
                if budget.left() < 20:
                    break
            del session
        per_tile = [1000 * t / batch for t in times]
        print(f"batch {batch:2d}: {min(per_tile):8.1f} ms per tile (min), {statistics.median(per_tile):8.1f} "
              f"median of {len(times)}; session {created:.1f} s; peak GPU memory {memory}")


def time_image(cfg, weights, side: int, budget: Budget) -> None:
    """Step 6: ``upscaler.upscale`` wall time on a side x side image, plain and overlapped."""
    model = upscaler.TileModel(cfg.input_image_size, cfg.style_network.dim_in,
                               functools.partial(build_model, cfg, weights))
    upscaler.register_model("v1", model)
    os.environ["AURASR_MAX_INPUT_PIXELS"] = str(side * side)
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (side, side, 3), dtype=np.uint8))
    try:
        for overlapped in (False, True):
            if not budget.allows(f"{side}x{side} image, overlapping_tiles={overlapped}", 60):
                continue
            with GpuMemory() as memory:
                start = time.perf_counter()
                result, timings = upscaler.upscale(image, checkpoint="v1", overlapping_tiles=overlapped, seed=0)
                wall = time.perf_counter() - start
            split = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            print(f"{side}x{side} -> {result.width}x{result.height}, overlapping_tiles={overlapped}, batch "
                  f"{upscaler.batch_size()}: {wall:.1f} s wall ({split}); peak GPU memory {memory}")
    finally:
        upscaler.register_model("v1", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, help="keep the random checkpoint here (default: temporary)")
    parser.add_argument("--budget", type=float, default=450, help="seconds the whole check may take")
    parser.add_argument("--accelerator", choices=PROVIDERS, default="cuda",
                        help="provider under test; cpu only to rehearse this script without a GPU")
    parser.add_argument("--tiny", action="store_true", help="the tiny test config instead of the full one")
    parser.add_argument("--image-side", type=int, default=IMAGE_SIDE, help="side of the timed image")
    args = parser.parse_args(argv)
    budget = Budget(args.budget)

    if args.accelerator == "cuda":
        reason = no_gpu_reason()
        if reason:
            print(f"gpu_check: no CUDA GPU found, nothing to measure: {reason}.")
            return 0
    os.environ["AURASR_DEVICE"] = args.accelerator
    os.environ.pop("AURASR_BATCH", None)
    provider = PROVIDERS[args.accelerator]
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("nvidia-smi") else "nvidia-smi not found"
    print(f"onnxruntime {ort.__version__}, testing {provider}; {gpus}")

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        ensure_checkpoint(directory, "tiny" if args.tiny else "full")
        cfg = AuraConfig.from_dict(json.loads((directory / "config.json").read_text()))
        weights = read_safetensors(directory / "model.safetensors")
        print(f"config: {sum(a.size for a in weights.values()) / 1e6:.1f}M parameters, "
              f"{cfg.input_image_size}x{cfg.input_image_size} tiles")
        check_placement_and_accuracy(cfg, weights, provider, budget)
        time_batches(cfg, weights, budget)
        time_image(cfg, weights, args.image_side, budget)
    print(f"gpu_check done, {args.budget - budget.left():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
