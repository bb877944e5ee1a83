"""``python -m effects INPUT... --out DIR ...``: the batch command line (see :mod:`batch.cli`).

The machinery lives in the top-level ``batch`` package because ``--upscale`` needs the upscaler,
which ``effects`` itself must not import; ``batch`` imports it only when ``--upscale`` is given.
"""
import sys

from batch.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
