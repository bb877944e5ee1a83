"""upscaler.upscale end to end: Hub loading (offline HF cache), image modes, errors, caching, providers.

The real code path is used throughout: the tiny real-architecture checkpoint (tests/tiny_aurasr.py) is
laid out as a Hugging Face cache and fetched by the real ``hf_hub_download`` with HF_HUB_OFFLINE=1;
image-mode tests swap in the nearest-x4 probe via ``upscaler.register_model`` so outputs are exact.
"""

import io
import json
import logging
import threading

import httpx
import huggingface_hub
import numpy as np
import pytest
import safetensors.numpy
from hf_cache import REVISION, use_hf_cache, write_hf_cache
from PIL import Image, ImageOps
from tiny_aurasr import random_weights, tiny_config, write_checkpoint
from upscaler_fixtures import probe_model

import upscaler
import upscaler.runtime
import upscaler.weights
from upscaler import CheckpointError, TileModel, WeightsUnavailableError, register_model, upscale
from common.env import ConfigError
from common.errors import InputError
from upscaler.config import AuraConfig

FILES = ("config.json", "model.safetensors")


@pytest.fixture(autouse=True)
def clean_state(monkeypatch):
    """CPU, default batch and limits, Hub-backed checkpoints before and after every test."""
    for name in ("AURASR_BATCH", "AURASR_MAX_INPUT_PIXELS", "AURASR_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AURASR_DEVICE", "cpu")
    yield
    for checkpoint in upscaler.CHECKPOINTS:
        register_model(checkpoint, None)


