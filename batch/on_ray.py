"""The batch on Ray: Ray Data over the job list, mapped by an actor pool of :class:`batch.Worker`.

Each actor builds one :class:`~batch.work.Worker` (so it validates the request once and, with
``--upscale``, loads the model once) and processes one file per call, exactly as the in-process run
does. The pool's size and resources come from :func:`pool`: one actor per CPU for effects, one per
GPU (onnxruntime picks CUDA there) for ``--upscale`` on a cluster with GPUs, one per node otherwise.

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
#: Most Ray Data blocks: one file per block up to this many spreads even a short job over every
#: actor (a file takes far longer than a block's overhead); past it, blocks hold several files.
_MAX_BLOCKS = 1000


class RayUnavailable(RuntimeError):
    """``--ray`` was asked for but Ray is not installed."""


class RayFailed(RuntimeError):
    """Ray itself failed (no cluster at ``RAY_ADDRESS``, a worker killed); outputs written so far
    are complete, so ``--skip-existing`` resumes."""


def runtime_env() -> dict:
    """Ray ``runtime_env`` shipping the project's packages to the workers (nodes need only the
    third-party requirements)."""
    import batch
    import common
    import effects
    import imaging
    import upscaler

    return {"py_modules": [batch, common, effects, imaging, upscaler]}


def pool(node_resources: list[dict[str, float]], settings: Settings) -> tuple[int, float, int]:
    """(actors, CPUs per actor, GPUs per actor) for a cluster whose alive nodes have
    ``node_resources``. Effects only: one actor per CPU. Upscaling with GPUs: one actor per GPU,
    holding it. Upscaling on CPUs only: one actor per node taking all of the smallest node's CPUs,
    since onnxruntime uses every core and each actor holds the whole model (~3.3 GB)."""
    cpus = [n.get("CPU", 0) for n in node_resources if n.get("CPU", 0) >= 1] or [1]
    gpus = int(sum(n.get("GPU", 0) for n in node_resources))
    if settings.upscale and gpus:
        return gpus, 1, 1
    if settings.upscale:
        return len(cpus), min(cpus), 0
    return max(1, int(sum(cpus))), 1, 0


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
        import ray.exceptions
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    if not jobs:
        return
    started = not ray.is_initialized()
    try:
        if started:
            ray.init(include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
                     logging_level=logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the command line shows its own, and the summary
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        actors, cpus, gpus = pool(nodes, settings)
        dataset = ray.data.from_items([asdict(job) for job in jobs],
                                      override_num_blocks=min(len(jobs), _MAX_BLOCKS))
        results = dataset.map_batches(
            _Actor, fn_constructor_kwargs={"settings": settings}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(jobs))), num_cpus=cpus, num_gpus=gpus)
        for row in results.iter_rows():
            yield Outcome(**{k: str(row[k]) for k in _OUTCOME_FIELDS})
    except (ray.exceptions.RayError, ConnectionError) as err:
        # The first line only: the rest is the remote traceback, which says nothing to a user.
        first = (str(err).strip().splitlines() or [""])[0]
        raise RayFailed(f"Ray: {type(err).__name__}: {first}") from None
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
