"""Tiling, batching, blending and uint8 conversion of upscaler.tiling, checked with probe ONNX models.

The probes (tests/upscaler_fixtures.py) run in real onnxruntime sessions from upscaler.runtime, so
what is checked is the whole path the AuraSR graph takes, with a model whose output is known exactly.
"""

import math

import numpy as np
import pytest
from PIL import Image
from upscaler_fixtures import probe_model

from upscaler.runtime import create_session
from upscaler.tiling import (
    NOISE_SCALE,
    blend,
    blend_weights_1d,
    pad_bottom_right,
    tile_counts,
    to_uint8,
    upscale_array,
)

T = 64
Z = 128
SIZES = [(1, 1), (7, 7), (31, 31), (32, 32), (33, 33), (63, 63), (64, 64), (65, 65), (127, 200), (40, 150)]
BATCHES = [1, 3, 8]

_sessions = {}


def runner(kind: str, batch: int, calls: list | None = None):
    """``run`` callable backed by an onnxruntime session of probe ``kind``; records inputs in ``calls``."""
    key = (kind, batch)
    if key not in _sessions:
        _sessions[key] = create_session(*probe_model(kind, T, Z).build(batch))
    session = _sessions[key]

    def run(tiles, z, noise):
        if calls is not None:
            calls.append((tiles.copy(), z.copy(), noise.copy()))
        return session.run(["rgb"], {"lowres": tiles, "z": z, "noise_aug": noise})[0]

    return run


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random 8-bit image as float32 in [0, 1] (``u8 / 255``, as the pipeline reads images)."""
    u8 = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return u8.astype(np.float32) / np.float32(255)


def nearest4(image: np.ndarray) -> np.ndarray:
    return image.repeat(4, axis=0).repeat(4, axis=1)


# --- padding ----------------------------------------------------------------------------------


def test_pad_reflects_without_repeating_the_edge():
    row = np.arange(5, dtype=np.float32).reshape(1, 5, 1)
    padded = pad_bottom_right(row, 8)
    assert padded.shape == (8, 8, 1)
    assert padded[0, :, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    # Rows: a single row reflects onto itself.
    assert (padded == padded[:1]).all()


def test_pad_fallback_for_sides_at_most_half_a_tile_keeps_reflecting():
    # Torch's reflect refuses pad >= n; here the mirror keeps bouncing (triangle wave, period 2(n-1)).
    row = np.array([10, 20, 30], dtype=np.float32).reshape(1, 3, 1)
    assert pad_bottom_right(row, 8)[0, :, 0].tolist() == [10, 20, 30, 20, 10, 20, 30, 20]
    two = np.array([1, 2], dtype=np.float32).reshape(1, 2, 1)
    assert pad_bottom_right(two, 8)[0, :, 0].tolist() == [1, 2, 1, 2, 1, 2, 1, 2]
    one = np.full((1, 1, 3), 0.25, np.float32)
    assert (pad_bottom_right(one, 8) == 0.25).all()


def test_no_padding_on_tile_multiples_and_only_bottom_right():
    image = random_image(64, 128)
    assert np.array_equal(pad_bottom_right(image, 64), image)
    image = random_image(65, 70)
    padded = pad_bottom_right(image, 64)
    assert padded.shape == (128, 128, 3)
    assert np.array_equal(padded[:65, :70], image)
    assert np.array_equal(padded[65, :70], image[63])  # first padded row mirrors row 63, not 64


def test_tile_counts_match_the_reference_figures():
    # docs/decisions.md, Upscaler: pass 1 + pass 2 tiles for 256², 512², 1024², 2048².
    assert tile_counts(256, 256, 64, True) == (16, 25)
    assert tile_counts(512, 512, 64, True) == (64, 81)
    assert tile_counts(1024, 1024, 64, True) == (256, 289)
    assert tile_counts(2048, 2048, 64, True) == (1024, 1089)
    assert tile_counts(65, 1, 64, False) == (2, 0)


# --- blend weights ----------------------------------------------------------------------------


def test_blend_weight_factor_values_by_hand():
    g = blend_weights_1d(256, 256)
    # u = linspace(-1, 1, 256): centre pixels sit at u = ±1/255, edges at ±1; normalised by the peak.
    peak = math.exp(-16 / 255**2)
    assert g[127] == g[128] == 1.0
    assert g[0] == pytest.approx(math.exp(-16) / peak, rel=1e-5)
    u = -1 + 2 * 64 / 255
    assert g[64] == pytest.approx(math.exp(-16 * u * u) / peak, rel=1e-5)
    assert g.dtype == np.float32


def test_blend_weights_periodic_peaks_and_symmetry():
    reg = blend_weights_1d(1024, 256)
    off = blend_weights_1d(1024, 256, 128)
    assert np.array_equal(reg[:256], reg[256:512]) and np.array_equal(reg[:256], reg[768:])
    assert np.array_equal(off[:256], off[512:768])
    assert np.flatnonzero(reg == 1.0).tolist() == [127, 128, 383, 384, 639, 640, 895, 896]
    assert np.flatnonzero(off == 1.0).tolist() == [0, 255, 256, 511, 512, 767, 768, 1023]
    assert np.array_equal(reg[:256], reg[:256][::-1])
    assert np.array_equal(off[:256], np.roll(reg[:256], -128))


def test_blend_normalisation_and_minimum():
    reg = np.outer(blend_weights_1d(512, 256), blend_weights_1d(512, 256))
    off = np.outer(blend_weights_1d(512, 256, 128), blend_weights_1d(512, 256, 128))
    total = reg + off
    # Smallest where both maps are at a tile edge: about 2 * exp(-16).
    assert total.min() == pytest.approx(2.25e-7, rel=0.01)
    assert total.max() == pytest.approx(1.0, abs=1e-6)
    assert np.abs(reg / total + off / total - 1).max() <= 1.2e-7
    # blend() weighs pass 1 by W_reg and pass 2 by W_off.
    ones, zeros = np.ones((512, 512, 1), np.float32), np.zeros((512, 512, 1), np.float32)
    assert np.allclose(blend(ones.copy(), zeros, 256)[..., 0], reg / total, atol=1e-7)


# --- probes through onnxruntime ---------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nearest_probe_is_bit_exact_without_overlap(size, batch):
    image = random_image(*size)
    out = upscale_array(image, runner("nearest", batch), tile=T, batch=batch, z_dim=Z, rng=np.random.default_rng(0))
    assert out.shape == (4 * size[0], 4 * size[1], 3)
    assert np.array_equal(out, nearest4(image))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nearest_probe_with_overlap_matches_to_one_lsb(size, batch):
    image = random_image(*size)
    out = upscale_array(
        image, runner("nearest", batch), tile=T, batch=batch, z_dim=Z, rng=np.random.default_rng(0), overlapped=True
    )
    expected = nearest4(image)
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= 1e-6
    assert np.abs(to_uint8(out).astype(int) - to_uint8(expected)).max() <= 1


def test_overlap_pass_two_is_aligned_with_pass_one():
    # A misaligned pass 2 shows up at tile borders, where W_off dominates: compare there directly.
    image = random_image(130, 70, seed=3)
    out = upscale_array(
        image, runner("nearest", 3), tile=T, batch=3, z_dim=Z, rng=np.random.default_rng(0), overlapped=True
    )
    border = nearest4(image)[[0, 255, 256, 511, 512], :]
    assert np.abs(out[[0, 255, 256, 511, 512], :] - border).max() <= 1e-6


@pytest.mark.parametrize("batch", BATCHES)
def test_tile_mean_probe_places_tiles_row_major(batch):
    image = random_image(150, 200, seed=1)  # 3 x 4 tiles, last row/column padded
    out = upscale_array(image, runner("tile_mean", batch), tile=T, batch=batch, z_dim=Z, rng=np.random.default_rng(0))
    padded = pad_bottom_right(image, T)
    means = padded.reshape(3, T, 4, T, 3).mean(axis=(1, 3))  # [row, col, channel]
    expected = means.repeat(4 * T, axis=0).repeat(4 * T, axis=1)[:600, :800]
    assert np.abs(out - expected).max() <= 1e-6


def test_tile_mean_probe_overlapped_matches_a_direct_reference():
    # Pass 2's half-tile reflect padding only shows through a model that looks across the tile.
    h, w = 70, 100
    image = random_image(h, w, seed=4)
    out = upscale_array(
        image, runner("tile_mean", 3), tile=T, batch=3, z_dim=Z, rng=np.random.default_rng(0), overlapped=True
    )
    padded = pad_bottom_right(image, T)  # 128 x 128
    hp, wp = padded.shape[:2]

    def mirror(i, n):  # torch/numpy reflect index for -n < i < 2n - 1
        return np.where(i < 0, -i, np.where(i >= n, 2 * (n - 1) - i, i))

    half = T // 2
    shifted = padded[mirror(np.arange(-half, hp + half), hp)][:, mirror(np.arange(-half, wp + half), wp)]
    means1 = padded.reshape(2, T, 2, T, 3).mean(axis=(1, 3))
    means2 = shifted.reshape(3, T, 3, T, 3).mean(axis=(1, 3))
    p1 = means1.repeat(4 * T, 0).repeat(4 * T, 1)[: 4 * h, : 4 * w]
    p2 = means2.repeat(4 * T, 0).repeat(4 * T, 1)[4 * half : 4 * half + 4 * h, 4 * half : 4 * half + 4 * w]
    u = np.linspace(-1, 1, 4 * T)
    tile_w = np.exp(-16 * (u[:, None] ** 2 + u[None, :] ** 2))
    tile_w /= tile_w.max()
    w_reg = np.tile(tile_w, (2, 2))[: 4 * h, : 4 * w, None]
    w_off = np.tile(tile_w, (3, 3))[4 * half : 4 * half + 4 * h, 4 * half : 4 * half + 4 * w, None]
    expected = (p1 * w_reg + p2 * w_off) / (w_reg + w_off)
    assert np.abs(out - expected).max() <= 1e-5
    assert np.abs(p1 - p2).max() > 0.01  # the two passes differ, so the blend is really tested


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("overlapped", [False, True])
def test_one_latent_per_tile_in_row_major_order_and_padded_slots_dropped(batch, overlapped):
    h, w = 130, 200  # 3 x 4 = 12 tiles, pass 2: 4 x 5 = 20; 12 and 20 are not multiples of 8 or 3 (20)
    calls = []
    seed = 7
    run = runner("z_echo", batch, calls)
    out = upscale_array(
        random_image(h, w), run, tile=T, batch=batch, z_dim=Z, rng=np.random.default_rng(seed), overlapped=overlapped
    )
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((12, Z), dtype=np.float32)
    assert all(tiles.shape == (batch, 3, T, T) and z.shape == (batch, Z) for tiles, z, _ in calls)
    n1 = -(-12 // batch)
    z_seen = np.concatenate([z for _, z, _ in calls[:n1]])
    assert np.array_equal(z_seen[:12], z1)
    # Padded slots get zero inputs; the z_echo output for them is 0, which no real tile has.
    last_tiles = calls[n1 - 1][0]
    assert (z_seen[12:] == 0).all() and (last_tiles[12 - (n1 - 1) * batch :] == 0).all()
    if not overlapped:
        assert len(calls) == n1
        expected = z1[:, :3].reshape(3, 4, 3).repeat(4 * T, axis=0).repeat(4 * T, axis=1)[: 4 * h, : 4 * w]
        assert np.array_equal(out, expected)
        assert (out != 0).all()
    else:
        assert len(calls) == n1 + -(-20 // batch)


def test_results_do_not_depend_on_batch_size():
    image = random_image(100, 150, seed=2)
    outs = [
        upscale_array(
            image, runner(kind, b), tile=T, batch=b, z_dim=Z, rng=np.random.default_rng(11), overlapped=True
        )
        for kind in ("z_echo", "noise_echo")
        for b in BATCHES
    ]
    for a in outs[1:3]:
        assert np.array_equal(a, outs[0])
    for a in outs[4:]:
        assert np.array_equal(a, outs[3])


@pytest.mark.parametrize("batch", [1, 3])
def test_input_noise_follows_the_documented_draw_order(batch):
    h, w = 70, 130  # 2 x 3 tiles
    seed = 5
    out = upscale_array(
        random_image(h, w), runner("noise_echo", batch), tile=T, batch=batch, z_dim=Z, rng=np.random.default_rng(seed)
    )
    rng = np.random.default_rng(seed)
    rng.standard_normal((6, Z), dtype=np.float32)  # latents of the pass come first
    noise = NOISE_SCALE * rng.standard_normal((6, 3, T, T), dtype=np.float32)
    mosaic = noise.reshape(2, 3, 3, T, T).transpose(0, 3, 1, 4, 2).reshape(2 * T, 3 * T, 3)
    assert np.array_equal(out, nearest4(mosaic)[: 4 * h, : 4 * w])
    assert np.abs(out).max() < 0.01 and out.std() == pytest.approx(0.001, rel=0.05)


@pytest.mark.parametrize("overlapped", [False, True])
def test_progress_counts_tiles_of_both_passes(overlapped):
    calls = []
    upscale_array(
        random_image(130, 200),
        runner("nearest", 3),
        tile=T,
        batch=3,
        z_dim=Z,
        rng=np.random.default_rng(0),
        overlapped=overlapped,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = 12 + (20 if overlapped else 0)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total
    # Pass 1: 12 tiles in batches of 3; pass 2: 20 tiles, the last batch holds 2.
    expected = [3, 6, 9, 12] + ([15, 18, 21, 24, 27, 30, 32] if overlapped else [])
    assert done == expected


def test_wrong_model_output_shape_is_reported():
    def bad(tiles, z, noise):
        return np.zeros((tiles.shape[0], 3, 2 * T, 2 * T), np.float32)

    with pytest.raises(ValueError, match=r"model output shape \(1, 3, 128, 128\) != expected \(1, 3, 256, 256\)"):
        upscale_array(random_image(8, 8), bad, tile=T, batch=1, z_dim=Z, rng=np.random.default_rng(0))


# --- uint8 ------------------------------------------------------------------------------------


def test_to_uint8_truncates_like_the_reference():
    x = np.array([0.0, 0.5, 1.0, 0.99999, 254.9 / 255, -1e-7, 1 + 1e-7, 1 / 255], np.float32)
    # 0.5 * 255 = 127.5 -> 127 (floor, not round); tiny excursions from the blend are clipped.
    out = to_uint8(x)
    assert out.tolist() == [0, 127, 255, 254, 254, 0, 255, 1] and out.dtype == np.uint8


def test_to_uint8_reuses_the_float_canvas_it_is_given():
    canvas = np.full((40, 30, 3), 0.5, np.float32)
    view = canvas[:20, :10]  # the cropped canvas, as upscale_array returns it
    out = to_uint8(view)
    assert not np.shares_memory(out, canvas) and out.shape == (20, 10, 3)
    assert np.all(out == 127)
    assert np.all(canvas[:20, :10] == 127.5) and np.all(canvas[20:] == 0.5)  # scaled in place


# --- parity with the reference implementation ----------------------------------------------


@pytest.mark.parametrize("overlapped", [False, True])
def test_matches_reference_aura_sr_fed_the_same_random_draws(overlapped, monkeypatch):
    """aura_sr 0.0.4 (torch, tiny checkpoint) vs this tiler around the ONNX graph, same z and noise.

    The reference's model inputs are recorded per batch (tiles, ``z``, the ``randn_like`` input
    noise) and replayed into our run callable, which first checks it got exactly the same tiles.
    """
    torch = pytest.importorskip("torch")
    import torchvision_stub

    torchvision_stub.install()
    aura_sr = pytest.importorskip("aura_sr")
    from tiny_aurasr import random_weights, tiny_config

    from upscaler.config import AuraConfig
    from upscaler.graph import build_model

    config = tiny_config()
    cfg = AuraConfig.from_dict(config)
    weights = random_weights(cfg, 0)
    reference = aura_sr.AuraSR(config, device="cpu")
    reference.upsampler.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)

    batches = []  # per reference batch: [tiles, z, raw input noise]

    def record_inputs(module, args, kwargs):
        batches.append([kwargs["lowres_image"].numpy().copy(), kwargs["noise"].numpy().copy()])

    reference.upsampler.register_forward_pre_hook(record_inputs, with_kwargs=True)
    randn_like = torch.randn_like

    def recording_randn_like(x, *args, **kwargs):
        draw = randn_like(x, *args, **kwargs)
        batches[-1].append(draw.numpy().copy())
        return draw

    monkeypatch.setattr(torch, "randn_like", recording_randn_like)
    u8 = np.random.default_rng(3).integers(0, 256, (19, 21, 3), dtype=np.uint8)  # 3 x 3 tiles of 8
    torch.manual_seed(0)
    upscale_ref = reference.upscale_4x_overlapped if overlapped else reference.upscale_4x
    expected = np.asarray(upscale_ref(Image.fromarray(u8), max_batch_size=4))

    session = create_session(*build_model(cfg, weights, 4))
    replay = iter(batches)

    def run(tiles, z, noise):
        ref_tiles, ref_z, ref_noise = next(replay)
        n = len(ref_tiles)
        assert np.array_equal(tiles[:n], ref_tiles)
        z, noise = z.copy(), noise.copy()
        z[:n], noise[:n] = ref_z, ref_noise * 0.001
        return session.run(["rgb"], {"lowres": tiles, "z": z, "noise_aug": noise})[0]

    image = u8.astype(np.float32) / np.float32(255)
    out = upscale_array(image, run, tile=8, batch=4, z_dim=128, rng=np.random.default_rng(0), overlapped=overlapped)
    out = to_uint8(out)
    assert next(replay, None) is None  # every reference batch was replayed
    assert len(batches) == (3 + 4 if overlapped else 3)  # 9 tiles (+16 offset tiles) in batches of 4
    assert out.shape == expected.shape == (76, 84, 3)
    diff = np.abs(out.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
