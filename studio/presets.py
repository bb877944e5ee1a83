"""Presets: fal request bodies (without ``image_url``) stored as JSON files.

Built-ins live in ``presets/*.json`` and are validated by :func:`effects.validate` at startup; a broken
file is reported and skipped, never fatal. Saving writes only what differs from fal's defaults plus
every ``enable_*`` flag, so a preset reads as a short, explicit recipe.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import effects
from effects.schema import DEFAULTS, EFFECTS, FIELDS, SEED

from common.errors import InputError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"

#: Fields a preset never carries: images are per request, not part of a look.
_NOT_IN_PRESETS = {"image_url", *(f.name for f in FIELDS if f.kind == "image")}


def display_name(path: Path) -> str:
    """``vintage_film.json`` → ``Vintage film``."""
    return path.stem.replace("_", " ").replace("-", " ").capitalize()


def read_preset(data: bytes | str | os.PathLike, *, source: str = "preset") -> dict:
    """Parse and validate one preset; return it as written (minus images), keys in fal order.

    ``data`` is the JSON text (str or bytes) or a ``Path`` to it. Raises
    :class:`common.errors.InputError` (422) naming ``source`` and, for a bad field, the field.
    """
    if isinstance(data, os.PathLike):
        data = Path(data).read_bytes()
    try:
        body = json.loads(data)
    except (ValueError, TypeError, RecursionError) as err:  # RecursionError: absurd nesting
        raise InputError(source, f"not valid JSON ({err})", 422) from None
    if not isinstance(body, dict):
        raise InputError(source, "must be a JSON object of fal fields", 422)
    body = {k: v for k, v in body.items() if k not in _NOT_IN_PRESETS}
    try:
        effects.validate(body)
    except effects.ValidationError as err:
        raise InputError(source, str(err), 422) from None
    order = [f.name for f in FIELDS] + [SEED.name]
    return {k: body[k] for k in order if k in body}


def load_builtin(directory: Path = PRESETS_DIR) -> tuple[dict[str, dict], list[str]]:
    """All valid presets in ``directory`` by display name (file order), and one message per broken
    file, e.g. ``"presets/noir.json: contrast: 300 is out of range; allowed [-100, 100]"``."""
    presets: dict[str, dict] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            presets[display_name(path)] = read_preset(path, source=f"{directory.name}/{path.name}")
        except (InputError, OSError) as err:
            problems.append(str(err))
    return presets, problems


def full_settings(preset: Mapping) -> dict:
    """Every schema field's value for ``preset``: its own values, fal's defaults for the rest."""
    validated = effects.validate({k: v for k, v in preset.items() if k not in _NOT_IN_PRESETS})
    return {f.name: validated[f.name] for f in FIELDS}


def to_preset(settings: Mapping, seed: int | None = None) -> dict:
    """The preset for the current settings: every ``enable_*`` flag, then each other field that
    differs from fal's default, in fal order; ``seed`` when one is set. Whole numbers are written
    without a fraction (``40``, not ``40.0``), as people write them."""
    flags = {e.enable.name for e in EFFECTS}
    preset = {f.name: _plain(settings[f.name]) for f in FIELDS
              if f.name not in _NOT_IN_PRESETS
              and (f.name in flags or settings[f.name] != DEFAULTS[f.name])}
    if seed is not None:
        preset[SEED.name] = int(seed)
    return preset


def _plain(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value
