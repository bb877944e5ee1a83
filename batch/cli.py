"""Batch command line, run as ``python -m effects``.

``python -m effects INPUT... --out DIR [--preset FILE] [--set field=value]... [--recursive]
[--skip-existing] [--upscale v1|v2] [--overlapping-tiles] [--ray] [--dissolve-image FILE]``

Every image of the INPUT files and folders gets the preset (a fal request body) plus the ``--set``
overrides, then optionally AuraSR 4x, and is written as PNG under DIR (see :mod:`batch.plan` for
the naming rules). A file that fails is named with its reason and the others go on. Exit status: 0
all done, 1 some file failed, 2 bad options (preset, override, second image, upscaler options) or a
batch that could not run (Ray missing or failing, upscaler weights missing), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from effects import validate
from imaging import decode_image

from .plan import Job, plan
from .work import DISSOLVE_FIELD, Outcome, Settings, Worker


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m effects",
                                     description="Apply a post-processing preset to image files and folders.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--preset", type=Path, metavar="FILE", help="JSON request body (fal field names)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override one field; repeatable, e.g. --set grain_intensity=0.6")
    parser.add_argument("--recursive", action="store_true", help="also the subfolders of folder inputs")
    parser.add_argument("--skip-existing", action="store_true",
                        help="leave outputs that already exist as they are (resume a job)")
    parser.add_argument("--upscale", metavar="v1|v2", help="AuraSR 4x after the effects, with this checkpoint")
    parser.add_argument("--overlapping-tiles", action="store_true",
                        help="with --upscale: second pass on shifted tiles, no seams, about 2x the time")
    parser.add_argument("--ray", action="store_true",
                        help="run on Ray: the cluster at RAY_ADDRESS, else a local Ray")
    parser.add_argument("--dissolve-image", type=Path, metavar="FILE", help="second image when dissolve is enabled")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> Settings:
    """The preset plus overrides, validated, and the other options. Raises ValueError naming the
    file, field or option."""
    params: dict = {}
    if args.preset:
        try:
            params = json.loads(args.preset.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"preset {args.preset}: cannot read JSON ({err})") from None
        if not isinstance(params, dict):
            raise ValueError(f"preset {args.preset}: expected a JSON object of fal field names")
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE")
        params[name.strip()] = value.strip()
    request = validate(params)
    second = None
    if request["enable_dissolve"]:
        if not args.dissolve_image:
            raise ValueError("enable_dissolve is true: give the second image with --dissolve-image")
        try:
            second = args.dissolve_image.read_bytes()
        except OSError as err:
            raise ValueError(f"{DISSOLVE_FIELD} {args.dissolve_image}: {err.strerror}") from None
        decode_image(second, field=DISSOLVE_FIELD)  # refuse a bad one now, not once per file
    if args.upscale:
        import upscaler  # only with --upscale: plain effects runs never load onnxruntime

        try:
            upscaler.validate({"checkpoint": args.upscale, "overlapping_tiles": args.overlapping_tiles,
                               "seed": request.get("seed")})
        except upscaler.ValidationError as err:
            raise ValueError(f"--upscale: {err}") from None
    elif args.overlapping_tiles:
        raise ValueError("--overlapping-tiles only applies with --upscale")
    return Settings(params, second, args.upscale, args.overlapping_tiles)


def _in_process(settings: Settings, jobs: list[Job]) -> Iterator[Outcome]:
    worker = Worker(settings)
    if worker.error:
        raise ValueError(worker.error)
    for job in jobs:
        yield worker(job.source, job.target, job.name)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    start = time.perf_counter()
    try:
        settings = _settings(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    jobs, refused = plan(args.inputs, args.out, recursive=args.recursive)
    todo = [job for job in jobs if not (args.skip_existing and Path(job.target).exists())]
    counts = Counter(done=0, skipped=len(jobs) - len(todo), failed=len(refused))
    for name, reason in refused:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    if not jobs and not refused:
        print("nothing to do: no images in the inputs (folders need --recursive for their subfolders)",
              file=sys.stderr)

    if args.ray:
        from . import on_ray
        outcomes = on_ray.run(settings, todo)
    else:
        outcomes = _in_process(settings, todo)
    bar = tqdm(total=len(todo), desc="processing", unit="file", file=sys.stderr, dynamic_ncols=True)
    try:
        for outcome in outcomes:
            counts[outcome.status] += 1
            if outcome.reason:
                tqdm.write(f"failed: {outcome.name}: {outcome.reason}", file=sys.stderr)
            if outcome.note:
                tqdm.write(f"note: {outcome.name}: {outcome.note}", file=sys.stderr)
            bar.update()
    except (ValueError, RuntimeError) as err:  # the batch as a whole: no Ray, Ray failed, no weights
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        _summary(counts, start, args.out)
        return 2
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: finished outputs are complete; run again with --skip-existing to resume",
              file=sys.stderr)
        _summary(counts, start, args.out)
        return 130
    bar.close()
    _summary(counts, start, args.out)
    return 1 if counts["failed"] else 0


def _summary(counts: Counter, start: float, out: Path) -> None:
    elapsed = time.perf_counter() - start
    print(f"done {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']} in {elapsed:.1f} s "
          f"({counts['done'] / elapsed:.2f} files/s); outputs in {out}", file=sys.stderr)
