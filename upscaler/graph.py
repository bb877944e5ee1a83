"""Build the AuraSR (GigaGAN ``UnetUpsampler``) ONNX graph directly from a checkpoint.

The graph is written node by node with ``onnx.helper``; no torch is involved.  It computes, for a
static batch of B tiles of T x T pixels (T = ``cfg.input_image_size``)::

    x    = clip(lowres + noise_aug, 0, 1)                      # reference input noise, fed in
    s    = StyleMLP(z / max(|z|, 1e-12))                       # EqualLinear + LeakyReLU(0.2)
    mods = Linear(s) split per ResnetBlock                     # channel mods and kernel logits
    rgb  = clip(UNet(x, mods), 0, 1)                           # [B, C, 4T, 4T] for the real config

Every 3x3 conv inside a ResnetBlock is an adaptive modulated conv with per-sample weights

    W_b = sum_n softmax(logits_b)_n W_n                         # kernel bank W: [n, O, I, 3, 3]
    y_b = conv(x_b, W_b * (1 + m_b)[i] * d_b[o]),   d_b[o] = 1 / sqrt(max(sum_{i,k} (W_b (1 + m_b))^2, 1e-8))

run as ONE grouped Conv with ``group=B`` (batch folded into channels), so B is baked into the
graph.  Because the conv is linear, the ``(1 + m)`` and ``d`` factors are applied either to the
per-sample weights or to the conv input/output, whichever touches fewer values (weights at the
low-resolution levels, activations at the high-resolution ones); both give the same result.

Weights are never embedded (the real model is 2.47 GB, beyond protobuf's 2 GB limit); every
initializer is an external-data tensor of one of two kinds:

* checkpoint tensors that are views into a file-backed ``np.memmap`` (e.g. a memory-mapped
  ``model.safetensors``) reference that file by offset, and onnxruntime memory-maps them itself:
  no copy, session creation in about a second, and the pages stay shared page cache;
* every other array (derived tensors such as pre-scaled weights, or checkpoints held in RAM) is
  returned by :func:`build_model` to be fed with ``SessionOptions.add_external_initializers``
  (onnxruntime copies those).

:func:`session_config` gives the session config entries the model needs (the folder of the
memory-mapped file, and no weight pre-packing).
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
from collections.abc import Iterator, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from upscaler.config import BLOCKS_PER_LEVEL, AuraConfig, check_weights

OPSET = 20
# onnxruntime 1.2x rejects the IR version newer onnx packages write by default.
IR_VERSION = 10
INPUT_NAMES = ("lowres", "z", "noise_aug")
OUTPUT_NAME = "rgb"

# Pre-packing would make onnxruntime keep a second, re-laid-out copy of the kernel banks and the
# modulation matrix (over 2 GB for the real checkpoint).
SESSION_CONFIG = {"session.disable_prepacking": "1"}
# Model metadata key naming the folder of the memory-mapped weight file (see session_config).
EXTERNAL_DATA_DIR = "external_data_dir"

_DEMOD_EPS = 1e-8
_NORM_EPS = 1e-12


class _Builder:
    """Accumulates nodes, embedded shape constants and external weights of one graph."""

    def __init__(self, cfg: AuraConfig, weights: Mapping[str, np.ndarray], batch: int):
        self.cfg, self.src, self.B = cfg, weights, batch
        self.nodes: list[onnx.NodeProto] = []
        self.consts: list[onnx.TensorProto] = []
        self._consts: dict[tuple, str] = {}
        self.external: dict[str, np.ndarray] = {}
        self.placeholders: list[onnx.TensorProto] = []
        self.folders: set[str] = set()
        self._ids = itertools.count()

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        out = f"{op_type.lower()}_{next(self._ids)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs) -> list[str]:
        base = f"{op_type.lower()}_{next(self._ids)}"
        outs = [f"{base}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs

    def const(self, value, dtype=np.int64) -> str:
        a = np.asarray(value, dtype=dtype)
        key = (a.dtype.str, a.shape, a.tobytes())
        if key not in self._consts:
            self._consts[key] = f"const_{next(self._ids)}"
            self.consts.append(onnx.numpy_helper.from_array(a, self._consts[key]))
        return self._consts[key]

    def weight(self, key: str, array: np.ndarray | None = None, suffix: str = "") -> str:
        """Register checkpoint tensor ``key`` (or an array derived from it) as an external
        initializer and return its name."""
        name = key + suffix
        if array is None:
            array = self.src[key]
        where = _file_region(array)
        if where is None:
            array = np.ascontiguousarray(array, dtype=np.float32)
            self.external[name] = array
        self.placeholders.append(_placeholder(name, array.shape, where))
        if where is not None:
            self.folders.add(os.path.dirname(where[0]))
        return name

    def reshape(self, x: str, shape) -> str:
        return self.op("Reshape", x, self.const(shape))


def _file_region(a: np.ndarray) -> tuple[str, int] | None:
    """(real path, byte offset) of ``a``'s data when it is a C-contiguous little-endian float32
    view into a file-backed ``np.memmap``, else None."""
    if a.dtype != np.dtype("<f4") or not a.flags.c_contiguous:
        return None
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not (isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap) and root.filename):
        return None
    start = a.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    if not 0 <= start <= root.nbytes - a.nbytes:
        return None
    return os.path.realpath(root.filename), root.offset + start


def _placeholder(name: str, shape, where: tuple[str, int] | None) -> onnx.TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape,
                    data_location=TensorProto.EXTERNAL)
    if where is None:
        # Never read: the data is supplied with add_external_initializers.
        t.external_data.add(key="location", value="fed-at-session-creation")
    else:
        path, offset = where
        n_bytes = 4 * math.prod(shape)
        for k, v in (("location", os.path.basename(path)), ("offset", offset), ("length", n_bytes)):
            t.external_data.add(key=k, value=str(v))
    return t


def session_config(model: onnx.ModelProto) -> dict[str, str]:
    """Session config entries ``model`` (from :func:`build_model`) needs: :data:`SESSION_CONFIG`
    plus, when weights are memory-mapped from a file, the folder onnxruntime resolves it in."""
    config = dict(SESSION_CONFIG)
    for prop in model.metadata_props:
        if prop.key == EXTERNAL_DATA_DIR:
            config["session.model_external_initializers_file_folder_path"] = prop.value
    return config


def _f32(b: _Builder, key: str) -> np.ndarray:
    return np.asarray(b.src[key], dtype=np.float32)


def _conv(b: _Builder, x: str, key: str, *, k: int, stride: int = 1) -> str:
    pad = k // 2
    return b.op("Conv", x, b.weight(f"{key}.weight"), b.weight(f"{key}.bias"),
                kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def _silu(b: _Builder, x: str) -> str:
    return b.op("Mul", x, b.op("Sigmoid", x))


def _modconv(b: _Builder, x: str, key: str, c_in: int, c_out: int, hw: int,
             mod: str, logits: str) -> str:
    """Adaptive modulated 3x3 conv (see module docstring); x: [B, c_in, hw, hw]."""
    B, n = b.B, b.cfg.num_conv_kernels
    bank = b.weight(key, b.src[key].reshape(n, c_out * c_in * 9))
    w = b.reshape(b.op("MatMul", b.op("Softmax", logits, axis=-1), bank), [B, c_out, c_in, 9])
    gain = b.op("Add", mod, b.const(1.0, np.float32))                        # 1 + m: [B, I]
    # sum_{i,k} (W_b[o,i,k] g_i)^2 = sum_i S[o,i] g_i^2 with S = sum_k W_b^2
    sq = b.op("MatMul", b.op("ReduceSumSquare", w, b.const([3]), keepdims=0),
              b.reshape(b.op("Mul", gain, gain), [B, c_in, 1]))              # [B, O, 1]
    demod = b.op("Reciprocal", b.op("Sqrt", b.op("Max", sq, b.const(_DEMOD_EPS, np.float32))))
    fold_into_weights = 9 * c_out * c_in < (c_in + c_out) * hw * hw
    if fold_into_weights:
        scale = b.op("Mul", demod, b.reshape(gain, [B, 1, c_in]))            # [B, O, I]
        w = b.op("Mul", w, b.reshape(scale, [B, c_out, c_in, 1]))
    else:
        x = b.op("Mul", x, b.reshape(gain, [B, c_in, 1, 1]))
    y = b.op("Conv", b.reshape(x, [1, B * c_in, hw, hw]), b.reshape(w, [B * c_out, c_in, 3, 3]),
             kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=B)
    y = b.reshape(y, [B, c_out, hw, hw])
    if not fold_into_weights:
        y = b.op("Mul", y, b.reshape(demod, [B, c_out, 1, 1]))
    return y


def _resnet_block(b: _Builder, x: str, prefix: str, c_in: int, c_out: int, hw: int,
                  mods: Iterator[str]) -> str:
    """block2(block1(x)) + res_conv(x); each block = modulated conv -> SiLU."""
    h = _silu(b, _modconv(b, x, f"{prefix}.block1.proj.weights", c_in, c_out, hw, next(mods), next(mods)))
    h = _silu(b, _modconv(b, h, f"{prefix}.block2.proj.weights", c_out, c_out, hw, next(mods), next(mods)))
    res = _conv(b, x, f"{prefix}.res_conv", k=1) if c_in != c_out else x
    return b.op("Add", h, res)


def _rmsnorm(b: _Builder, x: str, key: str, c: int) -> str:
    """x / max(|x|_channels, 1e-12) * g * sqrt(c)."""
    norm = b.op("Max", b.op("ReduceL2", x, b.const([1]), keepdims=1), b.const(_NORM_EPS, np.float32))
    g = b.weight(key, _f32(b, key) * np.float32(math.sqrt(c)), suffix=":scaled")
    return b.op("Mul", b.op("Div", x, norm), g)


def _attention(b: _Builder, x: str, prefix: str, c: int, hw: int) -> str:
    """Multi-head softmax self-attention over the hw*hw positions (channel = head*dh + d)."""
    cfg, B = b.cfg, b.B
    heads, dh, n = cfg.self_attn_heads, cfg.self_attn_dim_head, hw * hw
    qkv_w = _f32(b, f"{prefix}.to_qkv.weight").copy()
    qkv_w[: heads * dh] *= np.float32(dh**-0.5)  # fold the 1/sqrt(dh) logit scale into q
    qkv = b.op("Conv", _rmsnorm(b, x, f"{prefix}.norm.g", c),
               b.weight(f"{prefix}.to_qkv.weight", qkv_w, suffix=":qscaled"), kernel_shape=[1, 1])
    q, k, v = b.ops("Split", [b.reshape(qkv, [B, 3 * heads, dh, n])], 3, axis=1, num_outputs=3)  # [B, h, dh, n]
    logits = b.op("MatMul", b.op("Transpose", q, perm=[0, 1, 3, 2]), k)            # [B, h, n, n]
    out = b.op("MatMul", b.op("Softmax", logits, axis=-1), b.op("Transpose", v, perm=[0, 1, 3, 2]))
    out = b.reshape(b.op("Transpose", out, perm=[0, 1, 3, 2]), [B, heads * dh, hw, hw])
    return _conv(b, out, f"{prefix}.to_out", k=1)


def _transformer(b: _Builder, x: str, prefix: str, c: int, hw: int, depth: int) -> str:
    """depth x [x += Attn(RMSNorm(x)); x += FF(x)], FF = RMSNorm -> 1x1 -> GELU(erf) -> 1x1."""
    for j in range(depth):
        layer = f"{prefix}.layers.{j}"
        x = b.op("Add", x, _attention(b, x, f"{layer}.0", c, hw))
        h = _conv(b, _rmsnorm(b, x, f"{layer}.1.0.g", c), f"{layer}.1.1", k=1)
        x = b.op("Add", x, _conv(b, b.op("Gelu", h), f"{layer}.1.3", k=1))
    return x


def _style_modulations(b: _Builder, z: str) -> Iterator[str]:
    """Style MLP then the per-ResnetBlock modulation vectors, in consumption order."""
    s = b.cfg.style_network
    norm = b.op("Max", b.op("ReduceL2", z, b.const([1]), keepdims=1), b.const(_NORM_EPS, np.float32))
    h = b.op("Div", z, norm)
    for j in range(s.depth):
        key = f"style_network.net.{2 * j}"
        lr = np.float32(s.lr_mul)
        w = b.weight(f"{key}.weight", (_f32(b, f"{key}.weight") * lr).T, suffix=":eff")
        bias = b.weight(f"{key}.bias", _f32(b, f"{key}.bias") * lr, suffix=":eff")
        h = b.op("LeakyRelu", b.op("Add", b.op("MatMul", h, w), bias), alpha=0.2)
    mods = b.op("Gemm", h, b.weight("style_to_conv_modulations.weight"),
                b.weight("style_to_conv_modulations.bias"), transB=1)
    sizes = b.cfg.modulation_dims()
    return iter(b.ops("Split", [mods, b.const(sizes)], len(sizes), axis=1))


def build_model(cfg: AuraConfig, weights: Mapping[str, np.ndarray],
                batch: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Build the UnetUpsampler graph for a static batch of ``batch`` tiles.

    Inputs: ``lowres`` [B, C, T, T] in [0, 1]; ``z`` [B, style dim_in] style noise; ``noise_aug``
    [B, C, T, T] input noise already scaled (the reference draws 0.001 * N(0, 1); pass zeros for
    deterministic runs).  Output: ``rgb`` [B, C, image_size, image_size] clamped to [0, 1].

    Returns the model (nothing embedded but shape constants; see the module docstring) and the
    arrays to feed with ``add_external_initializers`` (name -> C-contiguous float32).  Create
    the session with the entries of :func:`session_config` (model); tensors memory-mapped from a
    file are read by onnxruntime from that file, so it must stay in place.
    Raises CheckpointError when ``weights`` does not match ``cfg`` and ValueError for batch < 1
    or weights memory-mapped from files in different folders.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    check_weights(cfg, weights)
    b = _Builder(cfg, weights, batch)
    B, T, C = batch, cfg.input_image_size, cfg.channels

    mods = _style_modulations(b, "z")
    x = b.op("Clip", b.op("Add", "lowres", "noise_aug"), b.const(0.0, np.float32), b.const(1.0, np.float32))
    x = _conv(b, x, "init_conv", k=7)
    hw, skips = T, []
    for i, lv in enumerate(cfg.down_levels()):
        for k in range(BLOCKS_PER_LEVEL):
            x = _resnet_block(b, x, f"downs.{i}.0.{k}", lv.block_in, lv.block_out, hw, mods)
            skips.append(x)
        if lv.attn_depth is not None:
            x = _transformer(b, x, f"downs.{i}.1.0", lv.block_out, hw, lv.attn_depth)
        x = _conv(b, x, f"downs.{i}.1.1", k=3, stride=2)
        hw //= 2

    x = _resnet_block(b, x, "mid_block1", cfg.mid_dim, cfg.mid_dim, hw, mods)
    x = _transformer(b, x, "mid_attn", cfg.mid_dim, hw, cfg.mid_attn_depth)
    x = _resnet_block(b, x, "mid_block2", cfg.mid_dim, cfg.mid_dim, hw, mods)

    skip_scale = b.const(cfg.skip_connect_scale, np.float32)
    for j, lv in enumerate(cfg.up_levels()):
        x = b.op("Resize", x, "", b.const([1, 1, 2, 2], np.float32), mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        hw *= 2
        x = _conv(b, x, f"ups.{j}.1.0.conv", k=3)
        for k in range(BLOCKS_PER_LEVEL):
            if skips:
                x = b.op("Concat", x, b.op("Mul", skips.pop(), skip_scale), axis=1)
            x = _resnet_block(b, x, f"ups.{j}.0.{k}", lv.block_in, lv.block_out, hw, mods)
        if lv.attn_depth is not None:
            x = _transformer(b, x, f"ups.{j}.1.1", lv.block_out, hw, lv.attn_depth)

    x = _resnet_block(b, x, "final_res_block", cfg.dim, cfg.dim, hw, mods)
    rgb = _conv(b, x, "final_to_rgb", k=1)
    b.nodes.append(helper.make_node("Clip", [rgb, b.const(0.0, np.float32), b.const(1.0, np.float32)],
                                    [OUTPUT_NAME], name="clip_output"))

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        b.nodes, "aurasr_unet_upsampler",
        inputs=[helper.make_tensor_value_info("lowres", f32, [B, C, T, T]),
                helper.make_tensor_value_info("z", f32, [B, cfg.style_network.dim_in]),
                helper.make_tensor_value_info("noise_aug", f32, [B, C, T, T])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, f32, [B, C, cfg.image_size, cfg.image_size])],
        initializer=b.consts + b.placeholders,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="upscaler.graph")
    if len(b.folders) > 1:
        raise ValueError(f"weights are memory-mapped from files in several folders {sorted(b.folders)}; "
                         f"onnxruntime resolves external data in one folder only")
    if b.folders:
        helper.set_model_props(model, {EXTERNAL_DATA_DIR: b.folders.pop()})
    return model, b.external