def checkpoint_files(tmp_path_factory, seed: int) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp(f"tiny{seed}")
    config = tiny_config()
    write_checkpoint(directory, config, random_weights(AuraConfig.from_dict(config), seed))
    return {name: (directory / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """(v1 files, v2 files): the tiny checkpoint with two different weight seeds."""
    return checkpoint_files(tmp_path_factory, 0), checkpoint_files(tmp_path_factory, 1)


@pytest.fixture
def tiny_hub(tmp_path, monkeypatch, tiny_files):
    """An offline HF cache holding fal/AuraSR and fal/AuraSR-v2 as tiny checkpoints."""
    cache = tmp_path / "hub"
    write_hf_cache(cache, "fal/AuraSR", tiny_files[0])
    write_hf_cache(cache, "fal/AuraSR-v2", tiny_files[1])
    use_hf_cache(monkeypatch, cache)
    for checkpoint in upscaler.CHECKPOINTS:
        register_model(checkpoint, None)
    return cache


def photo(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").convert(mode)


def nearest4(image: Image.Image) -> Image.Image:
    return image.resize((4 * image.width, 4 * image.height), Image.Resampling.NEAREST)


# --- tiny real checkpoint through the Hub code path ---------------------------------------------


def test_tiny_checkpoint_is_fetched_from_the_hf_cache_and_upscales(tiny_hub, monkeypatch):
    fetched = []
    real_download = upscaler.weights.hf_hub_download

    def spy(repo, filename, **kwargs):
        path = real_download(repo, filename, **kwargs)
        fetched.append((repo, filename, path))
        return path

    monkeypatch.setattr(upscaler.weights, "hf_hub_download", spy)
    out, timings = upscale(photo(20, 12), seed=1)
    assert [(r, f) for r, f, _ in fetched] == [("fal/AuraSR", "config.json"), ("fal/AuraSR", "model.safetensors")]
    assert all(f"snapshots/{REVISION}/" in path for _, _, path in fetched)
    assert out.size == (80, 48) and out.mode == "RGB"
    pixels = np.asarray(out)
    assert pixels.std() > 5 and len(np.unique(pixels)) > 50  # a real network output, not a constant
    assert set(timings) == {"load", "preprocess", "inference", "postprocess"}
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())


def test_same_seed_same_bytes_other_seed_or_checkpoint_differs(tiny_hub):
    image = photo(17, 9, seed=3)
    a = upscale(image, seed=42)[0].tobytes()
    assert upscale(image, seed=42)[0].tobytes() == a
    assert upscale(image, seed=43)[0].tobytes() != a
    assert upscale(image, seed=42, checkpoint="v2")[0].tobytes() != a


def test_overlapped_mode_progress_and_sessions_reused(tiny_hub, monkeypatch):
    sessions = []
    real_create = upscaler.create_session
    monkeypatch.setattr(upscaler, "create_session", lambda *a: sessions.append(1) or real_create(*a))
    calls = []
    image = photo(20, 12, seed=5)  # T = 8: 3 x 2 tiles, pass 2: 4 x 3
    out, _ = upscale(image, overlapping_tiles=True, seed=0, progress=lambda d, t: calls.append((d, t)))
    assert out.size == (80, 48)
    assert [d for d, _ in calls] == list(range(1, 19)) and {t for _, t in calls} == {18}
    plain = upscale(image, seed=0)[0]
    assert np.abs(np.asarray(out, int) - np.asarray(plain, int)).mean() > 1  # the second pass is blended in
    assert upscale(image, overlapping_tiles=True, seed=0)[0].tobytes() == out.tobytes()
    assert sessions == [1]  # one session for all three requests


def test_batch_size_from_env_gives_the_same_image(tiny_hub, monkeypatch):
    image = photo(20, 12, seed=6)
    one = upscale(image, seed=9)[0]
    monkeypatch.setenv("AURASR_BATCH", "4")
    four = upscale(image, seed=9)[0]
    assert one.size == four.size
    # Different static batches may order float sums differently: allow 1 LSB.
    assert np.abs(np.asarray(one, int) - np.asarray(four, int)).max() <= 1


# --- Hub failures -------------------------------------------------------------------------------


def test_cache_layout_is_what_huggingface_hub_sees(tiny_hub):
    info = huggingface_hub.scan_cache_dir(tiny_hub)
    assert info.warnings == []
    repos = {repo.repo_id: repo for repo in info.repos}
    assert set(repos) == {"fal/AuraSR", "fal/AuraSR-v2"}
    (revision,) = repos["fal/AuraSR"].revisions
    assert revision.commit_hash == REVISION and revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == set(FILES)
    assert all(f.blob_path.parent.name == "blobs" for f in revision.files)


def test_missing_cache_names_repo_file_and_fixes(tmp_path, monkeypatch):
    use_hf_cache(monkeypatch, tmp_path / "empty")
    register_model("v1", None)
    with pytest.raises(WeightsUnavailableError) as err:
        upscale(photo(8, 8))
    msg = str(err.value)
    assert "fal/AuraSR" in msg and "config.json" in msg
    assert "HF_HUB_OFFLINE" in msg and "HF_TOKEN" in msg and "HF_HUB_CACHE" in msg
    assert "hf download fal/AuraSR config.json model.safetensors" in msg


def test_missing_weights_file_names_it(tmp_path, monkeypatch, tiny_files):
    write_hf_cache(tmp_path, "fal/AuraSR-v2", {"config.json": tiny_files[1]["config.json"]})
    use_hf_cache(monkeypatch, tmp_path)
    register_model("v2", None)
    with pytest.raises(WeightsUnavailableError, match=r"model.safetensors of Hugging Face repo fal/AuraSR-v2"):
        upscale(photo(8, 8), checkpoint="v2")


@pytest.mark.parametrize("error", [httpx.ConnectError("connection refused"), PermissionError("read-only cache")])
def test_network_and_disk_failures_become_weights_unavailable(monkeypatch, error):
    def failing_download(repo, filename, **kwargs):
        raise error

    monkeypatch.setattr(upscaler.weights, "hf_hub_download", failing_download)
    expected = rf"cannot get config.json of Hugging Face repo fal/AuraSR-v2 \({type(error).__name__}: {error}\)"
    with pytest.raises(WeightsUnavailableError, match=expected):
        upscaler.weights.load_checkpoint("v2")


def test_download_is_announced_in_the_log(tmp_path, monkeypatch, caplog):
    use_hf_cache(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="upscaler.weights"), pytest.raises(WeightsUnavailableError):
        upscaler.weights.fetch("v1", "model.safetensors")
    assert "Fetching fal/AuraSR/model.safetensors into the Hugging Face cache" in caplog.text


def test_download_progress_is_reported_in_bytes(tmp_path, monkeypatch, tiny_files):
    """A download drives huggingface_hub's progress bar class; ours forwards each update."""
    def downloading(repo, filename, *, revision=None, tqdm_class=None):
        path = tmp_path / filename
        path.write_bytes(tiny_files[0][filename])
        if tqdm_class is not None:
            with tqdm_class(total=path.stat().st_size, disable=True) as bar:
                bar.update(10)
                bar.update(path.stat().st_size - 10)
        return str(path)

    monkeypatch.setattr(upscaler.weights, "hf_hub_download", downloading)
    seen = []
    upscaler.preload("v1", progress=lambda done, total: seen.append((done, total)))
    size = len(tiny_files[0]["model.safetensors"])
    assert seen == [(10, size), (size, size)]  # the weights only; config.json is not reported
    seen.clear()
    upscaler.preload("v1", progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # loaded once per process
    image, _ = upscale(photo(8, 8), seed=0)
    assert image.size == (32, 32)


def test_preload_from_the_cache_reports_nothing_and_serves_upscale(tiny_hub):
    seen = []
    upscaler.preload("v2", progress=lambda *args: seen.append(args))
    assert seen == []
    assert upscale(photo(8, 8), checkpoint="v2", seed=1)[0].tobytes() == \
        upscale(photo(8, 8), checkpoint="v2", seed=1)[0].tobytes()
    with pytest.raises(ValueError, match="checkpoint"):
        upscaler.preload("v3")


def test_truncated_safetensors_is_a_checkpoint_error(tmp_path, monkeypatch, tiny_files):
    files = dict(tiny_files[0])
    files["model.safetensors"] = files["model.safetensors"][:-100]
    write_hf_cache(tmp_path, "fal/AuraSR", files)
    use_hf_cache(monkeypatch, tmp_path)
    register_model("v1", None)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor '.*' .*truncated or corrupt file"):
        upscale(photo(8, 8))


def test_mismatched_checkpoint_lists_the_problem_tensors(tmp_path, monkeypatch, tiny_files):
    weights = safetensors.numpy.load(tiny_files[0]["model.safetensors"])
    del weights["final_to_rgb.bias"]
    weights["mid_block1.block1.proj.weights"] = weights["mid_block1.block1.proj.weights"][:2]
    write_hf_cache(
        tmp_path,
        "fal/AuraSR",
        {"config.json": tiny_files[0]["config.json"], "model.safetensors": safetensors.numpy.save(weights)},
    )
    use_hf_cache(monkeypatch, tmp_path)
    register_model("v1", None)
    with pytest.raises(CheckpointError) as err:
        upscale(photo(8, 8))
    msg = str(err.value)
    assert f"snapshots/{REVISION}/model.safetensors" in msg
    assert "1 missing key(s): final_to_rgb.bias" in msg
    assert "mid_block1.block1.proj.weights: expected (4, 64, 64, 3, 3), got (2, 64, 64, 3, 3)" in msg


def test_invalid_config_json_is_a_checkpoint_error_naming_the_file(tmp_path, monkeypatch, tiny_files):
    config = dict(tiny_config(), input_image_size=12)
    write_hf_cache(
        tmp_path,
        "fal/AuraSR",
        {"config.json": json.dumps(config).encode(), "model.safetensors": tiny_files[0]["model.safetensors"]},
    )
    use_hf_cache(monkeypatch, tmp_path)
    register_model("v1", None)
    with pytest.raises(CheckpointError, match=r"invalid AuraSR config .*config\.json: .*'input_image_size'"):
        upscale(photo(8, 8))


def test_read_safetensors_maps_without_copying(tmp_path):
    weights = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones((4,), np.float32)}
    safetensors.numpy.save_file(weights, str(tmp_path / "w.safetensors"))
    loaded = upscaler.weights.read_safetensors(tmp_path / "w.safetensors")
    assert set(loaded) == {"a", "b"}
    assert np.array_equal(loaded["a"], weights["a"]) and loaded["a"].dtype == np.float32
    assert not loaded["a"].flags.writeable and not loaded["a"].flags.owndata
    assert isinstance(loaded["a"].base.base, np.memmap) or isinstance(loaded["a"].base, np.memmap)


def test_read_safetensors_rejects_other_dtypes_and_garbage(tmp_path):
    safetensors.numpy.save_file({"h": np.ones(3, np.float16)}, str(tmp_path / "h.safetensors"))
    with pytest.raises(CheckpointError, match=r"h\.safetensors: tensor 'h' has dtype F16; only F32 is supported"):
        upscaler.weights.read_safetensors(tmp_path / "h.safetensors")
    (tmp_path / "g.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=r"g\.safetensors is not a safetensors file \(header length"):
        upscaler.weights.read_safetensors(tmp_path / "g.safetensors")


# --- input modes (nearest probe: the output is the input, 4x nearest) ---------------------------


@pytest.fixture
def nearest_probe():
    register_model("v1", probe_model("nearest", tile=8, z_dim=4))


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "CMYK", "1", "YCbCr"])
def test_modes_without_alpha_give_rgb(nearest_probe, mode):
    image = photo(13, 7, mode, seed=2)
    out, _ = upscale(image, seed=0)
    assert out.mode == "RGB" and out.size == (52, 28)
    assert out.tobytes() == nearest4(image.convert("RGB")).tobytes()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_is_kept_and_upscaled_with_lanczos(nearest_probe, mode):
    rgba = photo(13, 7, "RGB", seed=2)
    rgba.putalpha(Image.fromarray(np.random.default_rng(1).integers(0, 256, (7, 13), dtype=np.uint8)))
    image = rgba.convert(mode)
    out, _ = upscale(image, seed=0, overlapping_tiles=True)
    assert out.mode == "RGBA" and out.size == (52, 28)
    as_rgba = image.convert("RGBA")
    assert out.getchannel("A").tobytes() == as_rgba.getchannel("A").resize((52, 28), Image.Resampling.LANCZOS).tobytes()
    colour = np.asarray(out.convert("RGB"), int) - np.asarray(nearest4(as_rgba.convert("RGB")), int)
    assert np.abs(colour).max() <= 1  # overlap blend: 1 LSB


def test_palette_with_transparent_index_gets_alpha(nearest_probe):
    image = photo(9, 9, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    image.info["transparency"] = 0
    out, _ = upscale(image, seed=0)
    assert out.mode == "RGBA"
    alpha = np.asarray(out.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16_bit_grey_is_scaled_not_clipped(nearest_probe, mode):
    values = np.array([[0, 1000, 40000, 65535]], np.uint16)
    image = Image.fromarray(values, "I;16").convert(mode) if mode == "I" else Image.fromarray(values, "I;16")
    out, _ = upscale(image, seed=0)
    assert out.mode == "RGB" and out.size == (16, 4)
    # floor(v / 65535 * 255): 1000 -> 3.89, 40000 -> 155.6
    assert np.asarray(out)[0, ::4, 0].tolist() == [0, 3, 155, 255]
    assert (np.asarray(out) == np.asarray(out)[..., :1]).all()


def test_exif_orientation_is_applied(nearest_probe):
    image = photo(6, 4, seed=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif)
    loaded = Image.open(io.BytesIO(buffer.getvalue()))
    out, _ = upscale(loaded, seed=0)
    upright = ImageOps.exif_transpose(loaded)
    assert upright.size == (4, 6) and out.size == (16, 24)
    assert out.tobytes() == nearest4(upright.convert("RGB")).tobytes()


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upscaling_factor": 2}, "upscaling_factor: 2 is not one of 4"),
        ({"upscaling_factor": True}, "upscaling_factor: True is not one of 4"),
        ({"checkpoint": "v3"}, "checkpoint: 'v3' is not one of 'v1', 'v2'"),
        ({"overlapping_tiles": "maybe"}, "overlapping_tiles: must be true or false, got 'maybe'"),
        ({"seed": -1}, "seed: -1 is out of range; allowed [0, 4294967295]"),
        ({"seed": 1.5}, "seed: must be an integer, got 1.5 (a number with a fraction)"),
    ],
)
def test_bad_arguments_are_validation_errors_naming_the_field(kwargs, message):
    with pytest.raises(upscaler.ValidationError) as err:
        upscale(photo(4, 4), **kwargs)
    assert str(err.value).startswith(message)
    assert err.value.field == next(iter(kwargs))  # the JSON API reports it as the 422's field


def test_non_image_and_empty_image_are_rejected():
    with pytest.raises(TypeError, match="image must be a PIL image; got ndarray"):
        upscale(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match=r"image_url: the image is empty \(0x5 pixels\)") as err:
        upscale(Image.new("RGB", (0, 5)))
    assert err.value.status == 400


def test_too_large_input_is_refused_with_size_cap_and_env_var(monkeypatch):
    monkeypatch.setenv("AURASR_MAX_INPUT_PIXELS", "100")
    assert upscaler.max_input_pixels() == 100
    with pytest.raises(InputError) as err:
        upscale(photo(11, 10))
    assert str(err.value) == (
        "image_url: the image of 11x10 = 110 pixels is larger than the 100-pixel limit of this machine "
        "(set AURASR_MAX_INPUT_PIXELS to change it)"
    )
    assert err.value.status == 413


def test_default_input_cap_follows_available_ram(monkeypatch):
    class Memory:
        available = 80_000_000

    monkeypatch.setattr(upscaler.psutil, "virtual_memory", lambda: Memory)
    assert upscaler.max_input_pixels() == 40_000_000 // 800
    Memory.available = 10**12
    assert upscaler.max_input_pixels() == 512 * 512  # CPU time bound


@pytest.mark.parametrize("name", ["AURASR_MAX_INPUT_PIXELS", "AURASR_BATCH"])
def test_bad_env_values_are_config_errors(monkeypatch, name):
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ConfigError, match=f"{name} must be an integer >= 1, got 'lots'"):
        upscale(photo(4, 4))


# --- caching and threads ---------------------------------------------------------------------


def test_graph_built_once_per_batch_and_shared_by_threads(monkeypatch):
    probe = probe_model("nearest", tile=8, z_dim=4)
    built = []

    def build(batch):
        built.append(batch)
        return probe.build(batch)

    register_model("v2", TileModel(8, 4, build))
    image = photo(11, 5, seed=8)
    expected = nearest4(image).tobytes()
    results = []

    def work():
        results.append(upscale(image, checkpoint="v2", seed=1)[0].tobytes())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
    assert built == [1]
    monkeypatch.setenv("AURASR_BATCH", "3")
    assert upscale(image, checkpoint="v2")[0].tobytes() == expected
    assert built == [1, 3]


# --- providers -------------------------------------------------------------------------------


def test_cpu_forced_by_env_skips_the_cuda_probe(monkeypatch):
    def no_probe():
        raise AssertionError("CUDA probe must not run when AURASR_DEVICE=cpu")

    monkeypatch.setattr(upscaler.runtime, "cuda_available", no_probe)
    assert upscaler.runtime.device() == "cpu"
    assert upscaler.runtime.providers() == ["CPUExecutionProvider"]
    assert upscaler.batch_size() == 1


def test_auto_device_probes_silently_and_falls_back_to_cpu(monkeypatch, capfd):
    monkeypatch.setenv("AURASR_DEVICE", "auto")
    upscaler.runtime.cuda_available.cache_clear()
    # The real probe, whatever this machine has (a loadable CUDA provider or not), prints nothing.
    assert upscaler.runtime.device() == ("cuda" if upscaler.runtime.cuda_available() else "cpu")
    assert capfd.readouterr() == ("", "")
    # Without a CUDA provider (plain onnxruntime, e.g. on macOS) auto means CPU.
    upscaler.runtime.cuda_available.cache_clear()
    monkeypatch.setattr(upscaler.runtime.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert upscaler.runtime.device() == "cpu"
    assert upscaler.runtime.providers() == ["CPUExecutionProvider"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    # onnxruntime's logging is back to normal afterwards: a session still works and logs nothing.
    register_model("v1", probe_model("nearest", tile=8, z_dim=4))
    assert upscale(photo(3, 3))[0].size == (12, 12)
    assert capfd.readouterr() == ("", "")
    upscaler.runtime.cuda_available.cache_clear()  # the next probe is a real one again


def test_cuda_required_but_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(upscaler.runtime, "cuda_available", lambda: False)
    monkeypatch.setenv("AURASR_DEVICE", "cuda")
    with pytest.raises(ConfigError, match="AURASR_DEVICE=cuda but onnxruntime's CUDA provider cannot be loaded"):
        upscaler.runtime.device()
    monkeypatch.setenv("AURASR_DEVICE", "gpu")
    with pytest.raises(ConfigError, match="AURASR_DEVICE='gpu' is not valid; allowed values: auto, cpu, cuda"):
        upscaler.runtime.device()


def test_cuda_device_uses_cuda_provider_and_batch_8(monkeypatch):
    monkeypatch.setattr(upscaler.runtime, "cuda_available", lambda: True)
    monkeypatch.setenv("AURASR_DEVICE", "auto")
    assert upscaler.runtime.providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert upscaler.batch_size() == 8
