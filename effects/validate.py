"""Validation of a fal `post-processing` request body against the schema table.

:func:`validate` checks every field once (:func:`common.fields.coerce`) and returns a :class:`Request`:
typed, complete and immutable, so :func:`effects.process` trusts it instead of validating again.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from common.fields import ValidationError, coerce, suggestion

from .schema import FIELDS, IMAGE_URL, SEED

_PASSTHROUGH = (IMAGE_URL,)
_KNOWN = {**{f.name: f for f in FIELDS}, SEED.name: SEED, IMAGE_URL.name: IMAGE_URL}

__all__ = ["Request", "ValidationError", "validate"]


class Request(Mapping):
    """A validated request: every schema field with its typed value, ``image_url`` when given and
    ``seed`` when given. Read it like the dict it came from (``request["blur_radius"]``); it cannot be
    changed in place, :meth:`replace` makes a modified copy (validated again)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict):  # only validate() builds one: process() trusts its values
        self._values = values

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Request({self._values!r})"

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._values) == dict(other)

    def replace(self, **changes: object) -> Request:
        """A copy with ``changes`` applied, validated like any request."""
        return validate({**self._values, **changes})


def validate(params: Mapping) -> Request:
    """Return a complete, typed :class:`Request`: ``params`` checked field by field, fal's defaults
    filled in.

    ``image_url`` is passed through when present; ``seed`` (our extension) is kept when given and not
    None. A :class:`Request` is returned as it is. Raises :class:`ValidationError` (a ``ValueError``)
    for unknown keys (with the closest valid name), wrong types, NaN/inf, out-of-range numbers and
    values outside an enum.
    """
    if isinstance(params, Request):
        return params
    if not isinstance(params, Mapping):
        raise ValidationError("request", f"must be a JSON object of fields, got {type(params).__name__}")
    for key in params:
        if key not in _KNOWN:
            raise ValidationError(str(key)[:100], f"unknown field{suggestion(str(key), list(_KNOWN))}")
    out = {f.name: coerce(f, params[f.name]) if f.name in params else f.default for f in FIELDS}
    for f in _PASSTHROUGH:
        if f.name in params:
            out[f.name] = coerce(f, params[f.name])
    if params.get(SEED.name) is not None:
        out[SEED.name] = coerce(SEED, params[SEED.name])
    return Request(out)
