"""The repository stands on its own: a fresh clone of the committed HEAD, with nothing beside it (no
``../shared``), collects every test without an error and passes the tests that read data files.

The clone runs with the packages already installed in this interpreter: a new virtual environment
would need network installs. The complete check (clone, new venv, the README's
``pip install -r requirements-dev.txt && python -m pytest``) is done by hand before a release.
Inside the clone this test skips itself (``STUDIO_FRESH_CLONE``), so it never recurses.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARK = "STUDIO_FRESH_CLONE"


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(bool(os.environ.get(MARK)), reason="already inside the fresh clone")
def test_fresh_clone_collects_and_finds_its_data(tmp_path):
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout (not an unpacked archive)")
    head = _git("rev-parse", "HEAD")
    clone = tmp_path / "clone"
    _git("clone", "--quiet", "--no-checkout", str(ROOT), str(clone), cwd=tmp_path)
    _git("checkout", "--quiet", "--detach", head, cwd=clone)
    assert not (tmp_path / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[MARK] = "1"

    def pytest_in_clone(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=300)

    collected = pytest_in_clone("--collect-only", "-q")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert "error" not in collected.stdout.lower().splitlines()[-1]
    count = int(re.search(r"(\d+) tests? collected", collected.stdout).group(1))
    assert count > 500  # the whole suite, not a part of it
    # Tests that read fal's documents and the photos at run time, from the clone's own files.
    run = pytest_in_clone("-q", "tests/test_schema.py", "tests/test_color_correction.py")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _git("status", "--porcelain", cwd=clone) == ""  # and the run changed no tracked file
