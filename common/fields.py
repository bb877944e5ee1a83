"""Request fields declared as data, and the one coercion of a client's value to a field's type.

A request table (fal's ``post-processing`` body in :mod:`effects.schema`, ``aura-sr``'s in
:mod:`upscaler`) is a tuple of :class:`Field`. Validation, the page's controls, the Gradio endpoint
signatures and the error messages are all derived from it.

The coercions follow what fal's (pydantic, lax mode) server accepts: numeric strings for numbers,
integral floats such as ``3.0`` for integer fields, ``"true"``/``"false"`` for flags. Everything else is
refused with a :class:`ValidationError` naming the field and what is allowed.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

#: Longest excerpt of a client's value quoted back in an error message.
QUOTE_LIMIT = 100
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Field:
    """One request field.

    ``kind`` is one of ``"bool"``, ``"int"``, ``"float"``, ``"enum"`` or ``"image"`` (a URL string).
    ``minimum``/``maximum`` are inclusive; ``step`` is the UI slider step. ``shown_when`` names the
    values of the effect's mode field (e.g. ``sharpen_mode``) under which the UI shows this control;
    ``None`` means always. ``ui_maximum`` is where the page's slider ends when the useful range is
    much shorter than the allowed one (the API keeps ``maximum``; a larger value extends the slider).
    """

    name: str
    kind: str
    default: object
    label: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple = ()
    shown_when: tuple[str, tuple[str, ...]] | None = None
    ui_maximum: float | None = None


class ValidationError(ValueError):
    """A request field is unknown or has a value that is not allowed. ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def quote(value: object) -> str:
    """``repr(value)``, cut to :data:`QUOTE_LIMIT` characters so a hostile value never floods a message."""
    text = repr(value)
    if len(text) <= QUOTE_LIMIT:
        return text
    return f"{text[:QUOTE_LIMIT]}… ({len(text):,} characters)"


def suggestion(key: str, known: list[str]) -> str:
    """"; did you mean 'x'?" for the closest known name, or a pointer to the schema."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else "; see the schema for valid field names"


def coerce(f: Field, value: object) -> object:
    """``value`` as ``f``'s type, or :class:`ValidationError` saying what ``f`` allows."""
    if f.kind == "bool":
        return _as_bool(f, value)
    if f.kind == "enum":
        if value in f.choices and type(value) is type(f.choices[0]):
            return value
        if not isinstance(f.choices[0], str) and isinstance(value, str):  # numeric enums sent as text
            for choice in f.choices:
                if str(choice) == value.strip():
                    return choice
        close = difflib.get_close_matches(str(value)[:QUOTE_LIMIT], list(map(str, f.choices)), n=1,
                                          cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValidationError(f.name, f"{quote(value)} is not one of "
                                      f"{', '.join(map(repr, f.choices))}{hint}")
    if f.kind == "image":
        if isinstance(value, str):
            return value
        raise ValidationError(f.name, f"must be a URL string, got {type(value).__name__}")
    number = _as_number(f, value)
    if f.kind == "int":
        if number != math.floor(number):
            raise ValidationError(f.name, f"must be an integer, got {quote(value)} (a number with a "
                                          "fraction)")
        number = int(number)
    if not f.minimum <= number <= f.maximum:
        raise ValidationError(f.name, f"{quote(value)} is out of range; allowed {describe_range(f)}")
    return number if f.kind == "int" else float(number)


def describe_range(f: Field) -> str:
    """``[min, max]`` of a numeric field, integers without a trailing ``.0``."""
    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)
    return f"[{fmt(f.minimum)}, {fmt(f.maximum)}]"


def _as_bool(f: Field, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(f.name, f"must be true or false, got {quote(value)}")


def _as_number(f: Field, value: object) -> float | int:
    expected = "an integer" if f.kind == "int" else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValidationError(f.name, f"must be {expected} in {describe_range(f)}, got "
                                      f"{type(value).__name__}")
    if isinstance(value, str):
        try:
            value = (int(value) if f.kind == "int" and value.strip().lstrip("+-").isdigit()
                     else float(value))
        except ValueError:
            raise ValidationError(f.name, f"must be {expected} in {describe_range(f)}, got the "
                                          f"string {quote(value)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f.name, f"must be a finite number in {describe_range(f)}, got "
                                      f"{quote(value)}")
    return value
