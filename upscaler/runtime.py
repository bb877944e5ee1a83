"""onnxruntime sessions for the AuraSR graph: provider selection and session creation.

Environment variables
---------------------
AURASR_DEVICE
    ``auto`` (default): use CUDA when onnxruntime-gpu's CUDA provider actually loads on this machine,
    otherwise CPU, without printing onnxruntime's loader errors. ``cpu``: always CPU (skips the probe).
    ``cuda``: require CUDA; raises ``ConfigError`` if the provider cannot be loaded.
AURASR_THREADS
    Intra-op threads for onnxruntime. Default 0 lets onnxruntime use one thread per physical core.

A value that is not valid raises :class:`common.env.ConfigError` naming the variable.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from common.env import ConfigError, env_number
from upscaler.graph import session_config

DEVICES = ("auto", "cpu", "cuda")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
# onnxruntime's default logger severity (WARNING); there is no getter to save and restore it.
_ORT_DEFAULT_SEVERITY = 2


def _probe_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "cuda_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    # IR 8 / opset 17: old enough for every onnxruntime(-gpu) release we can meet.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


@functools.cache
def cuda_available() -> bool:
    """Whether the CUDA execution provider really loads here (probed once per process).

    onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even when the CUDA/cuDNN libraries or
    the GPU are missing, and only fails (loudly, on stderr) when a session is created. So a one-node
    session is created with the default logger silenced and the providers it actually got are checked.
    """
    if _CUDA not in ort.get_available_providers():
        return False
    ort.set_default_logger_severity(4)
    try:
        session = ort.InferenceSession(_probe_model(), providers=[_CUDA, _CPU])
        return _CUDA in session.get_providers()
    except Exception:  # any loader failure just means "no CUDA"
        return False
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)


def device() -> str:
    """Device the sessions run on, ``"cuda"`` or ``"cpu"``, from ``AURASR_DEVICE`` and the CUDA probe."""
    wanted = os.environ.get("AURASR_DEVICE", "auto").strip().lower() or "auto"
    if wanted not in DEVICES:
        raise ConfigError(f"AURASR_DEVICE={wanted!r} is not valid; allowed values: {', '.join(DEVICES)}")
    if wanted == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if wanted == "cuda":
        raise ConfigError(
            "AURASR_DEVICE=cuda but onnxruntime's CUDA provider cannot be loaded "
            "(needs onnxruntime-gpu with matching CUDA/cuDNN libraries and a GPU); "
            "unset AURASR_DEVICE or set it to cpu"
        )
    return "cpu"


def providers() -> list[str]:
    """onnxruntime provider list for :func:`device` (CPU is always the fallback)."""
    return [_CUDA, _CPU] if device() == "cuda" else [_CPU]


def create_session(model: onnx.ModelProto, initializers: dict[str, np.ndarray]) -> ort.InferenceSession:
    """Create an inference session for ``model`` whose weights are fed as external initializers.

    Parameters
    ----------
    model : onnx.ModelProto
        Graph whose large initializers are external data (keeps the proto under 2 GB): either
        references into a memory-mapped weight file, which onnxruntime maps itself, or placeholders
        fed from ``initializers``.
    initializers : dict of str to ndarray
        Arrays for the placeholders, by initializer name, C-contiguous. They are referenced from the
        returned session (``session.aurasr_initializers``) so they live as long as the session does.

    Returns
    -------
    onnxruntime.InferenceSession
        Session on the providers from :func:`providers`, all graph optimisations on, plus the entries
        of ``upscaler.graph.session_config(model)`` (weight file folder, no pre-packing).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = env_number("AURASR_THREADS", 0, minimum=0)  # 0 = auto
    options.inter_op_num_threads = 1
    chosen = providers()
    # onnxruntime's CPU arena makes batch-1 runs ~20% faster (per-sample conv weights are reused
    # from it), but at larger batches it keeps every transient peak reserved for good: 1.8x the
    # weights in RSS at batch 4, 1.45x without it.
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    options.enable_cpu_mem_arena = chosen != [_CPU] or batch == 1
    for key, value in session_config(model).items():
        options.add_session_config_entry(key, value)
    names = list(initializers)
    arrays = [np.ascontiguousarray(initializers[name]) for name in names]
    values = [ort.OrtValue.ortvalue_from_numpy(array) for array in arrays]
    if names:
        options.add_external_initializers(names, values)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=chosen)
    session.aurasr_initializers = (arrays, values)
    return session
