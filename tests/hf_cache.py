"""Lay files out as a Hugging Face Hub cache, so the real ``hf_hub_download`` finds them offline.

Layout written (the one huggingface_hub itself writes)::

    <cache>/models--<org>--<name>/blobs/<sha256 of content>
    <cache>/models--<org>--<name>/snapshots/<revision>/<filename>  -> ../../blobs/<sha256>  (relative symlink)
    <cache>/models--<org>--<name>/refs/main                         (the revision, no newline)

With ``HF_HUB_OFFLINE=1``, ``hf_hub_download(repo, filename)`` resolves ``refs/main`` to the revision
and returns the snapshot path if it exists. ``huggingface_hub.constants`` reads ``HF_HUB_CACHE`` and
``HF_HUB_OFFLINE`` at import, so :func:`use_hf_cache` patches both the environment and those constants.
"""

import hashlib
import os
from pathlib import Path

import huggingface_hub.constants

REVISION = "0123456789abcdef0123456789abcdef01234567"


def write_hf_cache(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = REVISION) -> Path:
    """Store ``files`` (name -> content) as ``repo_id`` at ``revision`` (also ``main``); return the snapshot dir."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        digest = hashlib.sha256(content).hexdigest()
        (repo_dir / "blobs" / digest).write_bytes(content)
        link = snapshot / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(repo_dir / "blobs" / digest, snapshot))
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot


def use_hf_cache(monkeypatch, cache: Path) -> None:
    """Point huggingface_hub at ``cache``, offline, for the rest of the test."""
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
