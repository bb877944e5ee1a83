"""python -m effects: batch over files, overrides, per-file failures that don't stop the others."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from effects import process
from effects.__main__ import main


def make_inputs(tmp_path):
    good = tmp_path / "a.png"
    Image.new("RGB", (5, 4), (51, 51, 51)).save(good)
    broken = tmp_path / "b.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"enable_parabolize": True}))
    return good, broken, preset


def test_batch_with_preset_and_override(tmp_path, capsys):
    good, broken, preset = make_inputs(tmp_path)
    code = main([str(good), str(broken), "--preset", str(preset), "--out", str(tmp_path / "out"),
                 "--set", "enable_solarize=true"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"failed: {broken}:" in err and "1 written" in err and "1 failed" in err
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.all(out == 105)  # parabolize then solarize on 0.2, see test_pipeline
    expected = process(Image.open(good), {"enable_parabolize": True, "enable_solarize": "true"})
    assert np.array_equal(out, np.asarray(expected))


def test_bad_override_is_reported_with_the_field(tmp_path, capsys):
    good, _, _ = make_inputs(tmp_path)
    assert main([str(good), "--out", str(tmp_path), "--set", "grain_intensity=7"]) == 2
    assert "grain_intensity: '7' is out of range; allowed [0, 1]" in capsys.readouterr().err
    assert main([str(good), "--out", str(tmp_path), "--set", "grain_intensity"]) == 2
    assert "expected FIELD=VALUE" in capsys.readouterr().err


def test_unreadable_preset(tmp_path, capsys):
    good, _, _ = make_inputs(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main([str(good), "--preset", str(bad), "--out", str(tmp_path)]) == 2
    assert f"preset {bad}: cannot read JSON" in capsys.readouterr().err


def test_dissolve_needs_the_second_image(tmp_path, capsys):
    good, _, _ = make_inputs(tmp_path)
    assert main([str(good), "--out", str(tmp_path), "--set", "enable_dissolve=true"]) == 2
    assert "--dissolve-image" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path):
    good, _, _ = make_inputs(tmp_path)
    done = subprocess.run([sys.executable, "-m", "effects", str(good), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "a.png").exists() and "1 written" in done.stderr
