"""benchmarks/gpu_check.py: says it found no GPU (exit 0) where CUDA does not load, and every step
runs (tiny config, CPU provider standing in for CUDA) so the GPU run does not stop on a script error."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from upscaler.runtime import cuda_available

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(cuda_available(), reason="a CUDA GPU is here: run benchmarks/gpu_check.py by hand")
def test_without_a_gpu_it_says_so_and_succeeds():
    done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu_check: no CUDA GPU found, nothing to measure: ")
    assert "Traceback" not in done.stderr


def test_every_step_runs_on_the_tiny_config(tmp_path):
    done = run("--tiny", "--accelerator", "cpu", "--image-side", "24", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "get_providers() = ['CPUExecutionProvider']" in out
    assert re.search(r"CPUExecutionProvider: (\d+) of \1 nodes, 100.0% of node time", out)
    for batch in (1, 8, 16):
        assert re.search(rf"batch +{batch}: +[\d.]+ ms per tile \(min\)", out), batch
    assert "24x24 -> 96x96, overlapping_tiles=False" in out and "overlapping_tiles=True" in out
    assert "FAULT" not in out and "skipped" not in out and out.rstrip().split("\n")[-1].startswith("gpu_check done")
