"""Validation of a fal `post-processing` request body against the schema table.

The coercions follow what fal's (pydantic, lax mode) server accepts: numeric strings for numbers,
integral floats such as ``3.0`` for integer fields, ``"true"``/``"false"`` for flags. Everything else is
refused with a :class:`ValidationError` naming the field and what is allowed.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

from .schema import FIELDS, FIELDS_BY_NAME, IMAGE_URL, SEED, Field

_PASSTHROUGH = (IMAGE_URL,)
_KNOWN = {**FIELDS_BY_NAME, SEED.name: SEED, IMAGE_URL.name: IMAGE_URL}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class ValidationError(ValueError):
    """A request field is unknown or has a value that is not allowed. ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def validate(params: Mapping) -> dict:
    """Return a complete, typed request: ``params`` checked field by field, fal's defaults filled in.

    ``image_url`` is passed through when present; ``seed`` (our extension) is kept when given and not
    None. Raises :class:`ValidationError` (a ``ValueError``) for unknown keys (with the closest valid
    name), wrong types, NaN/inf, out-of-range numbers and values outside an enum.
    """
    if not isinstance(params, Mapping):
        raise ValidationError("request", f"must be a JSON object of fields, got {type(params).__name__}")
    for key in params:
        if key not in _KNOWN:
            raise ValidationError(str(key), f"unknown field{_suggestion(str(key))}")
    out = {f.name: _coerce(f, params[f.name]) if f.name in params else f.default for f in FIELDS}
    for f in _PASSTHROUGH:
        if f.name in params:
            out[f.name] = _coerce(f, params[f.name])
    if params.get(SEED.name) is not None:
        out[SEED.name] = _coerce(SEED, params[SEED.name])
    return out


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, list(_KNOWN), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else "; see the schema for valid field names"


def _coerce(f: Field, value: object) -> object:
    if f.kind == "bool":
        return _as_bool(f, value)
    if f.kind == "enum":
        if isinstance(value, str) and value in f.choices:
            return value
        close = difflib.get_close_matches(str(value), f.choices, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValidationError(f.name, f"{value!r} is not one of {', '.join(map(repr, f.choices))}{hint}")
    if f.kind == "image":
        if isinstance(value, str):
            return value
        raise ValidationError(f.name, f"must be a URL string, got {type(value).__name__}")
    number = _as_number(f, value)
    if f.kind == "int":
        if number != math.floor(number):
            raise ValidationError(f.name, f"must be an integer, got {value!r} (a number with a fraction)")
        number = int(number)
    if not f.minimum <= number <= f.maximum:
        raise ValidationError(f.name, f"{value!r} is out of range; allowed {_range(f)}")
    return number if f.kind == "int" else float(number)


def _as_bool(f: Field, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(f.name, f"must be true or false, got {value!r}")


def _as_number(f: Field, value: object) -> float | int:
    expected = "an integer" if f.kind == "int" else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValidationError(f.name, f"must be {expected} in {_range(f)}, got {type(value).__name__}")
    if isinstance(value, str):
        try:
            value = int(value) if f.kind == "int" and value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            raise ValidationError(f.name, f"must be {expected} in {_range(f)}, got the string {value!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f.name, f"must be a finite number in {_range(f)}, got {value!r}")
    return value


def _range(f: Field) -> str:
    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)
    return f"[{fmt(f.minimum)}, {fmt(f.maximum)}]"
