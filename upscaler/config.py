"""AuraSR (GigaGAN ``UnetUpsampler``) configuration and checkpoint layout.

``config.json`` of the official checkpoints holds the keyword arguments of the reference
``UnetUpsampler`` constructor.  :class:`AuraConfig` mirrors every one of them with the reference
defaults, validates them, and derives the module structure (channel widths per level, the
per-ResnetBlock style-modulation split, the exact state-dict key set) that both the weight
check and the ONNX graph builder walk.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.env import ConfigError

# Hard-coded in the reference UnetUpsampler (not a constructor argument).
BLOCKS_PER_LEVEL = 6
# Hard-coded FeedForward expansion of the reference Transformer.
FF_MULT = 4


class CheckpointError(ConfigError, ValueError):
    """A checkpoint's files are unreadable or do not match the structure implied by its config: a
    deployment problem (the servers answer it with a logged 5xx), never the client's. Also a
    ``ValueError``, as it always was for callers of the upscaler."""


@dataclass(frozen=True)
class StyleNetworkConfig:
    """Keyword arguments of the reference ``StyleGanNetwork`` (the style MLP).

    dim_in: width of the random latent ``z``.
    dim_out: width of the style vector (every hidden layer has this width).
    depth: number of EqualLinear + LeakyReLU(0.2) layers.
    lr_mul: EqualLinear learning-rate multiplier; effective weight and bias are ``lr_mul`` times
        the stored ones.
    dim_text_latent: width of text conditioning concatenated to ``z``; only 0 is supported
        (the checkpoints are unconditional).
    """

    dim_in: int = 128
    dim_out: int = 512
    depth: int = 8
    lr_mul: float = 0.1
    dim_text_latent: int = 0


@dataclass(frozen=True)
class LevelSpec:
    """One encoder or decoder level of the U-Net.

    block_in / block_out: channels into / out of each of its ResnetBlocks.
    resample_in / resample_out: channels of the level's resampling conv (encoder: the stride-2
        conv after the blocks; decoder: the 3x3 conv after the nearest x2 upsample, before them).
    attn_depth: layers of its full-attention Transformer, or None when the level has none.
    """

    block_in: int
    block_out: int
    resample_in: int
    resample_out: int
    attn_depth: int | None


@dataclass(frozen=True)
class AuraConfig:
    """Every ``UnetUpsampler`` constructor argument, with the reference defaults.

    ``dim``, ``image_size`` and ``input_image_size`` have no reference default.  Arguments the
    reference accepts but never uses in its forward pass (``out_dim``, ``resnet_block_groups``,
    ``flash_attn``, ``resize_mode``, ``unconditional``) are kept so any config.json round-trips.
    ``skip_connect_scale=None`` in config.json means the reference default ``2**-0.5``.
    """

    dim: int
    image_size: int
    input_image_size: int
    init_dim: int | None = None
    out_dim: int | None = None
    style_network: StyleNetworkConfig = field(default_factory=StyleNetworkConfig)
    up_dim_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    down_dim_mults: tuple[int, ...] = (4, 8, 16)
    channels: int = 3
    resnet_block_groups: int = 8
    full_attn: tuple[bool, ...] = (False, False, False, True, True)
    flash_attn: bool = True
    self_attn_dim_head: int = 64
    self_attn_heads: int = 8
    attn_depths: tuple[int, ...] = (2, 2, 2, 2, 4)
    mid_attn_depth: int = 4
    num_conv_kernels: int = 4
    resize_mode: str = "bilinear"
    unconditional: bool = True
    skip_connect_scale: float = 2**-0.5

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuraConfig:
        """Parse and validate a ``config.json`` mapping.

        Raises ValueError naming the offending key and what is allowed for unknown keys, missing
        required keys, wrong types and structurally impossible combinations.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"AuraSR config must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown AuraSR config key(s) {unknown}; allowed keys: {names}")
        missing = [k for k in ("dim", "image_size", "input_image_size") if k not in d]
        if missing:
            raise ValueError(f"AuraSR config is missing required key(s) {missing}")

        kw: dict[str, Any] = {}
        for k in ("dim", "image_size", "input_image_size", "channels", "resnet_block_groups",
                  "self_attn_dim_head", "self_attn_heads"):
            if k in d:
                kw[k] = _int(k, d[k], minimum=1)
        for k in ("init_dim", "out_dim"):
            if d.get(k) is not None:
                kw[k] = _int(k, d[k], minimum=1)
        if "mid_attn_depth" in d:
            kw["mid_attn_depth"] = _int("mid_attn_depth", d["mid_attn_depth"], minimum=0)
        if "num_conv_kernels" in d:
            # One kernel disables the adaptive path, which the reference then rejects at run time.
            kw["num_conv_kernels"] = _int("num_conv_kernels", d["num_conv_kernels"], minimum=2)
        for k in ("flash_attn", "unconditional"):
            if k in d:
                kw[k] = _bool(k, d[k])
        if "resize_mode" in d:
            if not isinstance(d["resize_mode"], str):
                raise ValueError(f"AuraSR config 'resize_mode' must be a string, got {d['resize_mode']!r}")
            kw["resize_mode"] = d["resize_mode"]
        if d.get("skip_connect_scale") is not None:
            kw["skip_connect_scale"] = _float("skip_connect_scale", d["skip_connect_scale"])
        for k in ("up_dim_mults", "down_dim_mults", "attn_depths"):
            if k in d:
                kw[k] = _int_tuple(k, d[k], minimum=1 if k.endswith("mults") else 0)
        if "full_attn" in d:
            v = d["full_attn"]
            if not isinstance(v, (list, tuple)):
                raise ValueError(f"AuraSR config 'full_attn' must be a list of booleans, got {v!r}")
            kw["full_attn"] = tuple(_bool("full_attn", x) for x in v)
        if "style_network" in d:
            kw["style_network"] = _style(d["style_network"])
        cfg = cls(**kw)
        cfg._check_structure()
        return cfg

    def _check_structure(self) -> None:
        n_up, n_down = len(self.up_dim_mults), len(self.down_dim_mults)
        if not 0 < n_down < n_up:
            raise ValueError(
                f"AuraSR config needs 0 < len(down_dim_mults) < len(up_dim_mults), got "
                f"down_dim_mults={self.down_dim_mults}, up_dim_mults={self.up_dim_mults}")
        for k in ("full_attn", "attn_depths"):
            if len(getattr(self, k)) != n_up:
                raise ValueError(
                    f"AuraSR config '{k}' must have one entry per up_dim_mults level ({n_up}), "
                    f"got {getattr(self, k)}")
        if self.init_dim is not None and self.init_dim != self.dim:
            raise ValueError(
                f"AuraSR config 'init_dim' ({self.init_dim}) must equal 'dim' ({self.dim}): the "
                f"reference's final ResnetBlock takes 'dim' channels")
        if self.down_dims != self.up_dims[n_up - n_down:]:
            raise ValueError(
                f"AuraSR config down_dim_mults={self.down_dim_mults} does not match "
                f"up_dim_mults={self.up_dim_mults}: encoder widths {list(self.down_dims)} must equal "
                f"the decoder widths {list(self.up_dims[n_up - n_down:])} they connect to")
        t, out = self.input_image_size, self.image_size
        if not _is_power_of_two(t) or t % (2**n_down):
            raise ValueError(
                f"AuraSR config 'input_image_size' must be a power of two divisible by "
                f"{2**n_down} (one halving per down level), got {t}")
        if out != t * 2 ** (n_up - n_down):
            raise ValueError(
                f"AuraSR config 'image_size' must be input_image_size * 2**{n_up - n_down} = "
                f"{t * 2 ** (n_up - n_down)} for these dim mults, got {out}")

    @property
    def up_dims(self) -> tuple[int, ...]:
        """Decoder widths: ``(init_dim, dim*m for m in up_dim_mults)``."""
        return (self.dim, *(self.dim * m for m in self.up_dim_mults))

    @property
    def down_dims(self) -> tuple[int, ...]:
        """Encoder widths, starting at the ``init_conv`` output."""
        first = self.up_dims[len(self.up_dim_mults) - len(self.down_dim_mults)]
        return (first, *(self.dim * m for m in self.down_dim_mults))

    @property
    def mid_dim(self) -> int:
        return self.up_dims[-1]

    @property
    def attn_inner_dim(self) -> int:
        return self.self_attn_heads * self.self_attn_dim_head

    def down_levels(self) -> list[LevelSpec]:
        """Encoder levels; attention follows ``full_attn[i]``/``attn_depths[i]`` (reference zip)."""
        d = self.down_dims
        return [
            LevelSpec(d[i], d[i], d[i], d[i + 1], self.attn_depths[i] if self.full_attn[i] else None)
            for i in range(len(self.down_dim_mults))
        ]

    def up_levels(self) -> list[LevelSpec]:
        """Decoder levels, deepest first; the first len(down) levels concatenate skips."""
        u, n_down = self.up_dims, len(self.down_dim_mults)
        levels = []
        for j, i in enumerate(reversed(range(len(self.up_dim_mults)))):
            out = u[i]
            levels.append(LevelSpec(
                block_in=2 * out if j < n_down else out,
                block_out=out,
                resample_in=u[i + 1],
                resample_out=out,
                attn_depth=self.attn_depths[i] if self.full_attn[i] else None,
            ))
        return levels

    def resnet_blocks(self) -> Iterator[tuple[str, int, int]]:
        """(state-dict prefix, in channels, out channels) of every ResnetBlock in construction
        order, which is also the order the style modulation vector is split in."""
        for i, lv in enumerate(self.down_levels()):
            for k in range(BLOCKS_PER_LEVEL):
                yield f"downs.{i}.0.{k}", lv.block_in, lv.block_out
        yield "mid_block1", self.mid_dim, self.mid_dim
        yield "mid_block2", self.mid_dim, self.mid_dim
        for j, lv in enumerate(self.up_levels()):
            for k in range(BLOCKS_PER_LEVEL):
                yield f"ups.{j}.0.{k}", lv.block_in, lv.block_out
        yield "final_res_block", self.dim, self.dim

    def modulation_dims(self) -> list[int]:
        """Split sizes of ``style_to_conv_modulations``' output: per ResnetBlock
        (block1 channel mod, block1 kernel logits, block2 channel mod, block2 kernel logits)."""
        n = self.num_conv_kernels
        return [s for _, i, o in self.resnet_blocks() for s in (i, n, o, n)]


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _int(key: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"AuraSR config '{key}' must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _float(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"AuraSR config '{key}' must be a finite number, got {v!r}")
    return float(v)


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"AuraSR config '{key}' must be true or false, got {v!r}")
    return v


