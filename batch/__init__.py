"""Batch processing of files and folders: the planning, the per-file work and the runners behind
``python -m effects``.

* :mod:`batch.plan` turns the command line's INPUTs into :class:`Job` (source file → output file);
* :mod:`batch.work` does one file (decode, effects, optional AuraSR 4x, atomic PNG write) in a
  :class:`Worker` that holds the validated request and, with ``--upscale``, the loaded model;
* :mod:`batch.on_ray` runs the same :class:`Worker` in a Ray Data actor pool (optional dependency);
* :mod:`batch.cli` is the command line.

This package imports ``upscaler`` only when upscaling is asked for, and ``ray`` only with ``--ray``:
``effects`` itself never imports either.
"""
from .plan import Job, plan
from .work import Outcome, Settings, Worker

__all__ = ["Job", "Outcome", "Settings", "Worker", "plan"]
