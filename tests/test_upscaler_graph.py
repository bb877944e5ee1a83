"""AuraSR config parsing, checkpoint layout checks and the onnx.helper-built graph (no torch)."""

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from safetensors.numpy import load_file

from tiny_aurasr import inputs, random_weights, real_config, run, session, tiny_config, write_checkpoint
from upscaler.config import AuraConfig, CheckpointError, check_weights, expected_shapes
from upscaler.graph import EXTERNAL_DATA_DIR, build_model, session_config


@pytest.fixture(scope="module")
def tiny():
    cfg = AuraConfig.from_dict(tiny_config())
    return cfg, random_weights(cfg, seed=0)


# ---------------------------------------------------------------- config


def test_real_config_parses_with_reference_defaults():
    cfg = AuraConfig.from_dict(real_config())
    assert (cfg.dim, cfg.image_size, cfg.input_image_size, cfg.skip_connect_scale) == (64, 256, 64, 0.4)
    assert cfg.style_network.depth == 4 and cfg.style_network.lr_mul == 0.1
    assert cfg.up_dim_mults == (1, 2, 4, 8, 16) and cfg.down_dim_mults == (4, 8, 16)
    assert cfg.full_attn == (False, False, False, True, True) and cfg.attn_depths == (2, 2, 2, 2, 4)
    assert (cfg.mid_attn_depth, cfg.num_conv_kernels, cfg.self_attn_heads, cfg.self_attn_dim_head) == (4, 4, 8, 64)
    assert cfg.down_dims == (128, 256, 512, 1024) and cfg.up_dims == (64, 64, 128, 256, 512, 1024)


def test_real_config_key_set_and_parameter_count():
    shapes = expected_shapes(AuraConfig.from_dict(real_config()))
    # 268 tensors / 617,554,917 parameters: the reference state dict (HF card "618M params").
    assert len(shapes) == 268
    assert sum(math.prod(s) for s in shapes.values()) == 617_554_917
    # Per ResnetBlock: in + 4 + out + 4, summed by hand over the 18 + 2 + 30 + 1 blocks.
    assert shapes["style_to_conv_modulations.weight"] == (33_048, 512)
    assert shapes["ups.0.0.0.block1.proj.weights"] == (4, 512, 1024, 3, 3)
    assert shapes["ups.0.0.0.res_conv.weight"] == (512, 1024, 1, 1)
    assert "ups.3.0.0.res_conv.weight" not in shapes  # no skip concat at the two top levels
    assert shapes["ups.0.1.0.conv.weight"] == (512, 1024, 3, 3)
    assert shapes["downs.2.1.1.weight"] == (1024, 512, 3, 3)
    assert shapes["mid_attn.layers.3.0.to_qkv.weight"] == (1536, 1024, 1, 1)
    assert shapes["ups.1.1.1.layers.1.1.1.weight"] == (1024, 256, 1, 1)
    assert "ups.1.1.1.layers.2.0.norm.g" not in shapes and "downs.0.1.0.layers.0.0.norm.g" not in shapes


def test_config_overrides_change_the_layout():
    cfg = AuraConfig.from_dict({**tiny_config(), "full_attn": [True, False, False, False, False],
                                "attn_depths": [3, 2, 2, 2, 1], "self_attn_heads": 3,
                                "num_conv_kernels": 2, "style_network": {"dim_in": 16, "dim_out": 8, "depth": 3}})
    shapes = expected_shapes(cfg)
    assert shapes["downs.0.1.0.layers.2.0.to_qkv.weight"] == (3 * 3 * 8, 8, 1, 1)  # downs level 0 attends
    assert shapes["ups.4.1.1.layers.0.0.to_out.weight"] == (4, 24, 1, 1)  # reversed zip: ups level 4
    assert not any(k.startswith("ups.0.1.1.") for k in shapes)
    assert shapes["mid_block1.block1.proj.weights"][0] == 2
    assert shapes["style_network.net.4.weight"] == (8, 8) and shapes["style_network.net.0.weight"] == (8, 16)