def _int_tuple(key: str, v: Any, minimum: int) -> tuple[int, ...]:
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError(f"AuraSR config '{key}' must be a non-empty list of integers, got {v!r}")
    return tuple(_int(key, x, minimum) for x in v)


def _style(v: Any) -> StyleNetworkConfig:
    if not isinstance(v, Mapping):
        raise ValueError(f"AuraSR config 'style_network' must be an object, got {v!r}")
    names = [f.name for f in dataclasses.fields(StyleNetworkConfig)]
    unknown = sorted(set(v) - set(names))
    if unknown:
        raise ValueError(f"unknown AuraSR config key(s) {['style_network.' + k for k in unknown]}; "
                         f"allowed style_network keys: {names}")
    kw: dict[str, Any] = {}
    for k in ("dim_in", "dim_out", "depth"):
        if k in v:
            kw[k] = _int(f"style_network.{k}", v[k], minimum=1)
    if "lr_mul" in v:
        kw["lr_mul"] = _float("style_network.lr_mul", v["lr_mul"])
    if v.get("dim_text_latent", 0) != 0:
        raise ValueError(f"AuraSR config 'style_network.dim_text_latent' must be 0 (text-conditioned "
                         f"models are not supported), got {v['dim_text_latent']!r}")
    return StyleNetworkConfig(**kw)


