"""fal's `post-processing` effects as pure numpy functions, plus the schema, validation and pipeline.

Public API: :func:`validate`, :func:`process`, the schema table in :mod:`effects.schema`, and
:func:`keep_freed_buffers`, which long-running callers (the app, the CLI) call once at start-up.
This package knows nothing of Gradio.
"""
from ._memory import keep_freed_buffers
from .pipeline import process
from .schema import EFFECTS, FIELDS
from .validate import Request, ValidationError, validate

__all__ = ["EFFECTS", "FIELDS", "Request", "ValidationError", "keep_freed_buffers", "process", "validate"]