@pytest.mark.parametrize("override, message", [
    ({"colour": 1}, "unknown AuraSR config key(s) ['colour']"),
    ({"style_network": {"dim_in": 128, "width": 3}}, "['style_network.width']"),
    ({"input_image_size": 12}, "'input_image_size' must be a power of two divisible by 8 (one halving per down level), got 12"),
    ({"input_image_size": 4, "image_size": 16}, "'input_image_size' must be a power of two divisible by 8 (one halving per down level), got 4"),
    ({"image_size": 64}, "'image_size' must be input_image_size * 2**2 = 32 for these dim mults, got 64"),
    ({"dim": 0}, "'dim' must be an integer >= 1, got 0"),
    ({"dim": True}, "'dim' must be an integer >= 1, got True"),
    ({"dim": 4.0}, "'dim' must be an integer >= 1, got 4.0"),
    ({"num_conv_kernels": 1}, "'num_conv_kernels' must be an integer >= 2, got 1"),
    ({"full_attn": [True, False]}, "'full_attn' must have one entry per up_dim_mults level (5)"),
    ({"full_attn": [1, 0, 0, 1, 1]}, "'full_attn' must be true or false, got 1"),
    ({"attn_depths": "2"}, "'attn_depths' must be a non-empty list of integers"),
    ({"down_dim_mults": [2, 8, 16]}, "encoder widths [8, 8, 32, 64] must equal the decoder widths [8, 16, 32, 64]"),
    ({"down_dim_mults": [1, 2, 4, 8, 16]}, "needs 0 < len(down_dim_mults) < len(up_dim_mults)"),
    ({"init_dim": 8}, "'init_dim' (8) must equal 'dim' (4)"),
    ({"skip_connect_scale": "0.4"}, "'skip_connect_scale' must be a finite number, got '0.4'"),
    ({"style_network": {"dim_text_latent": 8}}, "'style_network.dim_text_latent' must be 0"),
    ({"style_network": [128]}, "'style_network' must be an object"),
])
def test_config_validation_errors(override, message):
    with pytest.raises(ValueError) as info:
        AuraConfig.from_dict({**tiny_config(), **override})
    assert message in str(info.value)


def test_config_requires_size_keys_and_a_mapping():
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['dim', 'input_image_size'\]"):
        AuraConfig.from_dict({"image_size": 256})
    with pytest.raises(ValueError, match="config must be a JSON object, got list"):
        AuraConfig.from_dict([1, 2])


def test_null_skip_scale_means_reference_default():
    assert AuraConfig.from_dict({**tiny_config(), "skip_connect_scale": None}).skip_connect_scale == 2**-0.5


# ---------------------------------------------------------------- check_weights


def test_check_weights_accepts_exact_checkpoint(tiny):
    cfg, weights = tiny
    check_weights(cfg, weights)
    assert len(weights) == 264  # tiny style MLP has 2 layers instead of 4: 4 tensors fewer than 268


def test_check_weights_reports_missing_unexpected_and_shapes(tiny):
    cfg, weights = tiny
    broken = dict(weights)
    del broken["init_conv.bias"]
    broken["extra.weight"] = np.zeros(3, np.float32)
    broken["final_to_rgb.weight"] = np.zeros((3, 5, 1, 1), np.float32)
    with pytest.raises(CheckpointError) as info:
        check_weights(cfg, broken, source="/cache/model.safetensors")
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "checkpoint /cache/model.safetensors does not match" in msg
    assert "1 missing key(s): init_conv.bias" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert "1 wrong shape key(s): final_to_rgb.weight: expected (3, 4, 1, 1), got (3, 5, 1, 1)" in msg


def test_check_weights_truncates_long_lists(tiny):
    cfg, weights = tiny
    partial = {k: v for k, v in weights.items() if not k.startswith("ups.")}
    n_missing = len(weights) - len(partial)
    with pytest.raises(CheckpointError, match=rf"{n_missing} missing key\(s\): ups\.[^;]*\(({n_missing - 5}) more\)"):
        check_weights(cfg, partial)


def test_weights_of_another_config_are_rejected(tiny):
    cfg, weights = tiny
    other = AuraConfig.from_dict({**tiny_config(), "self_attn_heads": 4})
    with pytest.raises(CheckpointError, match=r"20 wrong shape key\(s\): mid_attn.layers.0.0.to_qkv.weight: expected \(96, 64, 1, 1\), got \(48, 64, 1, 1\)"):
        build_model(other, weights, 1)


# ---------------------------------------------------------------- graph


def test_graph_signature_and_no_embedded_weights(tiny):
    cfg, weights = tiny
    model, fed = build_model(cfg, weights, 3)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*inferred.graph.input, *inferred.graph.output]}
    assert dims == {"lowres": [3, 3, 8, 8], "z": [3, 128], "noise_aug": [3, 3, 8, 8], "rgb": [3, 3, 32, 32]}
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert sorted(t.name for t in external) == sorted(fed)
    assert all(not t.raw_data for t in external)
    embedded = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name not in fed]
    assert all(a.dtype == np.int64 or a.size <= 4 for a in embedded)  # shapes, scalars, Resize scales
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in fed.values())
    # one grouped conv per modulated conv: (18 + 2 + 30 + 1) ResnetBlocks x 2 (spec: 102 dynamic convs)
    grouped = [n for n in model.graph.node if n.op_type == "Conv"
               and any(a.name == "group" and a.i == 3 for a in n.attribute)]
    assert len(grouped) == 102


