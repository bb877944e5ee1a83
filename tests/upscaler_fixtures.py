"""Hand-built probe ONNX models with the AuraSR tile-model I/O signature, for tiling and API tests.

Every probe has inputs ``lowres`` [B, 3, T, T], ``z`` [B, Z], ``noise_aug`` [B, 3, T, T] and output
``rgb`` [B, 3, 4T, 4T], like the real graph, so it runs through the same session and tiling code:

* ``nearest``: ``rgb = Resize(lowres, x4, nearest)``, i.e. every input pixel as a 4x4 block.
* ``z_echo``: ``rgb[b, c] = z[b, c]`` for c < 3 (constant tiles), shows which latent each tile got.
* ``noise_echo``: ``rgb = Resize(noise_aug, x4, nearest)``, shows the input noise each tile got.
* ``tile_mean``: ``rgb[b, c] = mean(lowres[b, c])`` (constant tiles), shows where each input tile went.
"""

import onnx
from onnx import TensorProto, helper

from upscaler import TileModel

_F32 = TensorProto.FLOAT


def probe_graph(kind: str, batch: int, tile: int, z_dim: int) -> onnx.ModelProto:
    """One probe (see the module docstring) for a static batch."""
    out = 4 * tile
    consts = [
        helper.make_tensor("scales", _F32, [4], [1, 1, 4, 4]),
        helper.make_tensor("out_shape", TensorProto.INT64, [4], [batch, 3, out, out]),
        helper.make_tensor("z_shape", TensorProto.INT64, [4], [batch, 3, 1, 1]),
        helper.make_tensor("start", TensorProto.INT64, [1], [0]),
        helper.make_tensor("end", TensorProto.INT64, [1], [3]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    resize = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    nodes = {
        "nearest": [helper.make_node("Resize", ["lowres", "", "scales"], ["rgb"], **resize)],
        "noise_echo": [helper.make_node("Resize", ["noise_aug", "", "scales"], ["rgb"], **resize)],
        "z_echo": [
            helper.make_node("Slice", ["z", "start", "end", "axis1"], ["z3"]),
            helper.make_node("Reshape", ["z3", "z_shape"], ["z4"]),
            helper.make_node("Expand", ["z4", "out_shape"], ["rgb"]),
        ],
        "tile_mean": [
            helper.make_node("ReduceMean", ["lowres"], ["mean"], axes=[2, 3], keepdims=1),
            helper.make_node("Expand", ["mean", "out_shape"], ["rgb"]),
        ],
    }[kind]
    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes,
        f"probe_{kind}",
        [
            helper.make_tensor_value_info("lowres", _F32, [batch, 3, tile, tile]),
            helper.make_tensor_value_info("z", _F32, [batch, z_dim]),
            helper.make_tensor_value_info("noise_aug", _F32, [batch, 3, tile, tile]),
        ],
        [helper.make_tensor_value_info("rgb", _F32, [batch, 3, out, out])],
        initializer=[c for c in consts if c.name in used],  # unused ones make onnxruntime warn
    )
    # ReduceMean with an ``axes`` attribute is opset <= 17.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def probe_model(kind: str, tile: int = 64, z_dim: int = 128) -> TileModel:
    """The probe as a :class:`upscaler.TileModel` (no initializers to feed)."""
    return TileModel(tile, z_dim, lambda batch: (probe_graph(kind, batch, tile, z_dim), {}))
