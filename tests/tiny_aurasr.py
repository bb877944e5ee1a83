"""Test helpers: the tiny AuraSR config, seeded random checkpoints, checkpoint files, one-shot runs.

The tiny config keeps the real topology (all default mults, depths and 4 kernels per conv) but
shrinks every width, so a forward pass takes milliseconds.  ``style_network.dim_in`` stays 128
because the reference wrapper hard-codes that latent width.
"""

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
from safetensors.numpy import save_file

from upscaler.config import AuraConfig, expected_shapes
from upscaler.graph import build_model, session_config


def tiny_config() -> dict:
    """config.json of the tiny test model (about 2.4M parameters, 8x8 -> 32x32 tiles)."""
    return {
        "style_network": {"dim_in": 128, "dim_out": 16, "depth": 2},
        "dim": 4,
        "image_size": 32,
        "input_image_size": 8,
        "self_attn_heads": 2,
        "self_attn_dim_head": 8,
    }


def real_config() -> dict:
    """config.json of the official fal/AuraSR and fal/AuraSR-v2 checkpoints."""
    return {
        "style_network": {"dim_in": 128, "dim_out": 512, "depth": 4},
        "dim": 64,
        "image_size": 256,
        "input_image_size": 64,
        "unconditional": True,
        "skip_connect_scale": 0.4,
    }


def random_weights(cfg: AuraConfig, seed: int) -> dict[str, np.ndarray]:
    """Seeded float32 weights for every tensor of ``cfg``.

    Scales follow the reference initialisations (unit-variance EqualLinear weights, fan-in scaled
    convs, RMSNorm gains near 1) with a small output conv centred on 0.5, so a forward pass gives
    values spread inside [0, 1] rather than clamped at the bounds.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in expected_shapes(cfg).items():
        if key.endswith(".g"):
            a = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        elif key.startswith("style_network.") and key.endswith(".weight"):
            a = rng.standard_normal(shape, dtype=np.float32)
        elif key == "final_to_rgb.weight":
            a = rng.standard_normal(shape, dtype=np.float32) * 0.3 / math.sqrt(shape[1])
        elif key == "final_to_rgb.bias":
            a = np.full(shape, 0.5, dtype=np.float32)
        elif key.endswith((".weight", ".weights")):
            fan_in = math.prod(shape[-3:]) if key.endswith(".weights") else math.prod(shape[1:])
            a = rng.standard_normal(shape, dtype=np.float32)
            a *= np.float32(1 / math.sqrt(fan_in))
        else:  # biases and Attend.scale
            a = 0.1 * rng.standard_normal(shape, dtype=np.float32)
        weights[key] = a.astype(np.float32, copy=False)
    return weights


def write_checkpoint(directory, config: dict, weights: dict[str, np.ndarray]) -> None:
    """Write ``config.json`` and ``model.safetensors`` as in the official HF repos."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    save_file(weights, str(directory / "model.safetensors"))


def session(cfg: AuraConfig, weights, batch: int):
    """CPU session of the graph for ``batch``, as ``forward(lowres, z, noise=None) -> rgb``
    (zero input noise by default)."""
    model, fed = build_model(cfg, weights, batch)
    options = ort.SessionOptions()
    for key, value in session_config(model).items():
        options.add_session_config_entry(key, value)
    if fed:
        options.add_external_initializers(list(fed), [ort.OrtValue.ortvalue_from_numpy(a) for a in fed.values()])
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def forward(lowres: np.ndarray, z: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        noise = np.zeros_like(lowres) if noise is None else noise
        return sess.run(None, {"lowres": lowres, "z": z, "noise_aug": noise})[0]

    return forward


def run(cfg: AuraConfig, weights, lowres: np.ndarray, z: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """Build the graph for ``lowres``' batch and run it once (zero input noise by default)."""
    return session(cfg, weights, lowres.shape[0])(lowres, z, noise)


def inputs(cfg: AuraConfig, batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Seeded tiles in [0, 1] and style latents for ``batch`` samples."""
    rng = np.random.default_rng(seed)
    t = cfg.input_image_size
    return (rng.random((batch, cfg.channels, t, t), dtype=np.float32),
            rng.standard_normal((batch, cfg.style_network.dim_in), dtype=np.float32))
