"""The ONNX graph and the tiled upscaler against the public torch reference (``aura-sr`` 0.0.4).

Optional oracle: needs ``torch`` and ``einops`` plus ``pip install --no-deps aura-sr==0.0.4``;
``torchvision`` is replaced by ``tests/torchvision_stub.py``.  Skipped when any is missing.
"""

import functools

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("einops")
import torchvision_stub  # noqa: E402

torchvision_stub.install()
aura_sr = pytest.importorskip("aura_sr")

import upscaler  # noqa: E402
from tiny_aurasr import inputs, random_weights, run, tiny_config  # noqa: E402
from upscaler.config import AuraConfig  # noqa: E402
from upscaler.graph import build_model  # noqa: E402
from upscaler.tiling import NOISE_SCALE  # noqa: E402


def reference_module(config: dict, weights: dict) -> "torch.nn.Module":
    module = aura_sr.UnetUpsampler(**config).eval()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return module


def reference_forward(monkeypatch, config, weights, lowres, z, unit_noise=None) -> np.ndarray:
    """Reference forward with its in-graph ``randn_like`` input noise replaced by ``unit_noise``
    (zeros when None), output clamped as the reference wrapper does."""
    module = reference_module(config, weights)
    noise = torch.zeros(lowres.shape) if unit_noise is None else torch.from_numpy(unit_noise)
    monkeypatch.setattr(torch, "randn_like", lambda t, **kw: noise.clone())
    with torch.no_grad():
        out = module(torch.from_numpy(lowres), noise=torch.from_numpy(z))
    return out.clamp(0, 1).numpy()


def test_tiny_graph_matches_reference(monkeypatch):
    cfg = AuraConfig.from_dict(tiny_config())
    weights = random_weights(cfg, seed=0)
    lowres, z = inputs(cfg, 3)
    ours = run(cfg, weights, lowres, z)
    ref = reference_forward(monkeypatch, tiny_config(), weights, lowres, z)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert np.mean((ref > 0) & (ref < 1)) > 0.8  # mostly unclamped: the comparison is meaningful


def test_input_noise_matches_reference(monkeypatch):
    cfg = AuraConfig.from_dict(tiny_config())
    weights = random_weights(cfg, seed=3)
    lowres, z = inputs(cfg, 2)
    unit = np.random.default_rng(9).standard_normal(lowres.shape, dtype=np.float32)
    ours = run(cfg, weights, lowres, z, np.float32(0.001) * unit)
    ref = reference_forward(monkeypatch, tiny_config(), weights, lowres, z, unit)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("override", [
    {"self_attn_heads": 4, "self_attn_dim_head": 4},
    {"full_attn": [True, False, True, False, True], "attn_depths": [1, 2, 3, 1, 2], "mid_attn_depth": 2,
     "num_conv_kernels": 3, "skip_connect_scale": 0.3,
     "style_network": {"dim_in": 32, "dim_out": 8, "depth": 3, "lr_mul": 0.5}},
    {"dim": 2, "input_image_size": 16, "image_size": 64, "skip_connect_scale": None},
])
def test_config_overrides_match_reference(monkeypatch, override):
    config = {**tiny_config(), **override}
    cfg = AuraConfig.from_dict(config)
    weights = random_weights(cfg, seed=4)
    lowres, z = inputs(cfg, 2)
    np.testing.assert_allclose(run(cfg, weights, lowres, z),
                               reference_forward(monkeypatch, config, weights, lowres, z), atol=1e-4)


@pytest.fixture
def tiny_upscaler(monkeypatch):
    """The tiny random model served as checkpoint "v1" by ``upscaler.upscale``, batch 8 on CPU."""
    cfg = AuraConfig.from_dict(tiny_config())
    weights = random_weights(cfg, seed=5)
    monkeypatch.setenv("AURASR_DEVICE", "cpu")
    monkeypatch.setenv("AURASR_BATCH", "8")
    upscaler.register_model("v1", upscaler.TileModel(cfg.input_image_size, cfg.style_network.dim_in,
                                                     functools.partial(build_model, cfg, weights)))
    yield cfg, weights
    upscaler.register_model("v1", None)


@pytest.mark.parametrize("overlapped", [False, True])
def test_tiled_upscale_matches_reference(monkeypatch, tiny_upscaler, overlapped):
    cfg, weights = tiny_upscaler
    t, seed, batch = cfg.input_image_size, 11, 8
    h, w = 21, 13  # padded to 24 x 16: 3 x 2 tiles, and 4 x 3 in the shifted pass
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.stack([yy * 12, xx * 19, (yy * xx) % 256], axis=-1) + rng.integers(0, 40, (h, w, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

    # upscaler's draws (upscaler.tiling docstring): per pass, z for all tiles, then noise per batch.
    draws = np.random.default_rng(seed)
    z_queue, noise_queue = [], []
    for rows, cols in [(3, 2), (4, 3)][: 2 if overlapped else 1]:
        z_queue.extend(draws.standard_normal((rows * cols, cfg.style_network.dim_in), dtype=np.float32))
        for start in range(0, rows * cols, batch):
            n = min(batch, rows * cols - start)
            noise_queue.append(draws.standard_normal((n, 3, t, t), dtype=np.float32))

    ref = aura_sr.AuraSR(tiny_config(), device="cpu")
    ref.upsampler.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    ref.upsampler.eval()

    def next_z(*shape, **kw):
        if len(shape) == 1:  # forward's eagerly evaluated default `randn((b, dim))`, discarded
            return torch.zeros(shape[0])
        return torch.from_numpy(np.stack([z_queue.pop(0) for _ in range(shape[0])]))

    def next_noise(x, **kw):
        noise = torch.from_numpy(noise_queue.pop(0))
        assert noise.shape == x.shape  # same batching as upscaler
        return noise

    monkeypatch.setattr(torch, "randn", next_z)
    monkeypatch.setattr(torch, "randn_like", next_noise)
    upscale = ref.upscale_4x_overlapped if overlapped else ref.upscale_4x
    expected = np.asarray(upscale(image, max_batch_size=batch))
    assert not z_queue and not noise_queue  # both sides consumed the same draws
    monkeypatch.undo()

    monkeypatch.setenv("AURASR_DEVICE", "cpu")
    monkeypatch.setenv("AURASR_BATCH", str(batch))
    ours, _ = upscaler.upscale(image, overlapping_tiles=overlapped, checkpoint="v1", seed=seed)
    ours = np.asarray(ours)
    assert ours.shape == expected.shape == (4 * h, 4 * w, 3)
    diff = np.abs(ours.astype(int) - expected.astype(int))
    # floor(x * 255) of floats equal to ~1e-6: a byte may differ by one at a rounding boundary
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.002
    assert expected.std() > 20  # a real image, not a constant
    assert NOISE_SCALE == 0.001
