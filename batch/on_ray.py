"""The batch on Ray: Ray Data over the job list, mapped by an actor pool of :class:`batch.Worker`.

Each actor builds one :class:`~batch.work.Worker` (so it validates the request once and, with
``--upscale``, loads the model once) and processes one file per call, exactly as the in-process run
does. With ``--upscale`` on a cluster that has GPUs, each actor takes one GPU (the pool has one actor
per GPU and onnxruntime picks CUDA there); otherwise one CPU per actor, one actor per CPU.

Ray connects to ``RAY_ADDRESS`` when it is set (``ray.init`` reads it) and otherwise starts a local
Ray for the run and stops it afterwards. When Ray is already initialised (tests, notebooks) it is
used as it is. Workers read the inputs and write the outputs themselves: on a cluster, the input
files and ``--out`` must be on a filesystem every node sees under the same path (NFS, a shared
volume), and every node needs ``requirements.txt`` installed; the project's own packages travel
with the job (``runtime_env`` ``py_modules``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, fields

import numpy as np

from .plan import Job
from .work import Outcome, Settings, Worker

INSTALL_HINT = "--ray needs Ray: pip install -r requirements-ray.txt"
_JOB_FIELDS = tuple(f.name for f in fields(Job))
_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))
#: Files per Ray Data block: small blocks spread a short job over every actor.
_FILES_PER_BLOCK = 4


class RayUnavailable(RuntimeError):
    """``--ray`` was asked for but Ray is not installed."""


def runtime_env() -> dict:
    """Ray ``runtime_env`` shipping the project's packages to the workers (nodes need only the
    third-party requirements)."""
    import batch
    import common
    import effects
    import imaging
    import upscaler

    return {"py_modules": [batch, common, effects, imaging, upscaler]}


class _Actor:
    """Ray Data callable class: rows of jobs in, rows of outcomes out."""

    def __init__(self, settings: Settings):
        self.worker = Worker(settings)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [self.worker(*(str(rows[k][i]) for k in _JOB_FIELDS)) for i in range(len(rows["source"]))]
        return {k: np.array([getattr(o, k) for o in outcomes], dtype=object) for k in _OUTCOME_FIELDS}


def run(settings: Settings, jobs: list[Job]) -> Iterator[Outcome]:
    """Process ``jobs`` on Ray, yielding each outcome as it completes (in no particular order)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    if not jobs:
        return
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the command line shows its own, and the summary
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if settings.upscale else 0
        actors = gpus or max(1, int(resources.get("CPU", 1)))
        dataset = ray.data.from_items([asdict(job) for job in jobs],
                                      override_num_blocks=max(1, -(-len(jobs) // _FILES_PER_BLOCK)))
        results = dataset.map_batches(
            _Actor, fn_constructor_kwargs={"settings": settings}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(jobs))),
            num_cpus=1, num_gpus=1 if gpus else 0)
        for row in results.iter_rows():
            yield Outcome(**{k: str(row[k]) for k in _OUTCOME_FIELDS})
    finally:
        if started:
            ray.shutdown()
