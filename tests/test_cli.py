"""python -m effects in-process: files and folders, --recursive, naming and collisions, non-images
skipped, per-file failures without tracebacks, --skip-existing and atomic writes, --set/--preset,
--upscale with the tiny AuraSR checkpoint from an offline HF cache, option errors."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from batch_inputs import TOP_LEVEL, TREE_FAILURES, TREE_OUTPUTS, picture, tiny_hub, tree
from hf_cache import use_hf_cache
from PIL import Image, ImageCms

import batch.work
import upscaler
from effects import process
from effects.__main__ import main
from imaging import decode_image

ROOT = Path(__file__).resolve().parent.parent
GRAIN = ["--set", "enable_grain=true", "--set", "grain_intensity=0.8", "--set", "seed=7"]


def expected(source: Path, params: dict) -> np.ndarray:
    """What the API gives for this file and request body."""
    with warnings.catch_warnings():  # badexif.jpg
        warnings.simplefilter("ignore")
        image, _ = decode_image(source.read_bytes(), field="x")
    return np.asarray(process(image, params))


def outputs(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    return tree(tmp_path / "in")


def test_folder_processes_its_images_and_skips_non_images(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(inputs), "--out", str(out), *GRAIN]) == 1
    err = capsys.readouterr().err
    assert outputs(out) == set(TOP_LEVEL.values())  # no subfolders, no notes.txt / .DS_Store output
    for source, target in TOP_LEVEL.items():
        params = {"enable_grain": True, "grain_intensity": 0.8, "seed": 7}
        assert np.array_equal(np.asarray(Image.open(out / target)), expected(inputs / source, params)), source
    for source, reason in TREE_FAILURES.items():
        assert f"failed: {inputs / source}: {reason}" in err
    assert "notes.txt" not in err and "DS_Store" not in err and "Traceback" not in err
    assert f"done {len(TOP_LEVEL)}, skipped 0, failed {len(TREE_FAILURES)} in " in err
    assert "files/s" in err and "file/s" in err  # the summary, and tqdm's throughput


def test_recursive_mirrors_the_tree_and_keeps_colliding_names_apart(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(inputs), "--out", str(out), "--recursive", "--set", "enable_solarize=true"]) == 1
    assert outputs(out) == set(TREE_OUTPUTS.values())
    for source, target in TREE_OUTPUTS.items():
        assert np.array_equal(np.asarray(Image.open(out / target)),
                              expected(inputs / source, {"enable_solarize": True})), source
    assert f"done {len(TREE_OUTPUTS)}, skipped 0, failed {len(TREE_FAILURES)}" in capsys.readouterr().err


def test_output_folder_inside_the_input_is_not_walked(inputs, capsys):
    out = inputs / "sub" / "out"
    assert main([str(inputs / "sub"), "--out", str(out), "--recursive"]) == 0
    main([str(inputs / "sub"), "--out", str(out), "--recursive"])  # a second run sees the same inputs
    assert outputs(out) == {"x.jpg.png", "x.png.png", "deep/y.png"}
    assert "done 3, skipped 0, failed 0" in capsys.readouterr().err


def test_same_name_from_two_places_fails_without_overwriting(tmp_path, capsys):
    for folder, seed in (("one", 1), ("two", 2)):
        (tmp_path / folder).mkdir()
        picture(4, 4, seed).save(tmp_path / folder / "x.png")
    code = main([str(tmp_path / "one" / "x.png"), str(tmp_path / "two" / "x.png"),
                 str(tmp_path / "one"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "out" / "x.png").exists()
    assert f"failed: {tmp_path / 'one' / 'x.png'}: another input has the same output name (x.png)" in err
    assert "done 0, skipped 0, failed 2" in err  # one/x.png named twice counts once


def test_a_folder_without_images_says_so(tmp_path, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    picture(4, 4, 0).save(tmp_path / "in" / "sub" / "a.png")
    assert main([str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "nothing to do: no images in the inputs" in err and "done 0, skipped 0, failed 0" in err


def test_an_output_never_replaces_its_input(tmp_path, capsys):
    picture(5, 4, 0).save(tmp_path / "x.png")
    picture(5, 4, 1).save(tmp_path / "y.jpg")
    before = (tmp_path / "x.png").read_bytes()
    assert main([str(tmp_path), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"failed: {tmp_path / 'x.png'}: the output would replace this input; choose another --out" in err
    assert (tmp_path / "x.png").read_bytes() == before and (tmp_path / "y.png").exists()


def test_named_files_and_missing_inputs(tmp_path, capsys):
    good = tmp_path / "a.png"
    picture(5, 4, 0).save(good)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code = main([str(good), str(text), str(tmp_path / "gone.jpg"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and outputs(tmp_path / "o") == {"a.png"}
    assert f"failed: {text}: the data is not an image in a supported format" in err  # named, so reported
    assert f"failed: {tmp_path / 'gone.jpg'}: no such file or folder" in err
    assert "done 1, skipped 0, failed 2" in err


def test_damaged_exif_is_processed_with_a_note(inputs, tmp_path, capsys):
    main([str(inputs / "badexif.jpg"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert (tmp_path / "o" / "badexif.png").exists() and "done 1, skipped 0, failed 0" in err
    assert "note: " in err and "decoder warning, the image was still read: Truncated File Read" in err and "Traceback" not in err


def test_outputs_keep_the_profile_and_exif_upright(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "TestCam", 6  # Make, orientation: rotate 90° clockwise to view
    picture(8, 6, 0).save(tmp_path / "cam.jpg", quality=95, icc_profile=icc, exif=exif.tobytes())
    assert main([str(tmp_path / "cam.jpg"), "--out", str(tmp_path / "o"), "--set", "enable_solarize=true"]) == 0
    with Image.open(tmp_path / "o" / "cam.png") as out:
        assert out.size == (6, 8)  # upright
        assert out.info["icc_profile"] == icc
        assert out.getexif()[0x010F] == "TestCam" and out.getexif().get(0x0112, 1) == 1


def test_skip_existing_resumes_without_rewriting(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"finished earlier")
    (out / ".photo.png.0123456789ab.partial").write_bytes(b"an interrupted write")
    assert main([str(inputs), "--out", str(out), "--skip-existing"]) == 1
    assert (out / "a.png").read_bytes() == b"finished earlier"
    assert Image.open(out / "photo.png").size == (9, 7)  # a leftover partial file is not an output
    assert f"done {len(TOP_LEVEL) - 1}, skipped 1, failed" in capsys.readouterr().err
    assert main([str(inputs), "--out", str(out)]) == 1  # without the flag: rewritten
    assert Image.open(out / "a.png").size == (12, 10)


def test_an_interrupted_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch.work.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch.work.write_atomic(tmp_path / "o" / "x.png", lambda file: file.write(b"data"))
    assert list((tmp_path / "o").iterdir()) == []


def test_unwritable_output_is_a_per_file_failure(tmp_path, capsys):
    good = tmp_path / "a.png"
    picture(5, 4, 0).save(good)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").mkdir()  # a folder where the file should go
    assert main([str(good), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"failed: {good}: cannot write the output: Is a directory ({tmp_path / 'out' / 'a.png'})" in err and "Traceback" not in err


def test_preset_and_override(tmp_path, capsys):
    good = tmp_path / "a.png"
    Image.new("RGB", (5, 4), (51, 51, 51)).save(good)
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"enable_parabolize": True}))
    code = main([str(good), "--preset", str(preset), "--out", str(tmp_path / "out"),
                 "--set", "enable_solarize=true"])
    assert code == 0
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.all(out == 105)  # parabolize then solarize on 0.2, see test_pipeline


def test_bad_options_are_reported_before_any_work(tmp_path, capsys):
    good = tmp_path / "a.png"
    picture(5, 4, 0).save(good)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = str(tmp_path / "o")
    cases = [
        (["--set", "grain_intensity=7"], "grain_intensity: '7' is out of range; allowed [0, 1]"),
        (["--set", "grain_intensity"], "expected FIELD=VALUE"),
        (["--preset", str(bad)], f"preset {bad}: cannot read JSON"),
        (["--set", "enable_dissolve=true"], "--dissolve-image"),
        (["--set", "enable_dissolve=true", "--dissolve-image", str(bad)],
         "--dissolve-image: the data is not an image in a supported format"),
        (["--upscale", "v3"], "--upscale: checkpoint: 'v3' is not one of 'v1', 'v2'"),
        (["--overlapping-tiles"], "--overlapping-tiles only applies with --upscale"),
    ]
    for options, message in cases:
        assert main([str(good), "--out", out, *options]) == 2, options
        assert message in capsys.readouterr().err, options
    assert not Path(out).exists()


def test_dissolve_with_the_second_image(tmp_path):
    good, second = tmp_path / "a.png", tmp_path / "b.png"
    picture(6, 5, 0).save(good)
    picture(3, 3, 1).save(second)
    assert main([str(good), "--out", str(tmp_path / "o"), "--dissolve-image", str(second),
                 "--set", "enable_dissolve=true", "--set", "seed=3"]) == 0
    params = {"enable_dissolve": True, "seed": 3}
    want = process(Image.open(good), params, dissolve_image=Image.open(second))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), np.asarray(want))


def test_ray_missing_is_a_clear_message(tmp_path, capsys, monkeypatch):
    good = tmp_path / "a.png"
    picture(5, 4, 0).save(good)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main([str(good), "--out", str(tmp_path / "o"), "--ray"]) == 2
    assert "error: --ray needs Ray: pip install -r requirements-ray.txt" in capsys.readouterr().err


# --- --upscale: the tiny real-architecture checkpoint through the real Hub code path -------------


@pytest.fixture
def tiny_upscaler(tmp_path, monkeypatch):
    use_hf_cache(monkeypatch, tiny_hub(tmp_path / "hub"))
    for name in ("AURASR_BATCH", "AURASR_MAX_INPUT_PIXELS", "AURASR_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AURASR_DEVICE", "cpu")
    for checkpoint in upscaler.CHECKPOINTS:
        upscaler.register_model(checkpoint, None)
    yield
    for checkpoint in upscaler.CHECKPOINTS:
        upscaler.register_model(checkpoint, None)


def test_upscale_after_the_effects_loads_the_model_once(tmp_path, tiny_upscaler, monkeypatch, capsys):
    for name, seed in (("a.png", 0), ("b.png", 1)):
        picture(10, 6, seed).save(tmp_path / name)
    loads = []
    real_load = upscaler.load_model
    monkeypatch.setattr(upscaler, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    out = tmp_path / "out"
    code = main([str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out), "--upscale", "v2",
                 "--overlapping-tiles", *GRAIN])
    assert code == 0, capsys.readouterr().err
    assert [args[0] for args in loads] == ["v2"]  # once for both files
    params = {"enable_grain": True, "grain_intensity": 0.8, "seed": 7}
    for name in ("a.png", "b.png"):
        effected = process(Image.open(tmp_path / name), params)
        want, _ = upscaler.upscale(effected, checkpoint="v2", overlapping_tiles=True, seed=7)
        got = Image.open(out / name)
        assert got.size == (40, 24)
        assert np.array_equal(np.asarray(got), np.asarray(want)), name


def test_upscale_limit_is_a_per_file_error(tmp_path, tiny_upscaler, monkeypatch, capsys):
    picture(10, 6, 0).save(tmp_path / "small.png")
    picture(20, 20, 1).save(tmp_path / "big.png")
    monkeypatch.setenv("AURASR_MAX_INPUT_PIXELS", "100")
    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--upscale", "v1"]) == 1
    err = capsys.readouterr().err
    assert (f"failed: {tmp_path / 'big.png'}: the image of 20x20 = 400 pixels is larger than the 100-pixel "
            "limit of this machine (set AURASR_MAX_INPUT_PIXELS to change it)") in err
    assert Image.open(tmp_path / "out" / "small.png").size == (40, 24)


def test_upscale_without_weights_stops_before_any_file(tmp_path, monkeypatch, capsys):
    use_hf_cache(monkeypatch, tmp_path / "empty-hub")
    upscaler.register_model("v1", None)
    picture(4, 4, 0).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--upscale", "v1"]) == 2
    err = capsys.readouterr().err
    assert "error: upscaler v1: " in err and "Traceback" not in err
    assert not (tmp_path / "out" / "a.png").exists()


def test_runs_as_a_module(inputs, tmp_path):
    done = subprocess.run([sys.executable, "-m", "effects", str(inputs), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 1
    assert f"done {len(TOP_LEVEL)}, skipped 0, failed {len(TREE_FAILURES)}" in done.stderr
    assert "Traceback" not in done.stderr


def test_plain_effects_runs_never_import_the_upscaler_or_ray(tmp_path):
    picture(5, 4, 0).save(tmp_path / "a.png")
    script = ("import sys; from effects.__main__ import main; "
              f"code = main([{str(tmp_path / 'a.png')!r}, '--out', {str(tmp_path / 'o')!r}]); "
              "print(code, sorted(m for m in ('upscaler', 'onnxruntime', 'ray') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.stdout.strip() == "0 []", done.stderr


def test_ctrl_c_ends_with_the_summary_and_a_resume_hint(inputs, tmp_path, monkeypatch, capsys):
    real = batch.work.Worker.__call__
    calls = []

    def interrupted_at_the_third(self, *job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *job)

    monkeypatch.setattr(batch.work.Worker, "__call__", interrupted_at_the_third)
    assert main([str(inputs), "--out", str(tmp_path / "out"), "--set", "seed=1"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: finished outputs are complete; run again with --skip-existing to resume" in err
    assert "done 2, skipped 0, failed 0" in err  # the two files before the interruption
    assert "Traceback" not in err and not list((tmp_path / "out").glob(".*.partial"))
    monkeypatch.setattr(batch.work.Worker, "__call__", real)
    assert main([str(inputs), "--out", str(tmp_path / "out"), "--skip-existing"]) == 1
    assert f"done {len(TOP_LEVEL) - 2}, skipped 2, failed {len(TREE_FAILURES)}" in capsys.readouterr().err
