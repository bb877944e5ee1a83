"""Which files a batch processes and where each result goes.

Rules (the README's batch section says the same):

* A file named on the command line is processed and written to ``DIR/<stem>.png``.
* A folder's images are processed, ``in/x.jpg`` → ``DIR/x.png``; with ``recursive`` its subfolders
  too, mirroring the tree (``in/a/b/x.jpg`` → ``DIR/a/b/x.png``). The output folder is never walked.
* In folders, a file counts as an image when its first bytes are those of an accepted format, or when
  its extension is one Pillow reads (so a damaged ``x.jpg`` is reported, not silently ignored);
  anything else (``notes.txt``, ``.DS_Store``) is skipped quietly.
* Name collisions never overwrite: when several inputs would write the same output (``x.jpg`` and
  ``x.png`` in one folder), each of them keeps its extension in the output name (``x.jpg.png``,
  ``x.png.png``); inputs that still collide after that (the same file name given from two folders)
  fail with the reason, the others go on.
* The same file reached twice (a folder and a file in it) is processed once; an input whose output
  would be itself (``in/x.png`` with ``--out in``) fails.
"""
from __future__ import annotations

import functools
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from imaging import sniff_format

SUFFIX = ".png"
_HEAD = 16  # bytes read to recognise an image by its magic number


@dataclass(frozen=True)
class Job:
    """One file to process: ``source`` and ``target`` (output) as absolute paths, ``name`` for messages
    (the path as the user reached it). Plain strings, so a job travels to Ray workers as a row."""

    source: str
    target: str
    name: str


@functools.cache
def _image_extensions() -> frozenset[str]:
    """Extensions of the formats Pillow can open (not the save-only ones such as ``.pdf``)."""
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def looks_like_image(path: Path) -> bool:
    """Whether a file found in a folder is meant as an image: accepted magic bytes, or an image
    extension. A file that cannot be read counts (its job then fails and says why)."""
    if path.suffix.lower() in _image_extensions():
        return True
    try:
        with path.open("rb") as file:
            return sniff_format(file.read(_HEAD)) is not None
    except OSError:
        return True


def _walk(folder: Path, recursive: bool, out: Path) -> list[Path]:
    """Image files of ``folder`` (and its subfolders when ``recursive``), sorted, not under ``out``."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and (root_path / d).resolve() != out)
        found.extend(p for p in (root_path / f for f in sorted(files)) if looks_like_image(p))
    return found


def plan(inputs: list[Path], out: Path, *, recursive: bool = False) -> tuple[list[Job], list[tuple[str, str]]]:
    """The jobs for ``inputs`` (files and folders) writing under ``out``, in input order, plus the
    ``(name, reason)`` of inputs refused up front (missing, or an output name that collides)."""
    out_resolved = out.resolve()
    refused: list[tuple[str, str]] = []
    seen: set[Path] = set()
    wanted: list[tuple[Path, Path]] = []  # (source, output path relative to out, without suffix)
    for given in inputs:
        if given.is_dir():
            pairs = [(p, p.relative_to(given)) for p in _walk(given, recursive, out_resolved)]
        elif given.exists() or given.is_symlink():
            pairs = [(given, Path(given.name))]
        else:
            refused.append((str(given), "no such file or folder"))
            continue
        for source, relative in pairs:
            key = source.resolve()
            if key not in seen:
                seen.add(key)
                wanted.append((source, relative))

    targets = _targets([relative for _, relative in wanted])
    jobs = []
    for (source, relative), target in zip(wanted, targets):
        if isinstance(target, str):
            refused.append((str(source), target))
        elif (out / target).resolve() == source.resolve():
            refused.append((str(source), "the output would replace this input; choose another --out"))
        else:
            # Absolute paths: Ray workers do not run in this process's working directory.
            jobs.append(Job(str(source.absolute()), str((out / target).absolute()), str(source)))
    return jobs, refused


def _targets(relatives: list[Path]) -> list[Path | str]:
    """Output path (relative) of each input, or the reason it has none, by the collision rule above."""
    plain = [r.with_suffix(SUFFIX) for r in relatives]
    counts = defaultdict(int)
    for target in plain:
        counts[target] += 1
    chosen = [r.with_name(r.name + SUFFIX) if counts[t] > 1 else t for r, t in zip(relatives, plain)]
    owners = defaultdict(list)
    for relative, target in zip(relatives, chosen):
        owners[target].append(relative)
    return [t if len(owners[t]) == 1 else
            f"another input has the same output name ({p}); rename one or process them separately"
            for p, t in zip(plain, chosen)]
