"""AuraSR checkpoints from the Hugging Face Hub: download (or find in the cache), read, validate.

Only ``config.json`` and ``model.safetensors`` of the official repos are fetched, with
``huggingface_hub.hf_hub_download``, so the standard Hub settings apply unchanged: the cache
(``HF_HUB_CACHE`` / ``HF_HOME``), ``HF_HUB_OFFLINE=1``, ``HF_TOKEN`` / ``hf auth login``, ``HF_ENDPOINT``.
The first download of a checkpoint is about 2.5 GB: huggingface_hub shows its own progress bar, one
log line says what is being fetched, and callers may follow the bytes with a ``progress`` callback.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from collections.abc import Callable

import httpx
import numpy as np
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError
from tqdm.auto import tqdm

from upscaler.config import AuraConfig, CheckpointError, check_weights

logger = logging.getLogger(__name__)

REPOS = {"v1": "fal/AuraSR", "v2": "fal/AuraSR-v2"}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

# safetensors dtype tag -> numpy dtype; the graph runs in float32 and the official files are F32.
_DTYPES = {"F32": np.dtype("<f4")}


class WeightsUnavailableError(RuntimeError):
    """A checkpoint file is neither in the local Hugging Face cache nor downloadable right now."""


def repo_id(checkpoint: str) -> str:
    """Hub repo of a checkpoint name (``"v1"`` -> ``fal/AuraSR``, ``"v2"`` -> ``fal/AuraSR-v2``)."""
    if checkpoint not in REPOS:
        raise ValueError(f"checkpoint must be one of {', '.join(REPOS)}; got {checkpoint!r}")
    return REPOS[checkpoint]


def _reporting_tqdm(progress: Callable[[int, int], None]) -> type[tqdm]:
    """huggingface_hub's progress bar class, also reporting ``progress(bytes_done, bytes_total)``."""

    class Reporting(tqdm):
        # Counted here: a disabled bar (HF_HUB_DISABLE_PROGRESS_BARS) does not advance ``self.n``.
        done = 0

        def update(self, n: float | None = 1) -> bool | None:
            self.done += n or 0
            progress(int(self.done), int(self.total or 0))
            return super().update(n)

    return Reporting


def fetch(checkpoint: str, filename: str, revision: str | None = None,
          progress: Callable[[int, int], None] | None = None) -> Path:
    """Local path of ``filename`` of a checkpoint's repo, downloading it into the HF cache if needed.

    ``progress(bytes_done, bytes_total)`` is called as a download advances (not for a cached file).

    Raises
    ------
    ValueError
        Unknown checkpoint name.
    WeightsUnavailableError
        Offline (``HF_HUB_OFFLINE=1``) or network/Hub failure with no cached copy, repo or file not
        found, or access refused; the message says which repo/file and how to make it available.
    """
    repo = repo_id(checkpoint)
    if not isinstance(try_to_load_from_cache(repo, filename, revision=revision), str):
        logger.info("Fetching %s/%s into the Hugging Face cache (model.safetensors is ~2.5 GB, once)", repo, filename)
    try:
        return Path(hf_hub_download(repo, filename, revision=revision,
                                    tqdm_class=_reporting_tqdm(progress) if progress else None))
    except (OSError, EntryNotFoundError, httpx.HTTPError) as exc:
        raise WeightsUnavailableError(
            f"AuraSR checkpoint {checkpoint!r}: cannot get {filename} of Hugging Face repo {repo} "
            f"({type(exc).__name__}: {exc}). To fix: go online (and unset HF_HUB_OFFLINE), set HF_TOKEN "
            f"if access is refused, pre-download with `hf download {repo} {CONFIG_FILE} "
            f"{WEIGHTS_FILE}`, or point HF_HUB_CACHE at a cache that holds them."
        ) from exc


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map a ``.safetensors`` file as read-only float32 numpy arrays (no copies).

    Format: 8-byte little-endian header length ``n``, ``n`` bytes of JSON mapping each tensor name to
    ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the data after the header),
    optional ``"__metadata__"``. The arrays are views into one ``np.memmap``, so pages are read on
    first use and stay reclaimable page cache, keeping peak memory near one copy of the weights.

    Raises CheckpointError naming the file for truncated or malformed files and non-F32 tensors.
    """
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
    if data.size < 8:
        raise CheckpointError(f"{path} is not a safetensors file: only {data.size} bytes")
    header_len = int(data[:8].view("<u8")[0])
    if header_len > data.size - 8:
        raise CheckpointError(f"{path} is not a safetensors file (header length {header_len} exceeds file size)")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a safetensors file (bad JSON header: {exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file (header is not a JSON object)")
    body = data[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            tag, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: malformed header entry for tensor {name!r}: {info!r}") from exc
        if tag not in _DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {tag}; only {', '.join(_DTYPES)} is supported")
        dtype = _DTYPES[tag]
        if not 0 <= begin <= end <= body.size or end - begin != math.prod(shape) * dtype.itemsize:
            raise CheckpointError(
                f"{path}: tensor {name!r} (shape {shape}, {tag}) has byte range [{begin}, {end}) that does not fit "
                f"its shape or the {body.size}-byte data section (truncated or corrupt file?)"
            )
        tensors[name] = body[begin:end].view(dtype).reshape(shape)
    return tensors


def read_config(path: Path) -> AuraConfig:
    """Parse a checkpoint's ``config.json``; CheckpointError naming the file if it is invalid."""
    try:
        return AuraConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise CheckpointError(f"invalid AuraSR config {path}: {exc}") from exc


def load_checkpoint(checkpoint: str, revision: str | None = None,
                    progress: Callable[[int, int], None] | None = None
                    ) -> tuple[AuraConfig, dict[str, np.ndarray]]:
    """Config and validated weights of checkpoint ``"v1"`` or ``"v2"`` (downloaded on first use,
    with ``progress(bytes_done, bytes_total)`` following the weights' download).

    Raises ValueError (unknown checkpoint), WeightsUnavailableError (files not obtainable) or
    CheckpointError (config invalid, tensors missing/unexpected/mis-shaped, file corrupt), each naming
    the repo or file.
    """
    cfg = read_config(fetch(checkpoint, CONFIG_FILE, revision))
    weights_path = fetch(checkpoint, WEIGHTS_FILE, revision, progress)
    weights = read_safetensors(weights_path)
    check_weights(cfg, weights, source=str(weights_path))
    return cfg, weights
