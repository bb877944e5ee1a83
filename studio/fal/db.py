"""The embedded database under ``STUDIO_DATA_DIR``: one SQLite file in WAL mode, files beside it.

``STUDIO_DATA_DIR`` (default ``$XDG_DATA_HOME/post-processing-studio``, i.e.
``~/.local/share/post-processing-studio``) holds ``studio.sqlite3`` and the folders of files that
belong to it (job inputs, stored files). Each module that keeps state creates its own tables with
``CREATE TABLE IF NOT EXISTS`` on its own connection.

WAL lets readers (status polls) run while a writer commits. ``synchronous=NORMAL``: a commit is in
the WAL file when it returns, so it survives the process being killed (``kill -9``, a crash); only
a power cut or kernel crash can lose the last commits before a checkpoint. ``FULL`` would fsync every
commit, i.e. every log line of every job, for that one case.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

DB_NAME = "studio.sqlite3"


def data_dir() -> Path:
    """The data directory (created if missing): ``STUDIO_DATA_DIR`` or a per-user default."""
    configured = os.environ.get("STUDIO_DATA_DIR", "").strip()
    if configured:
        path = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
        path = Path(base) / "post-processing-studio"
    path.mkdir(parents=True, exist_ok=True)
    return path


def connect() -> sqlite3.Connection:
    """A new connection to the data directory's database, usable from any thread (callers
    serialise their own use of it). ``with conn:`` is one transaction (``BEGIN IMMEDIATE``: it takes
    the write lock at once, so two writers never deadlock upgrading a read lock)."""
    conn = sqlite3.connect(data_dir() / DB_NAME, timeout=30, check_same_thread=False,
                           isolation_level="IMMEDIATE")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably: a temporary file, fsync, then an atomic rename, so a crash
    leaves either the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
