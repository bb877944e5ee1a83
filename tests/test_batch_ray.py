"""python -m effects --ray on a local Ray: the same outputs, failures, skips and upscaling as the
in-process run, byte for byte (with a seed; see batch.work). One small Ray session for the module:
2 CPUs, one declared GPU (no real one: AURASR_DEVICE=cpu, so --upscale takes the GPU-actor path and
still computes on the CPU), a 100 MB object store, no dashboard; the tiny AuraSR checkpoint comes
from an offline HF cache that the Ray workers inherit through the environment."""
from pathlib import Path

import pytest
from batch_inputs import TREE_FAILURES, TREE_OUTPUTS, picture, tiny_hub, tree

ray = pytest.importorskip("ray")

import upscaler  # noqa: E402
from batch import Settings  # noqa: E402
from batch.on_ray import pool, runtime_env  # noqa: E402
from effects.__main__ import main  # noqa: E402

GRAIN = ["--set", "enable_grain=true", "--set", "grain_intensity=0.8", "--set", "seed=11",
         "--set", "enable_vignette=true"]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray whose workers see the tiny checkpoints as fal/AuraSR(-v2), offline, on CPU."""
    cache = tiny_hub(tmp_path_factory.mktemp("ray-hub") / "hub")
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "AURASR_DEVICE": "cpu",
           "AURASR_MAX_INPUT_PIXELS": "400"}
    with pytest.MonkeyPatch.context() as patch:
        import huggingface_hub.constants

        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AURASR_BATCH", "AURASR_THREADS"):
            patch.delenv(name, raising=False)
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        ray.init(num_cpus=2, num_gpus=1, object_store_memory=100 * 2**20, include_dashboard=False,
                 runtime_env={**runtime_env(), "env_vars": env}, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
            for checkpoint in upscaler.CHECKPOINTS:
                upscaler.register_model(checkpoint, None)


def files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_folder_on_ray_equals_in_process(local_ray, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the Ray workers run elsewhere
    inputs = tree(Path("in"))
    here, there = Path("here"), Path("there")
    assert main([str(inputs), "--out", str(here), "--recursive", *GRAIN]) == 1
    capsys.readouterr()
    (there / "a.png").parent.mkdir(parents=True)
    (there / "a.png").write_bytes(b"finished earlier")
    assert main([str(inputs), "--out", str(there), "--recursive", "--skip-existing", "--ray", *GRAIN]) == 1
    err = capsys.readouterr().err
    assert f"done {len(TREE_OUTPUTS) - 1}, skipped 1, failed {len(TREE_FAILURES)}" in err
    for source, reason in TREE_FAILURES.items():
        assert f"failed: {inputs / source}: {reason}" in err
    assert "Traceback" not in err
    got, want = files(there), files(here)
    assert got.pop("a.png") == b"finished earlier"
    del want["a.png"]
    assert set(got) == set(want) == set(TREE_OUTPUTS.values()) - {"a.png"}
    assert got == want  # byte for byte


def test_upscale_on_ray_equals_in_process(local_ray, tmp_path, capsys):
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        picture(9, 6, seed).save(tmp_path / name)
    picture(30, 30, 3).save(tmp_path / "big.png")
    here, there = tmp_path / "here", tmp_path / "there"
    preset = Path(__file__).resolve().parent.parent / "presets" / "noir.json"
    options = [str(tmp_path), "--upscale", "v1", "--preset", str(preset), *GRAIN]  # local_ray's 400-pixel limit
    assert main([*options, "--out", str(here)]) == 1
    assert main([*options, "--out", str(there), "--ray"]) == 1
    err = capsys.readouterr().err
    assert err.count(f"failed: {tmp_path / 'big.png'}: the image of 30x30 = 900 pixels is larger than") == 2
    assert set(files(there)) == {"a.png", "b.png", "c.png"}
    assert files(there) == files(here)


def test_pool_sizes_from_the_nodes():
    upscale, effects_only = Settings(upscale="v1"), Settings()
    gpu_nodes = [{"CPU": 16.0, "GPU": 2.0}, {"CPU": 16.0, "GPU": 2.0}]
    cpu_nodes = [{"CPU": 8.0}, {"CPU": 4.0}, {"CPU": 0.0}]  # the last: a head node taking no work
    assert pool(gpu_nodes, upscale) == (4, 1, 1)  # one actor per GPU
    assert pool(gpu_nodes, effects_only) == (32, 1, 0)  # effects run on CPUs: one actor per CPU
    assert pool(cpu_nodes, upscale) == (2, 4.0, 0)  # one model per node, all its cores
    assert pool(cpu_nodes, effects_only) == (12, 1, 0)
    assert pool([], effects_only) == (1, 1, 0)