def _transformer_shapes(prefix: str, dim: int, depth: int, inner: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for j in range(depth):
        a, f = f"{prefix}.layers.{j}.0", f"{prefix}.layers.{j}.1"
        shapes.update({
            f"{a}.norm.g": (1, dim, 1, 1),
            f"{a}.attend.scale": (1,),
            f"{a}.to_qkv.weight": (3 * inner, dim, 1, 1),
            f"{a}.to_out.weight": (dim, inner, 1, 1),
            f"{a}.to_out.bias": (dim,),
            f"{f}.0.g": (1, dim, 1, 1),
            f"{f}.1.weight": (FF_MULT * dim, dim, 1, 1),
            f"{f}.1.bias": (FF_MULT * dim,),
            f"{f}.3.weight": (dim, FF_MULT * dim, 1, 1),
            f"{f}.3.bias": (dim,),
        })
    return shapes


def _conv_shapes(prefix: str, c_in: int, c_out: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c_out, c_in, k, k), f"{prefix}.bias": (c_out,)}


def expected_shapes(cfg: AuraConfig) -> dict[str, tuple[int, ...]]:
    """Exact state-dict key set and tensor shapes of ``UnetUpsampler(**cfg)``."""
    s = cfg.style_network
    shapes: dict[str, tuple[int, ...]] = {}
    for j in range(s.depth):
        shapes[f"style_network.net.{2 * j}.weight"] = (s.dim_out, s.dim_in if j == 0 else s.dim_out)
        shapes[f"style_network.net.{2 * j}.bias"] = (s.dim_out,)
    shapes.update(_conv_shapes("init_conv", cfg.channels, cfg.down_dims[0], 7))
    n, inner = cfg.num_conv_kernels, cfg.attn_inner_dim
    for prefix, c_in, c_out in cfg.resnet_blocks():
        shapes[f"{prefix}.block1.proj.weights"] = (n, c_out, c_in, 3, 3)
        shapes[f"{prefix}.block2.proj.weights"] = (n, c_out, c_out, 3, 3)
        if c_in != c_out:
            shapes.update(_conv_shapes(f"{prefix}.res_conv", c_in, c_out, 1))
    for i, lv in enumerate(cfg.down_levels()):
        if lv.attn_depth is not None:
            shapes.update(_transformer_shapes(f"downs.{i}.1.0", lv.block_out, lv.attn_depth, inner))
        shapes.update(_conv_shapes(f"downs.{i}.1.1", lv.resample_in, lv.resample_out, 3))
    shapes.update(_transformer_shapes("mid_attn", cfg.mid_dim, cfg.mid_attn_depth, inner))
    for j, lv in enumerate(cfg.up_levels()):
        shapes.update(_conv_shapes(f"ups.{j}.1.0.conv", lv.resample_in, lv.resample_out, 3))
        if lv.attn_depth is not None:
            shapes.update(_transformer_shapes(f"ups.{j}.1.1", lv.block_out, lv.attn_depth, inner))
    shapes.update(_conv_shapes("final_to_rgb", cfg.dim, cfg.channels, 1))
    shapes["style_to_conv_modulations.weight"] = (sum(cfg.modulation_dims()), s.dim_out)
    shapes["style_to_conv_modulations.bias"] = (sum(cfg.modulation_dims()),)
    return shapes


def check_weights(cfg: AuraConfig, weights: Mapping[str, np.ndarray], source: str = "") -> None:
    """Check that ``weights`` holds exactly the tensors of ``UnetUpsampler(**cfg)``.

    Raises CheckpointError listing missing keys, unexpected keys and shape mismatches (the first
    few of each plus counts), naming ``source`` (checkpoint file or repo) when given.
    """
    expected = expected_shapes(cfg)
    missing = [k for k in expected if k not in weights]
    unexpected = sorted(k for k in weights if k not in expected)
    wrong = [f"{k}: expected {expected[k]}, got {tuple(np.shape(weights[k]))}"
             for k in expected if k in weights and tuple(np.shape(weights[k])) != expected[k]]
    problems = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f", ... ({len(items) - 5} more)" if len(items) > 5 else ""
            problems.append(f"{len(items)} {what} key(s): {', '.join(items[:5])}{more}")
    if problems:
        where = f" {source}" if source else ""
        raise CheckpointError(
            f"AuraSR checkpoint{where} does not match its config ({len(expected)} tensors expected, "
            f"{len(weights)} found): " + "; ".join(problems))
