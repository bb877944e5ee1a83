"""AuraSR 4x upscaling on onnxruntime, reproducing fal.ai's ``fal-ai/aura-sr`` endpoint.

Public entry point: :func:`upscale`. Checkpoints ``"v1"`` (``fal/AuraSR``) and ``"v2"``
(``fal/AuraSR-v2``) are downloaded into the Hugging Face cache on first use (see
:mod:`upscaler.weights`); the ONNX graph and the onnxruntime session are built once per
(checkpoint, batch size) and reused by every later request, from any thread.

Environment variables (read per call)
-------------------------------------
AURASR_DEVICE
    ``auto`` (default), ``cpu`` or ``cuda``; see :mod:`upscaler.runtime`.
AURASR_THREADS
    onnxruntime intra-op threads, 0 (default) = one per physical core.
AURASR_BATCH
    Tiles per ``session.run`` (the static batch of the graph). Default 1 on CPU, 8 on CUDA.
AURASR_MAX_INPUT_PIXELS
    Largest accepted input, in pixels (width x height). Default: see :func:`max_input_pixels`.

A value that is not valid raises :class:`common.env.ConfigError` naming the variable (a deployment
problem: the servers answer it with a logged 5xx). The options of :func:`upscale` are declared in
:mod:`upscaler.schema` and checked by :func:`validate`.

Model hook (tests, probes): :func:`register_model` serves a checkpoint name from any
:class:`TileModel` (an ONNX builder with the AuraSR I/O signature) instead of the Hub weights.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import psutil
from PIL import Image

from common.env import ConfigError, env_number
from common.errors import InputError
from common.fields import ValidationError, coerce
from imaging import metadata, to_float_rgb
from upscaler.config import CheckpointError
from upscaler.graph import INPUT_NAMES, OUTPUT_NAME, build_model
from upscaler.runtime import create_session, device
from upscaler.schema import (CHECKPOINT, CHECKPOINTS, FIELDS, OPTIONS, OVERLAPPING_TILES, SEED,
                             UPSCALING_FACTOR, UPSCALING_FACTORS, validate)
from upscaler.tiling import upscale_array, to_uint8
from upscaler.weights import WeightsUnavailableError, load_checkpoint

__all__ = [
    "CHECKPOINTS",
    "FIELDS",
    "OPTIONS",
    "UPSCALING_FACTORS",
    "CheckpointError",
    "ConfigError",
    "TileModel",
    "ValidationError",
    "WeightsUnavailableError",
    "batch_size",
    "load_model",
    "max_input_pixels",
    "preload",
    "register_model",
    "upscale",
    "validate",
]

# Peak working memory per input pixel, overlapped mode: two float32 RGB canvases at 16x the pixels
# (384 B), the two blend weight maps and their sum (192 B), uint8 output and its PIL copy (96 B),
# input copies and alpha (about 60 B); rounded up.
_BYTES_PER_INPUT_PIXEL = 800
# Share of the currently available RAM one request may plan to use.
_RAM_SHARE = 0.5
# Time bound: the real model needs seconds per 64x64 tile on a CPU (about 64 tiles, minutes, at
# 512x512) and milliseconds on a GPU.
_TIME_CAP_PIXELS = {"cpu": 512 * 512, "cuda": 2048 * 2048}


@dataclass(frozen=True)
class TileModel:
    """A 4x tile model as the tiler needs it.

    tile: input tile size T. z_dim: width of the style latent ``z``.
    build: ``build(batch) -> (onnx.ModelProto, initializers)``, a graph with inputs ``lowres``
    [B, 3, T, T], ``z`` [B, z_dim], ``noise_aug`` [B, 3, T, T] and output ``rgb`` [B, 3, 4T, 4T] in [0, 1]
    for a static batch B, plus the arrays to feed as external initializers.
    """

    tile: int
    z_dim: int
    build: Callable[[int], tuple[onnx.ModelProto, dict[str, np.ndarray]]]


def load_model(checkpoint: str, progress: Callable[[int, int], None] | None = None) -> TileModel:
    """The Hub checkpoint as a :class:`TileModel` (weights fetched and checked now, graph built later).

    ``progress(bytes_done, bytes_total)`` follows a download of the weights, if one is needed.
    """
    cfg, weights = load_checkpoint(checkpoint, progress=progress)
    return TileModel(cfg.input_image_size, cfg.style_network.dim_in, functools.partial(build_model, cfg, weights))


_lock = threading.Lock()
_models: dict[str, TileModel] = {}
_sessions: dict[tuple[str, int], ort.InferenceSession] = {}


def register_model(checkpoint: str, model: TileModel | None) -> None:
    """Serve ``checkpoint`` from ``model`` instead of its Hub weights; ``None`` restores the Hub weights.

    Drops the cached sessions of that checkpoint. Meant for tests and probe models.
    """
    coerce(CHECKPOINT, checkpoint)
    with _lock:
        for key in [key for key in _sessions if key[0] == checkpoint]:
            del _sessions[key]
        if model is None:
            _models.pop(checkpoint, None)
        else:
            _models[checkpoint] = model


def preload(checkpoint: str, progress: Callable[[int, int], None] | None = None) -> None:
    """Fetch and check a checkpoint now (no-op when it is loaded or registered), so that a caller can
    show the first ~2.5 GB download with ``progress(bytes_done, bytes_total)`` before upscaling."""
    coerce(CHECKPOINT, checkpoint)
    with _lock:
        if checkpoint not in _models:
            _models[checkpoint] = load_model(checkpoint, progress)


def _session(checkpoint: str, batch: int) -> tuple[TileModel, ort.InferenceSession]:
    # One lock for all: loading is rare and a second request for the same checkpoint must wait for
    # the first load rather than start another 2.5 GB one.
    with _lock:
        model = _models.get(checkpoint)
        if model is None:
            model = _models[checkpoint] = load_model(checkpoint)
        key = (checkpoint, batch)
        if key not in _sessions:
            _sessions[key] = create_session(*model.build(batch))
        return model, _sessions[key]


def batch_size() -> int:
    """Tiles per ``session.run``: ``AURASR_BATCH``, else 8 on CUDA and 1 on CPU."""
    return env_number("AURASR_BATCH", 8 if device() == "cuda" else 1)


def max_input_pixels() -> int:
    """Largest input (width x height, in pixels) :func:`upscale` accepts.

    ``AURASR_MAX_INPUT_PIXELS`` if set; otherwise the smaller of a time bound (512x512 on CPU,
    2048x2048 on CUDA) and what fits in half the currently available RAM at about 800 bytes of
    working memory per input pixel (the overlapped mode's float32 canvases at 16x the pixels).
    """
    ram_cap = int(psutil.virtual_memory().available * _RAM_SHARE) // _BYTES_PER_INPUT_PIXEL
    return env_number("AURASR_MAX_INPUT_PIXELS", min(_TIME_CAP_PIXELS[device()], ram_cap))


def upscale(
    image: Image.Image,
    *,
    upscaling_factor: int = UPSCALING_FACTOR.default,
    overlapping_tiles: bool = OVERLAPPING_TILES.default,
    checkpoint: str = CHECKPOINT.default,
    seed: int | None = SEED.default,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Image.Image, dict]:
    """Upscale ``image`` 4x with AuraSR, as fal's ``fal-ai/aura-sr``.

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode. EXIF orientation is applied first. Alpha (if any) is upscaled separately with
        Lanczos and re-attached, so RGBA/LA/PA/transparent-P inputs give RGBA, everything else RGB.
        The result carries the source's RGB ICC profile and EXIF (:func:`imaging.metadata`).
    upscaling_factor : int
        Must be 4 (fal: "more coming soon").
    overlapping_tiles : bool
        Add a second pass on tiles shifted by half a tile and blend the two (no seams, ~2x time).
    checkpoint : str
        ``"v1"`` (fal/AuraSR) or ``"v2"`` (fal/AuraSR-v2).
    seed : int, optional
        Seeds the ``np.random.Generator`` of the per-tile style latents and input noise
        (``0.001 * N(0, 1)``; draw order in :mod:`upscaler.tiling`). Same seed, same input, same
        batch size and device: same bytes. None draws fresh entropy.
    progress : callable, optional
        ``progress(done_tiles, total_tiles)`` after each batch of tiles (both passes in the total).

    Returns
    -------
    (PIL.Image.Image, dict)
        The upscaled image (4x width and height) and timings in seconds: ``load`` (checkpoint, graph and
        session; ~0 once cached), ``preprocess``, ``inference`` (tiling and onnxruntime), ``postprocess``.

    Raises
    ------
    ValidationError
        Bad ``upscaling_factor``, ``checkpoint``, ``overlapping_tiles`` or ``seed`` (the checks of
        :func:`validate`, field-named).
    InputError
        ``image`` empty (400) or larger than :func:`max_input_pixels` (413), as field ``image_url``.
    TypeError
        ``image`` is not a PIL image.
    WeightsUnavailableError
        The checkpoint is neither cached nor downloadable.
    CheckpointError, ConfigError
        The checkpoint files are corrupt or do not match their config; an ``AURASR_*`` variable is
        not valid (both are deployment problems, :class:`CheckpointError` is a :class:`ConfigError`).
    """
    options = validate({"upscaling_factor": upscaling_factor, "overlapping_tiles": overlapping_tiles,
                        "checkpoint": checkpoint, "seed": seed})
    overlapping_tiles, checkpoint, seed = (options[k] for k in ("overlapping_tiles", "checkpoint", "seed"))
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image; got {type(image).__name__}")
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError("image_url", f"the image is empty ({width}x{height} pixels)", 400)
    cap = max_input_pixels()
    if width * height > cap:
        raise InputError(
            "image_url", f"the image of {width}x{height} = {width * height} pixels is larger than the "
            f"{cap}-pixel limit of this machine (set AURASR_MAX_INPUT_PIXELS to change it)", 413)

    t0 = time.perf_counter()
    batch = batch_size()
    model, session = _session(checkpoint, batch)
    t1 = time.perf_counter()
    rgb, alpha = to_float_rgb(image)
    t2 = time.perf_counter()

    def run(tiles: np.ndarray, z: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], dict(zip(INPUT_NAMES, (tiles, z, noise))))[0]

    out = upscale_array(
        rgb,
        run,
        tile=model.tile,
        batch=batch,
        z_dim=model.z_dim,
        rng=np.random.default_rng(seed),
        overlapped=overlapping_tiles,
        progress=progress,
    )
    t3 = time.perf_counter()
    result = Image.fromarray(to_uint8(out), "RGB")
    if alpha is not None:
        result.putalpha(Image.fromarray(alpha).resize(result.size, Image.Resampling.LANCZOS))
    result.info.update(metadata(image))
    t4 = time.perf_counter()
    return result, {"load": t1 - t0, "preprocess": t2 - t1, "inference": t3 - t2, "postprocess": t4 - t3}
