"""Test helpers for the studio: run app.py's server in-process, and a tiny AuraSR in an offline HF cache."""
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from gradio_client import Client

import upscaler
from hf_cache import write_hf_cache
from tiny_aurasr import random_weights, tiny_config, write_checkpoint
from upscaler.config import AuraConfig
from upscaler.weights import REPOS


def free_port() -> int:
    """A TCP port nobody listens on right now (Gradio must be given a real number, never 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app() -> Iterator[str]:
    """Launch ``app.demo`` with the JSON routes on a free port; yield its URL; close it afterwards."""
    import app
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(),
                           prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        app.demo.close()


def write_tiny_aurasr_cache(cache: Path) -> None:
    """Both checkpoints (v1, v2) as tiny seeded models in a Hugging Face cache at ``cache``, for a
    process run with ``HF_HUB_CACHE=<cache> HF_HUB_OFFLINE=1``."""
    config = tiny_config()
    for seed, (checkpoint, repo) in enumerate(REPOS.items()):
        folder = cache.parent / f"{cache.name}-files-{checkpoint}"
        write_checkpoint(folder, config, random_weights(AuraConfig.from_dict(config), seed))
        write_hf_cache(cache, repo, {name: (folder / name).read_bytes()
                                     for name in ("config.json", "model.safetensors")})


@contextlib.contextmanager
def tiny_aurasr_hub(cache: Path) -> Iterator[None]:
    """Both checkpoints (v1, v2) as tiny seeded models in an offline HF cache at ``cache``.

    The upscaler's real download path (``hf_hub_download``) runs against it. Cached models and
    sessions are dropped on entry and exit so no other test sees the tiny ones.
    """
    write_tiny_aurasr_cache(cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        for checkpoint in REPOS:
            upscaler.register_model(checkpoint, None)
        try:
            yield
        finally:
            for checkpoint in REPOS:
                upscaler.register_model(checkpoint, None)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with the tiny AuraSR checkpoints, served for one test module; its base URL."""
    with tiny_aurasr_hub(tmp_path_factory.mktemp("hf") / "hub"), running_app() as url:
        yield url.rstrip("/")


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    """A gradio_client on :func:`server`, downloading into a temp dir."""
    c = Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    yield c
    c.close()
