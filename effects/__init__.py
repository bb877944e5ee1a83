"""fal's `post-processing` effects as pure numpy functions, plus the schema, validation and pipeline.

Public API: :func:`validate`, :func:`process`, and the schema table in :mod:`effects.schema`.
This package knows nothing of Gradio.
"""
from .pipeline import process
from .schema import EFFECTS, FIELDS
from .validate import ValidationError, validate

__all__ = ["EFFECTS", "FIELDS", "ValidationError", "process", "validate"]
