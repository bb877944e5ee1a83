"""Batch command line: ``python -m effects INPUT... --preset FILE.json --out DIR [--set field=value]``.

Each input is processed with the preset (a fal request body) plus the ``--set`` overrides and written
to ``DIR/<input stem>.png``. A file that fails is reported with its reason and the others go on; the
exit status is 1 when any file failed, 2 for a bad preset or override.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from imaging import encode_png

from . import keep_freed_buffers, process, validate


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m effects", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files")
    parser.add_argument("--preset", type=Path, help="JSON request body (fal field names)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override one field; repeatable, e.g. --set grain_intensity=0.6")
    parser.add_argument("--dissolve-image", type=Path, help="second image when dissolve is enabled")
    return parser.parse_args(argv)


def _request(args: argparse.Namespace) -> dict:
    """The preset plus overrides, validated. Raises ValueError naming the file or field."""
    params: dict = {}
    if args.preset:
        try:
            params = json.loads(args.preset.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"preset {args.preset}: cannot read JSON ({err})") from None
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE")
        params[field.strip()] = value.strip()
    if validate(params)["enable_dissolve"] and not args.dissolve_image:
        raise ValueError("enable_dissolve is true: give the second image with --dissolve-image")
    return params


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    keep_freed_buffers()  # one image after another: reuse the buffers
    try:
        params = _request(args)
        second = Image.open(args.dissolve_image) if args.dissolve_image else None
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in tqdm(args.inputs, desc="processing", unit="file", file=sys.stderr):
        try:
            with Image.open(path) as image:
                result = process(image, params, dissolve_image=second)
            (args.out / f"{path.stem}.png").write_bytes(encode_png(result))  # with ICC and EXIF
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            failed += 1
            tqdm.write(f"failed: {path}: {err}", file=sys.stderr)
    print(f"{len(args.inputs) - failed} written to {args.out}, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