def test_lr_mul_is_prefolded(tiny):
    cfg, weights = tiny
    _, fed = build_model(cfg, weights, 1)
    np.testing.assert_allclose(fed["style_network.net.2.weight:eff"], weights["style_network.net.2.weight"].T * 0.1,
                               rtol=1e-6)
    np.testing.assert_allclose(fed["style_network.net.0.bias:eff"], weights["style_network.net.0.bias"] * 0.1, rtol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_graph_runs_with_output_in_unit_range(tiny, batch):
    cfg, weights = tiny
    lowres, z = inputs(cfg, batch)
    rgb = run(cfg, weights, lowres, z)
    assert rgb.shape == (batch, 3, 32, 32) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    # random_weights keeps outputs mostly unclamped, so comparisons elsewhere are meaningful
    assert np.mean((rgb > 0) & (rgb < 1)) > 0.8 and rgb.std() > 0.05


def test_batch_samples_are_independent(tiny):
    cfg, weights = tiny
    lowres, z = inputs(cfg, 3)
    together = run(cfg, weights, lowres, z)
    single = session(cfg, weights, 1)
    for i in range(3):
        np.testing.assert_allclose(together[i], single(lowres[i:i + 1], z[i:i + 1])[0], atol=1e-5)
    assert np.abs(together[0] - together[1]).max() > 0.05


def test_style_noise_changes_output(tiny):
    cfg, weights = tiny
    lowres, z = inputs(cfg, 1)
    forward = session(cfg, weights, 1)
    assert np.abs(forward(lowres, z) - forward(lowres, -z)).max() > 0.05


def test_noise_aug_is_added_then_clamped(tiny):
    cfg, weights = tiny
    lowres, z = inputs(cfg, 2)
    lowres[:, :, :2] = 1.0  # noise pushes these above 1: must be clamped, like the reference
    noise = np.random.default_rng(5).standard_normal(lowres.shape).astype(np.float32) * 0.05
    forward = session(cfg, weights, 2)
    with_noise = forward(lowres, z, noise)
    np.testing.assert_allclose(with_noise, forward(np.clip(lowres + noise, 0, 1), z), atol=1e-6)
    assert np.abs(with_noise - forward(lowres, z)).max() > 1e-3


@pytest.mark.parametrize("override", [
    {"self_attn_heads": 4, "self_attn_dim_head": 4},
    {"attn_depths": [1, 1, 1, 3, 1], "mid_attn_depth": 1, "full_attn": [True, False, True, False, True]},
    {"num_conv_kernels": 3, "skip_connect_scale": 0.25},
    {"style_network": {"dim_in": 32, "dim_out": 24, "depth": 3, "lr_mul": 0.5}},
    {"dim": 2, "input_image_size": 16, "image_size": 64},
    {"up_dim_mults": [1, 2, 4], "down_dim_mults": [2, 4], "full_attn": [False, True, True],
     "attn_depths": [1, 1, 2], "image_size": 16},
])
def test_config_overrides_build_and_run(override):
    cfg = AuraConfig.from_dict({**tiny_config(), **override})
    weights = random_weights(cfg, seed=2)
    lowres, z = inputs(cfg, 2)
    rgb = run(cfg, weights, lowres, z)
    assert rgb.shape == (2, 3, cfg.image_size, cfg.image_size)
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0 and rgb.std() > 0.01


def test_memory_mapped_weights_are_referenced_not_fed(tiny, tmp_path):
    cfg, weights = tiny
    # a raw weight file, memory-mapped as a loader of model.safetensors does
    path = tmp_path / "weights.bin"
    offsets, total = {}, 16  # odd start offset: references must carry exact byte offsets
    for key, a in weights.items():
        offsets[key] = total
        total += a.nbytes
    out = np.memmap(path, dtype=np.uint8, mode="w+", shape=(total,))
    for key, a in weights.items():
        out[offsets[key]:offsets[key] + a.nbytes] = a.view(np.uint8).ravel()
    out.flush()
    del out
    data = np.memmap(path, dtype=np.uint8, mode="r")
    mapped = {k: data[o:o + a.nbytes].view(np.float32).reshape(a.shape)
              for (k, o), a in zip(offsets.items(), weights.values())}

    model, fed = build_model(cfg, mapped, 2)
    refs = {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL and t.name not in fed}
    assert refs["mid_block1.block1.proj.weights"] == {
        "location": "weights.bin", "offset": str(offsets["mid_block1.block1.proj.weights"]),
        "length": str(weights["mid_block1.block1.proj.weights"].nbytes)}
    assert all(k.endswith((":eff", ":scaled", ":qscaled")) for k in fed)  # only derived tensors are fed
    assert session_config(model)["session.model_external_initializers_file_folder_path"] == str(tmp_path.resolve())
    assert EXTERNAL_DATA_DIR in {p.key for p in model.metadata_props}

    lowres, z = inputs(cfg, 2)
    np.testing.assert_allclose(run(cfg, mapped, lowres, z), run(cfg, weights, lowres, z), atol=1e-6)


def test_checkpoint_files_round_trip(tiny, tmp_path):
    cfg, weights = tiny
    write_checkpoint(tmp_path / "snap", tiny_config(), weights)
    assert json.loads(Path(tmp_path / "snap" / "config.json").read_text()) == tiny_config()
    loaded = load_file(str(tmp_path / "snap" / "model.safetensors"))
    assert loaded.keys() == weights.keys()
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)


def test_batch_must_be_positive(tiny):
    cfg, weights = tiny
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"batch must be an integer >= 1, got {bad!r}"):
            build_model(cfg, weights, bad)
