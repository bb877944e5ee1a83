"""fal's `post-processing` effects as pure numpy functions, plus the schema, validation and pipeline.

Public API: :func:`validate`, :func:`process`, and the schema table in :mod:`effects.schema`.
This package knows nothing of Gradio.
"""
from ._memory import keep_freed_buffers
from .pipeline import process
from .schema import EFFECTS, FIELDS
from .validate import ValidationError, validate

keep_freed_buffers()

__all__ = ["EFFECTS", "FIELDS", "ValidationError", "process", "validate"]
